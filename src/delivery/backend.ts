// The contract between the delivery engine and the backends (one file per backend in
// src/backends/). A backend only turns lines into its receiver's wire format and sends
// them and says what became of each line; the engine owns batching, retry, bisection,
// cursors, ordering, counting and dead letters, so no backend has a queue.
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import type { LineShaping } from '../shaping/line-shaper.ts';
import type { MultilineOptions } from '../shaping/multiline.ts';
import type { OptionSchema, OptionValues } from '../options/schema.ts';
import type { RateLimit } from './rate-limit.ts';

/**
 * Why a receiver refused a line for good: a label of `logship_backend_lines_rejected_total`,
 * so one of a few fixed words. `invalid`: the receiver refused the record (a mapping conflict,
 * a malformed entry); `too_large`: over what the receiver or transport takes; `too_old`,
 * `too_new`: outside the receiver's time window or retention; `unauthorized`: the receiver
 * refuses this sender where the line goes (Kafka's TOPIC_AUTHORIZATION_FAILED); `encode`: the
 * backend could not encode it; `failed`: it failed alone, twice, with an error not known to be
 * transient.
 */
export type RejectCode = 'invalid' | 'too_large' | 'too_old' | 'too_new' | 'unauthorized' | 'encode' | 'failed';

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

/** What a send aborted by the engine (shutdown, its send deadline) fails with: transient, saying why. */
export function abortError(signal: AbortSignal): SendError {
  const reason: unknown = signal.reason;
  return new SendError(reason instanceof Error ? reason.message : 'aborted', { transient: true, cause: reason });
}

/** `err` as a transient SendError: the receiver or the way to it failed, not the batch. */
export function transientError(err: unknown): SendError {
  if (err instanceof SendError && err.transient) return err;
  return new SendError(err instanceof Error ? err.message : String(err), { transient: true, cause: err });
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

/** The plugin's proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY); '' is none. */
export interface ProxySettings {
  httpProxy: string;
  httpsProxy: string;
  /** Comma list of hosts (`.example.com`, `*`, `host:port`) reached directly. */
  noProxy: string;
}

/**
 * The plugin settings a backend is handed (it never reads process.env): the proxy, and its
 * own settings (its `settings` schema: credentials that must not be log-opts, which
 * `docker inspect` shows), parsed when the plugin started.
 */
export interface BackendSettings<Own = Readonly<Record<string, unknown>>> {
  proxy: ProxySettings;
  own: Own;
}

export interface BackendFactory<Config, S extends OptionSchema = OptionSchema, P extends OptionSchema = readonly []> {
  /** The `backend` log-opt value, as Docker's built-in driver is named (`syslog`, ...). */
  readonly name: string;
  /**
   * Every log-opt of this backend, named as the built-in driver names them, as data (see
   * options/schema.ts); not the shared ones (tag, labels, labels-regex, env, env-regex),
   * which arrive resolved in ContainerContext. Keys never overlap another backend's.
   */
  readonly options: S;
  /** The plugin settings (`docker plugin set` names) this backend reads. */
  readonly settings?: P;
  /**
   * The typed values of its options (parsed and checked one by one from the schema) to
   * its config: cross-field checks only; throws InvalidOptionError. Must not connect.
   */
  configure(values: OptionValues<S>, settings: BackendSettings<OptionValues<P>>): Config;
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

/** Any backend, as lists hold them (each one's own types are checked where it is declared). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyBackendFactory = BackendFactory<any, any, any>;

/**
 * A selected backend with its validated options bound in; `multiline` is the backend's own
 * (awslogs-multiline-pattern, ...) when it has them set, the shared multiline-* otherwise.
 */
export interface BackendPlan extends LineShaping {
  name: string;
  limits: BatchLimits;
  retry: RetryPolicy | null;
  /** This backend's shipping rate for the container; null: as fast as the receiver takes it. */
  rateLimit?: RateLimit | null;
  create(container: ContainerContext): Backend;
}
