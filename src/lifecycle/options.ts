// Log-opts → a typed configuration, validated once at StartLogging. Nothing downstream
// parses option strings. Errors name the option and what it accepts, and fail `docker run`.
//
// Keys: the store's (json-file's names), the ones shared by every backend (backend, tag,
// labels, env, ...), and each selected backend's own, which its factory validates. A key
// of a backend that is not selected is an error, so a typo in `backend` cannot silently
// leave an address unused.
import type { Source } from '../codec/log-entry.ts';
import type { AnyBackendFactory, BackendFactory, BackendPlan, ProxySettings } from '../delivery/backend.ts';
import { DEFAULT_RATE_LIMIT_BURST_MS, RATE_LIMIT_OPTIONS, type RateLimit, rateLimitFor } from '../delivery/rate-limit.ts';
import { type OptionSchema, parseOptions, schemaKeys } from '../options/schema.ts';
import { InvalidOptionError, parseBool, parseCount, parseRamInBytes, parseSize, parseTimerDuration } from '../options/values.ts';
import { FILTER_OPTIONS, type LineFilter, filterFor } from '../shaping/filter.ts';
import { type GoRegexp, compileGoRegexp } from '../shaping/go-regexp.ts';
import type { LineShaping } from '../shaping/line-shaper.ts';
import { type MultilineMatcher, type MultilineOptions, datetimeFormatPattern } from '../shaping/multiline.ts';
import { MULTILINE_PRESETS, type MultilinePreset } from '../shaping/multiline-presets.ts';
import { REDACT_OPTIONS, REDACT_PRESET_NAMES, type RedactPreset, presetPattern } from '../shaping/redact.ts';
import type { RedactionSpec } from '../shaping/redact.ts';
import type { ShapingOptions } from '../shaping/options.ts';
import { type TagTemplate, TemplateError, compileTag } from '../shaping/tag.ts';
import { DEFAULT_STORE_OPTIONS, type StoreOptions } from '../store/options.ts';

export interface LogOptions {
  store: StoreOptions;
  shaping: ShapingOptions;
  /** Empty: the local copy only. */
  backends: BackendPlan[];
  /** The rate limit as given, before it is bound to backends; null: none. */
  rateLimit: RateLimit | null;
}

/**
 * The plugin settings backends are handed, read once when the plugin starts: the proxy, and
 * the values of the settings their `settings` schemas name (empty ones dropped).
 */
export interface BackendEnvironment {
  proxy: ProxySettings;
  env: Readonly<Record<string, string>>;
}

export const NO_ENVIRONMENT: BackendEnvironment = Object.freeze({ proxy: { httpProxy: '', httpsProxy: '', noProxy: '' }, env: {} });

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
  factories: readonly AnyBackendFactory[],
  environment: BackendEnvironment = NO_ENVIRONMENT,
): LogOptions {
  const opts = config ?? {};
  const selected = parseBackendList(opts.backend, factories);
  const own = new Map<AnyBackendFactory, Record<string, string>>(selected.map((f) => [f, {}]));
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'backend' || STORE_KEYS.includes(key) || SHAPING_KEYS.includes(key) || DAEMON_KEYS.has(key)) continue;
    if (key.startsWith('cache-') && CACHE_KEYS.includes(key.slice('cache-'.length))) continue;
    const owner = factories.find((f) => schemaKeys(f.options).includes(key));
    if (owner && own.has(owner)) {
      own.get(owner)![key] = value;
      continue;
    }
    if (owner) {
      throw new InvalidOptionError(
        `log opt '${key}' is an option of backend '${owner.name}', which log opt 'backend' does not select (backend=${opts.backend ?? ''})`,
      );
    }
    const accepted = ['backend', ...STORE_KEYS, ...SHAPING_KEYS, ...selected.flatMap((f) => schemaKeys(f.options))];
    throw new InvalidOptionError(`unknown log opt '${key}' for ${DRIVER} log driver (accepted: ${accepted.join(', ')})`);
  }
  const names = selected.map((f) => f.name);
  const shaping = parseShapingOptions(opts, names);
  const rateLimit = parseRateLimit(opts, names);
  return {
    store: parseStoreOptions(opts),
    shaping,
    backends: selected.map((f) => plan(f, own.get(f)!, shaping, environment, rateLimitFor(rateLimit, f.name))),
    rateLimit,
  };
}

function parseBackendList(value: string | undefined, factories: readonly AnyBackendFactory[]): AnyBackendFactory[] {
  if (value === undefined || value.trim() === '') return [];
  const names = factories.map((f) => f.name);
  const selected: AnyBackendFactory[] = [];
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

/**
 * A backend's config from its own log-opts: each value parsed by its schema, then the
 * factory's cross-field checks, with the plugin settings it declares.
 */
export function configureBackend<Config, S extends OptionSchema, P extends OptionSchema>(
  factory: BackendFactory<Config, S, P>,
  opts: Readonly<Record<string, string>>,
  environment: BackendEnvironment = NO_ENVIRONMENT,
): Config {
  const own = parseOptions((factory.settings ?? []) as P, environment.env);
  return factory.configure(parseOptions(factory.options, opts), { proxy: environment.proxy, own });
}

function plan(
  factory: AnyBackendFactory,
  opts: Record<string, string>,
  shaping: LineShaping,
  environment: BackendEnvironment,
  rateLimit: RateLimit | null,
): BackendPlan {
  const config: unknown = configureBackend(factory, opts, environment);
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

