// The contract between the delivery engine and the backends (one file per backend in
// src/backends/). A backend only turns lines into its receiver's wire format and sends
// them; the engine owns batching, retry, cursors and ordering, so no backend has a queue.
import type { Source } from '../fifo/log-entry.ts';
import type { MultilineOptions } from '../shaping/multiline.ts';

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
}

export interface Backend {
  /**
   * Ships one batch, in order. Resolves once the receiver has it (as far as its protocol
   * can tell: an ack, a completed write); rejects to have the engine retry the whole batch
   * later, so a backend never retries by itself and never drops. The engine calls send
   * once at a time per backend instance. `signal` aborts on plugin shutdown or when the
   * send has taken 60 s: stop and reject then.
   */
  send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<void>;
  /** Releases connections; pending sends may be abandoned (the engine retries them). */
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
