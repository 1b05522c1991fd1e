// Log-opts → a typed configuration, validated once at StartLogging. Nothing downstream
// parses option strings. Errors name the option and what it accepts, and fail `docker run`.
//
// Keys: the store's (json-file's names), the ones shared by every backend (backend, tag,
// labels, env, ...), and each selected backend's own, which its factory validates. A key
// of a backend that is not selected is an error, so a typo in `backend` cannot silently
// leave an address unused.
import type { Backend, BackendFactory, BatchLimits, ContainerContext, RetryPolicy } from '../delivery/backend.ts';
import { DEFAULT_RATE_LIMIT_BURST_MS, RATE_LIMIT_OPTIONS, type RateLimit, rateLimitFor } from '../delivery/rate-limit.ts';
import type { Source } from '../fifo/log-entry.ts';
import type { AttributeSpec } from '../shaping/attributes.ts';
import { FILTER_OPTIONS, type LineFilter, filterFor } from '../shaping/filter.ts';
import { type GoRegexp, compileGoRegexp } from '../shaping/go-regexp.ts';
import type { LineShaping } from '../shaping/line-shaper.ts';
import { type MultilineMatcher, type MultilineOptions, datetimeFormatPattern } from '../shaping/multiline.ts';
import { MULTILINE_PRESETS, type MultilinePreset } from '../shaping/multiline-presets.ts';
import { REDACT_OPTIONS, REDACT_PRESET_NAMES, type RedactPreset, type RedactionSpec, presetPattern } from '../shaping/redact.ts';
import { type TagTemplate, TemplateError, compileTag } from '../shaping/tag.ts';

export interface StoreOptions {
  /** Rotate the current file once it would grow past this many bytes. */
  maxSizeBytes: number;
  /** Files kept in all, the current one included. */
  maxFiles: number;
  /** Gzip rotated files. */
  compress: boolean;
}

export interface ShapingOptions extends LineShaping {
  /** Null: nothing masked. Env values are bound per container (redactorFor). */
  redaction: RedactionSpec | null;
  /** `{{.ID}}` unless `tag` is set. */
  tag: TagTemplate;
  /** `tag` was given (not empty, which Docker treats as unset). */
  tagSet: boolean;
  attributes: AttributeSpec;
}

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

export interface LogOptions {
  store: StoreOptions;
  shaping: ShapingOptions;
  /** Empty: the local copy only. */
  backends: BackendPlan[];
  /** The rate limit as given, before it is bound to backends; null: none. */
  rateLimit: RateLimit | null;
}

export class InvalidOptionError extends Error {}

/** 20m in json-file's decimal units; the local driver's defaults otherwise. */
export const DEFAULT_STORE_OPTIONS: StoreOptions = { maxSizeBytes: 20_000_000, maxFiles: 5, compress: true };

// Keys the daemon itself consumes but passes to plugins too (logdriver-protocol.md §6).
const DAEMON_KEYS = new Set(['mode', 'max-buffer-size', 'cache-disabled']);
const CACHE_KEYS = ['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag'];
const STORE_KEYS = ['max-size', 'max-file', 'compress'];
const MULTILINE_KEYS = [
  'multiline-pattern',
  'datetime-format',
  'multiline-preset',
  'multiline-flush-timeout',
  'multiline-max-lines',
  'multiline-max-bytes',
];
const CONTROL_KEYS: readonly string[] = [...FILTER_OPTIONS, ...REDACT_OPTIONS, ...RATE_LIMIT_OPTIONS].map((o) => o.key);
const SHAPING_KEYS = ['tag', 'labels', 'labels-regex', 'env', 'env-regex', ...MULTILINE_KEYS, 'parse-json', ...CONTROL_KEYS];

/** Long enough for a trace printed in several writes; short enough that a last line is not held for long. */
export const DEFAULT_MULTILINE_FLUSH_TIMEOUT_MS = 1000;
/** A deep Java trace with its causes runs to a few hundred lines. */
export const DEFAULT_MULTILINE_MAX_LINES = 1000;
/**
 * 128 KiB holds such a trace and stays under every receiver's per-record limit (CloudWatch
 * 256 KiB, Cloud Logging 256 KB) with room for the record's metadata and for JSON escaping,
 * which writes each '\n' and '\t' of a trace as two bytes.
 */
export const DEFAULT_MULTILINE_MAX_BYTES = 128 * 1024;
/** An event is held in memory until it closes: no bigger than the longest line reassembled (1 MiB). */
export const MAX_MULTILINE_MAX_BYTES = 1024 * 1024;
/** Every line takes one byte at least, its '\n': more lines than bytes is no limit. */
export const MAX_MULTILINE_MAX_LINES = MAX_MULTILINE_MAX_BYTES;

const DRIVER = 'logship';
export const DEFAULT_TAG = '{{.ID}}';

export function parseLogOptions(
  config: Record<string, string> | null | undefined,
  factories: readonly BackendFactory<unknown>[],
): LogOptions {
  const opts = config ?? {};
  const selected = parseBackendList(opts.backend, factories);
  const own = new Map<BackendFactory<unknown>, Record<string, string>>(selected.map((f) => [f, {}]));
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'backend' || STORE_KEYS.includes(key) || SHAPING_KEYS.includes(key) || DAEMON_KEYS.has(key)) continue;
    if (key.startsWith('cache-') && CACHE_KEYS.includes(key.slice('cache-'.length))) continue;
    const owner = factories.find((f) => f.optionKeys.includes(key));
    if (owner && own.has(owner)) {
      own.get(owner)![key] = value;
      continue;
    }
    if (owner) {
      throw new InvalidOptionError(
        `log opt '${key}' is an option of backend '${owner.name}', which log opt 'backend' does not select (backend=${opts.backend ?? ''})`,
      );
    }
    const accepted = ['backend', ...STORE_KEYS, ...SHAPING_KEYS, ...selected.flatMap((f) => f.optionKeys)];
    throw new InvalidOptionError(`unknown log opt '${key}' for ${DRIVER} log driver (accepted: ${accepted.join(', ')})`);
  }
  const names = selected.map((f) => f.name);
  const shaping = parseShapingOptions(opts, names);
  const rateLimit = parseRateLimit(opts, names);
  return {
    store: parseStoreOptions(opts),
    shaping,
    backends: selected.map((f) => plan(f, own.get(f)!, shaping, rateLimitFor(rateLimit, f.name))),
    rateLimit,
  };
}

function parseBackendList(value: string | undefined, factories: readonly BackendFactory<unknown>[]): BackendFactory<unknown>[] {
  if (value === undefined || value.trim() === '') return [];
  const names = factories.map((f) => f.name);
  const selected: BackendFactory<unknown>[] = [];
  for (const name of value.split(',').map((n) => n.trim())) {
    const factory = factories.find((f) => f.name === name);
    if (!factory) {
      throw new InvalidOptionError(
        `invalid value '${value}' for log opt 'backend': '${name}' is not a backend (accepted: a comma-separated list of ${names.length > 0 ? names.join(', ') : 'none: no backend is built in'})`,
      );
    }
    if (selected.includes(factory)) throw new InvalidOptionError(`invalid value '${value}' for log opt 'backend': '${name}' is listed twice`);
    selected.push(factory);
  }
  return selected;
}

function plan<Config>(
  factory: BackendFactory<Config>,
  opts: Record<string, string>,
  shaping: LineShaping,
  rateLimit: RateLimit | null,
): BackendPlan {
  const config = factory.parseOptions(opts);
  return {
    name: factory.name,
    limits: factory.batchLimits(config),
    retry: factory.retryPolicy?.(config) ?? null,
    multiline: factory.multiline?.(config) ?? shaping.multiline,
    parseJson: shaping.parseJson,
    filter: filterFor(shaping.filter ?? null, factory.name),
    rateLimit,
    create: (container) => factory.create(config, container),
  };
}

/** A list of selected backends' names (filter-backends, rate-limit-backends); null when unset. */
function backendSubset(key: string, value: string | undefined, selected: readonly string[]): ReadonlySet<string> | null {
  if (!value) return null;
  const names = value.split(',').map((n) => n.trim());
  for (const name of names) {
    if (!selected.includes(name)) {
      throw new InvalidOptionError(
        `invalid value '${value}' for log opt '${key}': '${name}' is not a backend that log opt 'backend' selects (selected: ${selected.join(', ') || 'none'})`,
      );
    }
  }
  return new Set(names);
}

function parseFilter(opts: Record<string, string>, selected: readonly string[]): LineFilter | null {
  let streams: Set<Source> | null = null;
  if (opts['ship-streams']) {
    streams = new Set();
    for (const name of opts['ship-streams'].split(',').map((n) => n.trim())) {
      if (name !== 'stdout' && name !== 'stderr') {
        throw new InvalidOptionError(`invalid value '${opts['ship-streams']}' for log opt 'ship-streams': expected stdout, stderr or stdout,stderr`);
      }
      streams.add(name);
    }
    if (streams.size === 2) streams = null;
  }
  const drop = regexOption('drop-pattern', opts['drop-pattern']);
  const keep = regexOption('keep-pattern', opts['keep-pattern']);
  const backends = backendSubset('filter-backends', opts['filter-backends'], selected);
  if (streams === null && drop === null && keep === null) {
    if (backends !== null) throw new InvalidOptionError(`log opt 'filter-backends' needs one of 'ship-streams', 'drop-pattern' or 'keep-pattern' (it only says which backends they apply to)`);
    return null;
  }
  return { streams, drop, keep, backends };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseRedaction(opts: Record<string, string>): RedactionSpec | null {
  const patterns = [];
  if (opts.redact) {
    const names = opts.redact.split(',').map((n) => n.trim());
    const presets = names.includes('all') ? REDACT_PRESET_NAMES : names;
    for (const name of presets) {
      if (!(REDACT_PRESET_NAMES as readonly string[]).includes(name)) {
        throw new InvalidOptionError(`invalid value '${opts.redact}' for log opt 'redact': '${name}' is not a preset (accepted: a comma-separated list of ${REDACT_PRESET_NAMES.join(', ')}, or all)`);
      }
      patterns.push(presetPattern(name as RedactPreset));
    }
  }
  const own = regexOption('redact-pattern', opts['redact-pattern']);
  if (own) patterns.push(own);
  const envNames = opts['redact-env'] ? opts['redact-env'].split(',').map((n) => n.trim()) : [];
  for (const name of envNames) {
    if (!ENV_NAME.test(name)) {
      throw new InvalidOptionError(`invalid value '${opts['redact-env']}' for log opt 'redact-env': '${name}' is not an environment variable name (letters, digits and _, not starting with a digit)`);
    }
  }
  const local = opts['redact-local'] ? parseBool('redact-local', opts['redact-local']) : false;
  if (patterns.length === 0 && envNames.length === 0) {
    if (local) throw new InvalidOptionError(`log opt 'redact-local' needs one of 'redact', 'redact-pattern' or 'redact-env' (it only says whether the local copy is masked too)`);
    return null;
  }
  return { patterns, envNames, local };
}

function parseRateLimit(opts: Record<string, string>, selected: readonly string[]): RateLimit | null {
  const lines = opts['rate-limit-lines'];
  const bytes = opts['rate-limit-bytes'];
  const linesPerSec = lines ? parsePositiveInteger('rate-limit-lines', lines, 'lines per second') : null;
  const bytesPerSec = bytes ? parseRamInBytes('rate-limit-bytes', bytes) : null;
  const burst = opts['rate-limit-burst'];
  const burstMs = burst ? parseTimerDuration('rate-limit-burst', burst, 1) : DEFAULT_RATE_LIMIT_BURST_MS;
  if (burstMs > 3_600_000) throw new InvalidOptionError(`invalid value '${burst}' for log opt 'rate-limit-burst': expected a duration from 1ms to 1h, such as 500ms or 10s`);
  const mode = opts['rate-limit-mode'] || 'wait';
  if (mode !== 'wait' && mode !== 'drop') throw new InvalidOptionError(`invalid value '${mode}' for log opt 'rate-limit-mode': expected wait or drop`);
  const backends = backendSubset('rate-limit-backends', opts['rate-limit-backends'], selected);
  if (linesPerSec === null && bytesPerSec === null) {
    const set = ['rate-limit-burst', 'rate-limit-mode', 'rate-limit-backends'].find((k) => opts[k]);
    if (set) throw new InvalidOptionError(`log opt '${set}' needs 'rate-limit-lines' or 'rate-limit-bytes' (it only tunes the rate limit)`);
    return null;
  }
  return { linesPerSec, bytesPerSec, burstMs, mode, backends };
}

function parsePositiveInteger(key: string, value: string, what: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number of ${what}, 1 or more`);
  return n;
}

function parseShapingOptions(opts: Record<string, string>, selected: readonly string[]): ShapingOptions {
  let tag: TagTemplate;
  try {
    // Docker treats an empty tag as unset.
    tag = compileTag(opts.tag || DEFAULT_TAG);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new InvalidOptionError(`invalid value '${opts.tag}' for log opt 'tag': ${err.message}`);
  }
  return {
    tag,
    tagSet: Boolean(opts.tag),
    attributes: {
      labels: listOption(opts.labels),
      labelsRegex: regexOption('labels-regex', opts['labels-regex']),
      env: listOption(opts.env),
      envRegex: regexOption('env-regex', opts['env-regex']),
    },
    multiline: parseMultilineOptions(opts),
    parseJson: opts['parse-json'] ? parseBool('parse-json', opts['parse-json']) : false,
    filter: parseFilter(opts, selected),
    redaction: parseRedaction(opts),
  };
}

function parseMultilineOptions(opts: Record<string, string>): MultilineOptions | null {
  // Empty values count as unset, as Docker treats awslogs-multiline-pattern.
  const set = MULTILINE_KEYS.filter((key) => opts[key]);
  const matchers = set.filter((key) => key === 'multiline-pattern' || key === 'datetime-format' || key === 'multiline-preset');
  if (matchers.length > 1) {
    throw new InvalidOptionError(`log opts '${matchers[0]}' and '${matchers[1]}' cannot both be set: choose one way to find the first line of an event`);
  }
  if (matchers.length === 0) {
    if (set.length === 0) return null;
    throw new InvalidOptionError(
      `log opt '${set[0]}' needs one of 'multiline-pattern', 'datetime-format' or 'multiline-preset' (it only tunes how lines are joined into events)`,
    );
  }
  const flushTimeout = opts['multiline-flush-timeout'];
  const flushTimeoutMs = flushTimeout ? parseTimerDuration('multiline-flush-timeout', flushTimeout, 1) : DEFAULT_MULTILINE_FLUSH_TIMEOUT_MS;
  return {
    matcher: parseMultilineMatcher(matchers[0]!, opts[matchers[0]!]!),
    flushTimeoutMs,
    maxLines: opts['multiline-max-lines'] ? parseLineCount('multiline-max-lines', opts['multiline-max-lines']) : DEFAULT_MULTILINE_MAX_LINES,
    maxBytes: opts['multiline-max-bytes']
      ? parseRamInBytes('multiline-max-bytes', opts['multiline-max-bytes'], MAX_MULTILINE_MAX_BYTES)
      : DEFAULT_MULTILINE_MAX_BYTES,
  };
}

function parseMultilineMatcher(key: string, value: string): MultilineMatcher {
  if (key === 'multiline-preset') {
    if (!(MULTILINE_PRESETS as readonly string[]).includes(value)) {
      throw new InvalidOptionError(`invalid value '${value}' for log opt 'multiline-preset': expected ${MULTILINE_PRESETS.join(', ')}`);
    }
    return { kind: 'preset', preset: value as MultilinePreset };
  }
  try {
    return { kind: 'first-line', pattern: key === 'datetime-format' ? datetimeFormatPattern(value) : compileGoRegexp(value) };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const accepted = key === 'datetime-format' ? 'expected a strftime format such as %Y-%m-%d %H:%M:%S' : `expected a Go regular expression (RE2 syntax)`;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': ${err.message}; ${accepted}`);
  }
}

function parseLineCount(key: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_MULTILINE_MAX_LINES) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number of lines from 1 to ${MAX_MULTILINE_MAX_LINES}`);
  }
  return n;
}

// As moby splits it: on ',' only, with no trimming.
function listOption(value: string | undefined): string[] {
  return value ? value.split(',') : [];
}

function regexOption(key: string, value: string | undefined): GoRegexp | null {
  if (!value) return null;
  try {
    return compileGoRegexp(value);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': ${err.message}; expected a Go regular expression (RE2 syntax)`);
  }
}

function parseStoreOptions(opts: Record<string, string>): StoreOptions {
  const store = { ...DEFAULT_STORE_OPTIONS };
  if (opts['max-size'] !== undefined) store.maxSizeBytes = parseSize('max-size', opts['max-size']);
  if (opts['max-file'] !== undefined) store.maxFiles = parseCount('max-file', opts['max-file']);
  if (opts.compress !== undefined) store.compress = parseBool('compress', opts.compress);
  if (store.maxFiles === 1 && opts.compress !== undefined && store.compress) {
    throw new InvalidOptionError(
      `log opt 'compress' cannot be true when 'max-file' is 1: there are no rotated files to compress`,
    );
  }
  return store;
}

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

function parseCount(key: string, value: string): number {
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
