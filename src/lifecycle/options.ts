// Log-opts → a typed configuration, validated once at StartLogging. Nothing downstream
// parses option strings. Errors name the option and what it accepts, and fail `docker run`.

export interface StoreOptions {
  /** Rotate the current file once it would grow past this many bytes. */
  maxSizeBytes: number;
  /** Files kept in all, the current one included. */
  maxFiles: number;
  /** Gzip rotated files. */
  compress: boolean;
}

export interface LogOptions {
  store: StoreOptions;
}

export class InvalidOptionError extends Error {}

/** 20m in json-file's decimal units; the local driver's defaults otherwise. */
export const DEFAULT_STORE_OPTIONS: StoreOptions = { maxSizeBytes: 20_000_000, maxFiles: 5, compress: true };

// Keys the daemon itself consumes but passes to plugins too (logdriver-protocol.md §6).
const DAEMON_KEYS = new Set(['mode', 'max-buffer-size', 'cache-disabled']);
const CACHE_KEYS = ['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag'];
const STORE_KEYS = ['max-size', 'max-file', 'compress'];

const DRIVER = 'logship';

export function parseLogOptions(config: Record<string, string> | null | undefined): LogOptions {
  const opts = config ?? {};
  for (const key of Object.keys(opts)) {
    if (STORE_KEYS.includes(key) || DAEMON_KEYS.has(key)) continue;
    if (key.startsWith('cache-') && CACHE_KEYS.includes(key.slice('cache-'.length))) continue;
    throw new InvalidOptionError(
      `unknown log opt '${key}' for ${DRIVER} log driver (accepted: ${STORE_KEYS.join(', ')})`,
    );
  }
  const store = { ...DEFAULT_STORE_OPTIONS };
  if (opts['max-size'] !== undefined) store.maxSizeBytes = parseSize('max-size', opts['max-size']);
  if (opts['max-file'] !== undefined) store.maxFiles = parseCount('max-file', opts['max-file']);
  if (opts.compress !== undefined) store.compress = parseBool('compress', opts.compress);
  if (store.maxFiles === 1 && opts.compress !== undefined && store.compress) {
    throw new InvalidOptionError(
      `log opt 'compress' cannot be true when 'max-file' is 1: there are no rotated files to compress`,
    );
  }
  return { store };
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };
// The grammar of go-units FromHumanSize, which json-file uses: decimal units, `10m` = 10,000,000.
const SIZE_PATTERN = /^(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?$/i;

export function parseSize(key: string, value: string): number {
  const match = SIZE_PATTERN.exec(value.trim());
  const bytes = match ? Math.floor(Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? NaN)) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new InvalidOptionError(
      `invalid value '${value}' for log opt '${key}': expected a positive size such as 500k, 20m or 1g (decimal units, like json-file)`,
    );
  }
  return bytes;
}

function parseCount(key: string, value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number of files, 1 or more`);
  }
  return n;
}

// Go's strconv.ParseBool, which the built-in drivers use.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export function parseBool(key: string, value: string): boolean {
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected true or false`);
}
