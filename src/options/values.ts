// The value parsers every option goes through (log-opts and plugin settings alike), one of
// each kind, with the Go grammars Docker's own drivers parse the same values with. Errors
// name the option and what it accepts.

/** An option's value is refused: the message names the option and what it accepts (never a secret's value). */
export class InvalidOptionError extends Error {}

// The grammar of go-units, which Docker parses sizes with: `10m`, `1.5g`, `512KiB`. Its
// FromHumanSize (json-file's max-size) reads the units as decimal, RAMInBytes (max-buffer-size,
// fluentd-buffer-limit) as binary.
const SIZE_PATTERN = /^(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?$/i;
const DECIMAL_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };
const BINARY_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** Bytes for a positive size in those units; NaN when it is not one. */
function sizeInBytes(value: string, units: Record<string, number>): number {
  const match = SIZE_PATTERN.exec(value);
  const bytes = match ? Math.floor(Number(match[1]) * (units[(match[2] ?? '').toLowerCase()] ?? NaN)) : NaN;
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : NaN;
}

/** go-units FromHumanSize, as json-file parses max-size: decimal units, `10m` = 10,000,000. */
export function parseSize(key: string, value: string): number {
  const bytes = sizeInBytes(value.trim(), DECIMAL_UNITS);
  if (Number.isNaN(bytes)) {
    throw new InvalidOptionError(
      `invalid value '${value}' for log opt '${key}': expected a positive size such as 500k, 20m or 1g (decimal units, like json-file)`,
    );
  }
  return bytes;
}

/**
 * go-units RAMInBytes, as Docker parses fluentd-buffer-limit: binary units, `1m` = 1,048,576;
 * at most `max` bytes.
 */
export function parseRamInBytes(key: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  const bytes = sizeInBytes(value, BINARY_UNITS);
  if (Number.isNaN(bytes) || bytes > max) {
    const what = max === Number.MAX_SAFE_INTEGER ? 'a size such as 512k or 8m' : `a size of at most ${humanBytes(max)}, such as 512k`;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected ${what} (binary units)`);
  }
  return bytes;
}

function humanBytes(n: number): string {
  for (const [unit, size] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) if (n % size === 0) return `${n / size}${unit}`;
  return String(n);
}

export function parseCount(key: string, value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number of files, 1 or more`);
  }
  return n;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Go's time.Duration is an int64 of nanoseconds: ParseDuration refuses anything longer (about 2,562,047 h). */
const MAX_GO_DURATION_MS = 9_223_372_036_854.775807;

/** Go's time.ParseDuration (`1s`, `500ms`, `1m30s`), in milliseconds; negative is refused. */
export function parseGoDuration(key: string, value: string): number {
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let consumed = 0;
  for (let m = part.exec(value); m; m = part.exec(value)) {
    ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    consumed = part.lastIndex;
  }
  if (value === '0') return 0;
  if (value === '' || consumed !== value.length || ms > MAX_GO_DURATION_MS) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a duration such as 500ms, 1s or 1m30s`);
  }
  return ms;
}

/**
 * Durations the plugin sets a timer for are whole milliseconds (AbortSignal.timeout throws on
 * a fraction, and a timer truncates one), and timers take at most 2^31-1 ms, about 24.8 days:
 * past that Node fires them at once. A day is the bound; no log-opt needs longer.
 */
export const MAX_TIMER_DURATION_MS = 24 * 3_600_000;

/**
 * A Go duration for a timer: rounded up to whole milliseconds (so `1500us` is 2 ms), then
 * from `minMs` (0 allowed when 0) to MAX_TIMER_DURATION_MS.
 */
export function parseTimerDuration(key: string, value: string, minMs: number): number {
  const ms = Math.ceil(parseGoDuration(key, value));
  if (ms < minMs || ms > MAX_TIMER_DURATION_MS) {
    throw new InvalidOptionError(
      `invalid value '${value}' for log opt '${key}': expected a duration from ${minMs === 0 ? '0' : `${minMs}ms`} to 24h, such as 500ms, 2s or 1m30s`,
    );
  }
  return ms;
}

// Go's strconv.ParseBool, which the built-in drivers use.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export function parseBool(key: string, value: string): boolean {
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected true or false`);
}
