// Log-opts → a typed configuration, validated once at StartLogging. Nothing downstream
// parses option strings. Errors name the option and what it accepts, and fail `docker run`.
//
// Keys: the store's (json-file's names), the ones shared by every backend (backend, tag,
// labels, env, ...), and each selected backend's own, which its factory validates. A key
// of a backend that is not selected is an error, so a typo in `backend` cannot silently
// leave an address unused.
import type { AnyBackendFactory, BackendFactory, BackendPlan, ProxySettings } from '../delivery/backend.ts';
import { RATE_LIMIT_OPTIONS, type RateLimit, parseRateLimit, rateLimitFor } from '../delivery/rate-limit.ts';
import { type OptionSchema, parseOptions, schemaKeys } from '../options/schema.ts';
import { InvalidOptionError, parseBool, parseCount, parseRamInBytes, parseSize, parseTimerDuration } from '../options/values.ts';
import { FILTER_OPTIONS, filterFor, parseFilter } from '../shaping/filter.ts';
import { type GoRegexp, compileGoRegexp, parseGoRegexpOption } from '../shaping/go-regexp.ts';
import type { LineShaping } from '../shaping/line-shaper.ts';
import { type MultilineMatcher, type MultilineOptions, datetimeFormatPattern } from '../shaping/multiline.ts';
import { MULTILINE_PRESETS, type MultilinePreset } from '../shaping/multiline-presets.ts';
import { REDACT_OPTIONS, parseRedaction } from '../shaping/redact.ts';
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
/** The shared log-opts declared as schemas by the stage that owns them (README tables by name). */
export const SHARED_SCHEMAS: ReadonlyArray<{ name: string; schema: OptionSchema }> = [
  { name: 'filter', schema: FILTER_OPTIONS },
  { name: 'redact', schema: REDACT_OPTIONS },
  { name: 'rate-limit', schema: RATE_LIMIT_OPTIONS },
];
const CONTROL_KEYS: readonly string[] = SHARED_SCHEMAS.flatMap((s) => schemaKeys(s.schema));
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
  const rateLimit = parseRateLimit(opts);
  checkSelected('rate-limit-backends', rateLimit?.backends ?? null, names, opts['rate-limit-backends']);
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

/** filter-backends and rate-limit-backends name backends that log opt 'backend' selects. */
function checkSelected(key: string, names: ReadonlySet<string> | null, selected: readonly string[], value: string | undefined): void {
  for (const name of names ?? []) {
    if (!selected.includes(name)) {
      throw new InvalidOptionError(
        `invalid value '${value}' for log opt '${key}': '${name}' is not a backend that log opt 'backend' selects (selected: ${selected.join(', ') || 'none'})`,
      );
    }
  }
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
  const filter = parseFilter(opts);
  checkSelected('filter-backends', filter?.backends ?? null, selected, opts['filter-backends']);
  return {
    tag,
    tagSet: Boolean(opts.tag),
    tagEmpty: opts.tag === '',
    attributes: {
      labels: listOption(opts.labels),
      labelsRegex: regexOption('labels-regex', opts['labels-regex']),
      env: listOption(opts.env),
      envRegex: regexOption('env-regex', opts['env-regex']),
    },
    multiline: parseMultilineOptions(opts),
    parseJson: opts['parse-json'] ? parseBool('parse-json', opts['parse-json']) : false,
    filter,
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
  return value ? parseGoRegexpOption(value, key) : null;
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

