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
import { InvalidOptionError } from '../options/values.ts';
import { FILTER_OPTIONS, filterFor } from '../shaping/filter.ts';
import type { LineShaping } from '../shaping/line-shaper.ts';
import { REDACT_OPTIONS } from '../shaping/redact.ts';
import { ATTRIBUTE_OPTIONS, MULTILINE_OPTIONS, SHAPING_KEYS as OWN_SHAPING_KEYS, type ShapingOptions, parseShapingOptions } from '../shaping/options.ts';
import { STORE_OPTIONS, type StoreOptions, parseStoreOptions } from '../store/options.ts';

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
const STORE_KEYS = schemaKeys(STORE_OPTIONS);
/** The shared log-opts declared as schemas by the stage that owns them (README tables by name). */
export const SHARED_SCHEMAS: ReadonlyArray<{ name: string; schema: OptionSchema }> = [
  { name: 'filter', schema: FILTER_OPTIONS },
  { name: 'redact', schema: REDACT_OPTIONS },
  { name: 'rate-limit', schema: RATE_LIMIT_OPTIONS },
];
const CONTROL_KEYS: readonly string[] = SHARED_SCHEMAS.flatMap((s) => schemaKeys(s.schema));
const SHAPING_KEYS = [...OWN_SHAPING_KEYS, ...CONTROL_KEYS];
/** The README's tables of the log-opts that are no backend's, by name (parse-json's one row is in the overview). */
export const OPTION_TABLES: ReadonlyArray<{ name: string; schema: OptionSchema }> = [
  { name: 'store', schema: STORE_OPTIONS },
  { name: 'attributes', schema: ATTRIBUTE_OPTIONS },
  { name: 'multiline', schema: MULTILINE_OPTIONS },
  ...SHARED_SCHEMAS,
];

const DRIVER = 'logship';

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
  const shaping = parseShapingOptions(opts);
  checkSelected('filter-backends', shaping.filter?.backends ?? null, names, opts['filter-backends']);
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
