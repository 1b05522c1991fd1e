// A container's shipping rate per backend: a token bucket of lines and one of bytes, each
// holding `burst` worth of its rate. In the default mode ("wait") the shipper sends only what
// the buckets allow and reads no further meanwhile, so lines above the rate wait in the store
// (lag grows; only what rotation evicts before it ships is lost, counted as evicted). In
// "drop" mode a line that finds the buckets empty is not shipped, counted as rate_limited.
// The local copy and `docker logs` keep every line either way.
import { defineOptions, parseOptions } from '../options/schema.ts';
import { InvalidOptionError, parseTimerDuration } from '../options/values.ts';
import { nameSet } from '../shaping/filter.ts';

export interface RateLimit {
  /** Lines per second; null: no limit on lines. */
  linesPerSec: number | null;
  /** Bytes per second (of the lines as shipped, before the backend's encoding); null: no limit. */
  bytesPerSec: number | null;
  /** How much of the rate the buckets hold when full: the longest burst at full speed. */
  burstMs: number;
  mode: 'wait' | 'drop';
  /** Backends it applies to; null: every selected backend. */
  backends: ReadonlySet<string> | null;
}

/** The log-opts of rate limits (options/schema.ts parses them; the README's table comes from here). */
export const RATE_LIMIT_OPTIONS = defineOptions([
  { key: 'rate-limit-lines', type: 'custom', accepts: 'a whole number of lines per second, 1 or more', defaultDoc: 'no limit', doc: 'Lines per second a backend ships of this container.', parse: parseLinesPerSec },
  { key: 'rate-limit-bytes', type: 'size', units: 'binary', defaultDoc: 'no limit', doc: 'Bytes per second a backend ships of this container (of the lines as shipped, before the encoding), in binary units: 512k, 1m.' },
  { key: 'rate-limit-burst', type: 'custom', accepts: 'a duration from 1ms to 1h, such as 500ms or 10s', default: '1s', doc: 'How much of the rate may go at once after a quiet spell (the buckets hold this long of the rate), 1ms to 1h.', parse: parseBurst },
  { key: 'rate-limit-mode', type: 'enum', values: ['wait', 'drop'], default: 'wait', doc: 'wait: lines above the rate wait in the store (lag grows); drop: they are not shipped, counted as rate_limited.' },
  { key: 'rate-limit-backends', type: 'custom', accepts: 'a comma-separated list of selected backends', defaultDoc: 'every selected backend', doc: 'The backends the rate limit applies to, each at the full rate.', parse: nameSet },
]);

/** The rate limit the log-opts ask for; null: none. */
export function parseRateLimit(opts: Readonly<Record<string, string>>): RateLimit | null {
  const values = parseOptions(RATE_LIMIT_OPTIONS, opts);
  const linesPerSec = values['rate-limit-lines'] ?? null;
  const bytesPerSec = values['rate-limit-bytes'] ?? null;
  if (linesPerSec === null && bytesPerSec === null) {
    const set = ['rate-limit-burst', 'rate-limit-mode', 'rate-limit-backends'].find((k) => opts[k]);
    if (set) throw new InvalidOptionError(`log opt '${set}' needs 'rate-limit-lines' or 'rate-limit-bytes' (it only tunes the rate limit)`);
    return null;
  }
  return { linesPerSec, bytesPerSec, burstMs: values['rate-limit-burst'], mode: values['rate-limit-mode'], backends: values['rate-limit-backends'] ?? null };
}

function parseLinesPerSec(value: string, key: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number of lines per second, 1 or more`);
  return n;
}

function parseBurst(value: string, key: string): number {
  const ms = parseTimerDuration(key, value, 1);
  if (ms > 3_600_000) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a duration from 1ms to 1h, such as 500ms or 10s`);
  return ms;
}

export function rateLimitFor(limit: RateLimit | null, backend: string): RateLimit | null {
  if (limit === null || (limit.backends !== null && !limit.backends.has(backend))) return null;
  return limit;
}

export class TokenBucket {
  private readonly limit: RateLimit;
  private readonly capLines: number;
  private readonly capBytes: number;
  private lines: number;
  private bytes: number;
  private at: number;

  constructor(limit: RateLimit, nowMs: number) {
    this.limit = limit;
    // At least one line's worth, or a rate below 1/burst could never send anything.
    this.capLines = limit.linesPerSec === null ? Infinity : Math.max(1, (limit.linesPerSec * limit.burstMs) / 1000);
    this.capBytes = limit.bytesPerSec === null ? Infinity : Math.max(1, (limit.bytesPerSec * limit.burstMs) / 1000);
    this.lines = this.capLines;
    this.bytes = this.capBytes;
    this.at = nowMs;
  }

  private refill(nowMs: number): void {
    const s = Math.max(0, nowMs - this.at) / 1000;
    this.at = nowMs;
    if (this.limit.linesPerSec !== null) this.lines = Math.min(this.capLines, this.lines + s * this.limit.linesPerSec);
    if (this.limit.bytesPerSec !== null) this.bytes = Math.min(this.capBytes, this.bytes + s * this.limit.bytesPerSec);
  }

  /**
   * Drop mode: takes one line of `size` bytes if the buckets hold it. A line larger than the
   * bytes bucket goes when the bucket is full, so no size is refused for good.
   */
  tryTake(size: number, nowMs: number): boolean {
    this.refill(nowMs);
    if (this.lines < 1 || this.bytes < Math.min(size, this.capBytes)) return false;
    this.lines -= 1;
    this.bytes -= size;
    return true;
  }

  /**
   * Wait mode: of lines of these sizes (in order, at most `count`), how many may go now, or,
   * when none may, -ms to wait. It waits for the buckets to hold the whole batch, or as much
   * as they can hold, so a limited backend sends few full batches rather than many of one line.
   * A batch's last line may overdraw the bytes bucket (the debt is paid by waiting next time).
   */
  take(sizes: (i: number) => number, count: number, nowMs: number): number {
    this.refill(nowMs);
    let total = 0;
    for (let i = 0; i < count; i++) total += sizes(i);
    const needLines = Math.min(count, this.capLines);
    const needBytes = Math.min(total, this.capBytes);
    const waitLines = this.lines >= needLines ? 0 : ((needLines - this.lines) / this.limit.linesPerSec!) * 1000;
    const waitBytes = this.bytes >= needBytes ? 0 : ((needBytes - this.bytes) / this.limit.bytesPerSec!) * 1000;
    const wait = Math.max(waitLines, waitBytes);
    if (wait > 0) return -Math.ceil(wait);
    let n = 0;
    let bytes = 0;
    while (n < count && n + 1 <= this.lines && (n === 0 || bytes < this.bytes)) bytes += sizes(n++);
    this.lines -= n;
    this.bytes -= bytes;
    return n;
  }
}
