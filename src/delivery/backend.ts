// The contract between the delivery engine and the backends (one file per backend in
// src/backends/). A backend only turns lines into its receiver's wire format and sends
// them and says what became of each line; the engine owns batching, retry, bisection,
// cursors, ordering, counting and dead letters, so no backend has a queue.
import type { Source } from '../fifo/log-entry.ts';
import type { MultilineOptions } from '../shaping/multiline.ts';
import type { TagInfo } from '../shaping/tag.ts';

/** One line ready to ship: partial chunks already reassembled by the shaping stage. */
export interface OutgoingLine {
  source: Source;
  /** Unix nanoseconds of the line (its first chunk's time). */
  timeNano: bigint;
  /** The line without its trailing newline; raw bytes, not necessarily UTF-8. */
  line: Buffer;
  /**
   * Set only for a fragment the shaping stage could not make whole (the line-size cap cut
   * it, or the stream ended before its last chunk); backends whose built-in driver sends
   * partial metadata (fluentd, journald) send these fields.
   */
  partial?: { id: string; ordinal: number; last: boolean };
  /**
   * The line parsed as a JSON object: set only with the `parse-json` log-opt, and only for a
   * line that is one. A backend with structured records adds these keys beside its own (its
   * own keys win a clash: the line itself still goes as the message, so nothing is lost).
   */
  fields?: Readonly<Record<string, unknown>>;
}

/** What a backend knows of its container, resolved once per StartLogging. */
export interface ContainerContext {
  /** Full 64-hex id. */
  id: string;
  /** Without the daemon's leading '/'. */
  name: string;
  imageId: string;
  imageName: string;
  created: string;
  /** The entrypoint and its arguments joined by spaces, as Docker's Info.Command() prints them. */
  command: string;
  daemonName: string;
  /** The `tag` log-opt's template executed for this container (default `{{.ID}}`). */
  tag: string;
  /**
   * Whether the `tag` log-opt was given: a driver with a default of its own (awslogs names
   * its stream `{{.FullID}}`) uses `tag` only then.
   */
  tagSet: boolean;
  /** From `labels`, `labels-regex`, `env`, `env-regex`, in the built-in drivers' order. */
  attributes: ReadonlyArray<readonly [string, string]>;
  /** The host's name, as the built-in drivers put it in their records. */
  hostname: string;
  /**
   * What a backend's own templates run on (loki-external-labels), and the container's labels
   * for a backend that adds some by itself (compose and swarm names): env values may be
   * secrets, never logged.
   */
  info: Readonly<TagInfo>;
}

/**
 * Why a receiver refused a line for good: a label of `logship_backend_lines_rejected_total`,
 * so one of a few fixed words. `invalid`: the receiver refused the record (a mapping conflict,
 * a malformed entry); `too_large`: over what the receiver or transport takes; `too_old`,
 * `too_new`: outside the receiver's time window or retention; `encode`: the backend could
 * not encode it; `failed`: it failed alone, twice, with an error not known to be transient.
 */
export type RejectCode = 'invalid' | 'too_large' | 'too_old' | 'too_new' | 'encode' | 'failed';

export interface Rejection {
  /** The line's index in the batch given to send. */
  index: number;
  code: RejectCode;
  /** For the operator: what the receiver said. Never the line's content, never a secret. */
  reason: string;
}

/**
 * What happened to a batch. Every line it does not name was delivered: an empty result is
 * the whole batch delivered.
 */
export interface SendResult {
  /** Lines not delivered, to send again later (after the engine's backoff). */
  retry?: {
    /** Indexes in the batch, ascending; absent: every line not rejected. */
    lines?: readonly number[];
    /** How long the receiver asked to be left alone (Retry-After, throttling); the engine caps it. */
    afterMs?: number;
    reason: string;
  };
  /** Lines refused for good: the engine dead-letters and counts them, and never sends them again. */
  rejected?: readonly Rejection[];
  /** Lines delivered cut short to fit the transport (a datagram); the engine counts them. */
  truncated?: readonly number[];
}

export const DELIVERED: SendResult = Object.freeze({});

/**
 * What a send that failed as a whole throws, classified. Transient: the receiver or the way to
 * it is failing (refused or reset connections, timeouts, 5xx, 429, throttling, and a
 * configuration or permission error, which an operator may fix: retried as it is, forever).
 * Not transient: this batch itself is refused (an encoder exception, a datagram too long, a
 * 4xx that names the request as bad): the engine sends it in halves to find the line.
 */
export class SendError extends Error {
  readonly transient: boolean;
  /** How long the receiver asked to be left alone (Retry-After); the engine caps it. */
  readonly retryAfterMs: number | undefined;
  /** The rejection code of a line found to fail alone with this error. */
  readonly rejectCode: RejectCode | undefined;

  constructor(message: string, options: { transient: boolean; retryAfterMs?: number; rejectCode?: RejectCode; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SendError';
    this.transient = options.transient;
    this.retryAfterMs = options.retryAfterMs;
    this.rejectCode = options.rejectCode;
  }
}

/**
 * Node's codes for a connection that could not be made or was lost, and for names that did
 * not resolve (a DNS outage): the receiver or the network, never the batch.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
  'ENOENT', // a unix socket not there (yet)
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENOBUFS',
  'EAGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/**
 * Whether a send's failure says nothing about the batch: a SendError says so itself; an abort
 * or timeout, and Node's connection and DNS errors (on the error or its cause), are transient;
 * anything else (an exception from encoding, say) is not.
 */
export function isTransient(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof SendError) return e.transient;
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return true;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  }
  return false;
}

export interface Backend {
  /**
   * Ships one batch, in order, and says what became of each line (see SendResult): a backend
   * never retries, drops or counts by itself. Throws when the batch failed as a whole: with
   * a SendError saying whether that is transient. Anything else but an abort or one of
   * Node's connection errors is taken for the batch's fault and the batch is bisected, so a
   * backend marks every failure of its receiver or connection transient. The engine calls
   * send once at a time per backend instance, possibly with fewer lines than before (only
   * those to send again). `signal` aborts on plugin shutdown or when the send has taken
   * 60 s: stop and throw then.
   */
  send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult>;
  /** Releases connections; pending sends may be abandoned (the engine retries them). Safe to call twice. */
  close(): Promise<void>;
}

/** Batch limits a backend imposes (its protocol's), within which the engine batches. */
export interface BatchLimits {
  maxLines: number;
  /** Counted as the sum of the lines' byte lengths; a batch holds one line at least, whatever its size. */
  maxBytes: number;
  /** How long a batch that is not full may wait for more lines; the engine's default is 200 ms. */
  maxDelayMs?: number;
  /** Bytes the receiver counts per line on top of its length (CloudWatch's 26), added to each line against maxBytes. */
  lineOverheadBytes?: number;
}

/** Delays between retries of a failed batch: doubling from the first, capped, with jitter. */
export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface BackendFactory<Config> {
  /** The `backend` log-opt value, as Docker's built-in driver is named (`syslog`, ...). */
  readonly name: string;
  /**
   * Every log-opt of this backend, named as the built-in driver names them; not the shared
   * ones (tag, labels, labels-regex, env, env-regex), which arrive resolved in ContainerContext.
   */
  readonly optionKeys: readonly string[];
  /**
   * Validates this backend's log-opts (only its own keys are passed); throws InvalidOptionError.
   * An error message must never quote the value of a credential (a key, password or token).
   */
  parseOptions(opts: Readonly<Record<string, string>>): Config;
  batchLimits(config: Config): BatchLimits;
  /**
   * The backend's own multiline log-opts (awslogs-multiline-pattern, awslogs-datetime-format),
   * or null when none is set; for this backend they replace the shared multiline-* log-opts.
   */
  multiline?(config: Config): MultilineOptions | null;
  /** Optional (e.g. from fluentd-retry-wait); the engine's default is 1 s doubling to 30 s. */
  retryPolicy?(config: Config): RetryPolicy;
  /** Must not connect: a receiver down at StartLogging must not fail the container. */
  create(config: Config, container: ContainerContext): Backend;
}
