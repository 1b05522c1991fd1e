// Plugin-wide settings, from the environment that `docker plugin set` controls, declared as
// data (options/schema.ts parses them); config.json's env and the README's table agree with
// the declarations (test/unit/settings.test.ts, npm run docs:options).
import { BACKENDS } from './backends/index.ts';
import type { BackendEnvironment } from './lifecycle/options.ts';
import { type OptionSchema, type OptionSpec, defineOptions, parseOptions, schemaKeys } from './options/schema.ts';
import { isLevel, type Level } from './observability/log.ts';
import { type ListenAddress, parseListenAddress } from './observability/metrics-server.ts';
import { InvalidOptionError, parseSize } from './options/values.ts';

export interface Settings {
  /** Where container stores live: a host bind mount, so they survive plugin re-creation. */
  dataDir: string;
  /** The unix socket the daemon dials; config.json's interface.socket names it. */
  socketPath: string;
  /** Where the daemon creates FIFOs, as seen inside the plugin; StartLogging paths must be in it. */
  fifoDir: string;
  logLevel: Level;
  /** Where /metrics and /health listen; null (the default) serves neither. */
  metricsAddress: ListenAddress | null;
  /**
   * A store no FIFO writes into and no write touched for this long belongs to a container
   * that is gone (the daemon never says so) and is removed. 0 = keep forever.
   */
  retentionMs: number;
  /** Rotated segments are evicted, oldest first across all stores, above this. 0 = no quota. */
  diskQuotaBytes: number;
  /** What backends are handed (they never read the environment): the proxy and their own settings. */
  backends: BackendEnvironment;
}

export class InvalidSettingError extends Error {}

/** One week: `docker logs` of a container stopped for longer than that is gone. */
export const DEFAULT_RETENTION = '7d';

/** The plugin's own settings. An empty one is unset, but for LOG_LEVEL, which main.ts empties out before (dropEmptySettings). */
export const PLUGIN_SETTINGS = defineOptions([
  { key: 'LOG_LEVEL', type: 'custom', accepts: 'debug, info, warn or error', parse: parseLevel, default: 'info', empty: 'value', doc: '`debug`, `info`, `warn` or `error`; the plugin logs JSON lines into the daemon\'s log' },
  { key: 'DATA_DIR', type: 'string', default: '/var/lib/logship', doc: 'the folder of the local copies (the `data` mount) as seen inside the plugin' },
  { key: 'METRICS_ADDRESS', type: 'custom', accepts: 'host:port or :port', parse: parseListenAddress, defaultDoc: 'empty (off)', doc: '`host:port` or `:port` (all interfaces) for `/metrics` and `/health`; the plugin uses the host\'s network, so this is a port on the host' },
  { key: 'RETENTION', type: 'custom', accepts: '0 or a duration of at least 1s', parse: parseRetention, default: DEFAULT_RETENTION, doc: 'remove the store of a container that is gone after this long (`7d`, `168h`, `1d12h`, `90m`); `0` keeps stores forever. See [Keeping the disk in bounds](#keeping-the-disk-in-bounds)' },
  { key: 'DISK_QUOTA', type: 'custom', accepts: '0 or a size', parse: parseQuota, default: '0', defaultDoc: '`0` (none)', doc: 'cap on all stores together (`10g`, `500m`, decimal units like `max-size`); above it the oldest rotated files of all containers are evicted first' },
  { key: 'HTTP_PROXY', type: 'string', doc: 'a proxy (`http://proxy:3128`) for the HTTP backends\' `http://` receivers (`http_proxy` wins, as curl reads it, where the environment has it); read once at start and handed to the backends. The AWS and Google SDKs keep their own ways (not these)' },
  { key: 'HTTPS_PROXY', type: 'string', doc: 'the same for `https://` receivers (`https_proxy` wins)' },
  { key: 'NO_PROXY', type: 'string', doc: 'comma list of hosts reached without the proxy (`.example.com`, `host:port`, `*`; `no_proxy` wins)' },
]);

/**
 * Settings no backend is handed: the AWS and Google SDKs read them from the plugin's
 * environment themselves. By backend, for the README's table.
 */
export const SDK_SETTINGS: Readonly<Record<string, OptionSchema>> = {
  awslogs: defineOptions([
    { key: 'AWS_ACCESS_KEY_ID', type: 'string', doc: "static credentials, with AWS_SECRET_ACCESS_KEY; empty: the SDK's default chain (shared file, ECS task role, EC2 instance role)" },
    { key: 'AWS_SECRET_ACCESS_KEY', type: 'string', secret: true, doc: 'the secret of AWS_ACCESS_KEY_ID' },
    { key: 'AWS_SESSION_TOKEN', type: 'string', secret: true, doc: 'the session token of temporary credentials' },
    { key: 'AWS_SHARED_CREDENTIALS_FILE', type: 'string', doc: 'a credentials file as the plugin sees it, under the data folder (`/var/lib/logship/aws/credentials`)' },
  ]),
  gcplogs: defineOptions([
    { key: 'GOOGLE_APPLICATION_CREDENTIALS', type: 'string', defaultDoc: "the GCE metadata server's credentials", doc: 'a service-account key file, as the plugin sees it (under the data mount, e.g. `/var/lib/logship/gcp/key.json`)' },
    { key: 'GCE_METADATA_HOST', type: 'string', defaultDoc: 'the standard one', doc: '`host:port` of the GCE metadata server, for tests and emulators' },
  ]),
};

/**
 * Every setting config.json declares: the plugin's, then each backend's (its `settings`
 * schema, then what its SDK reads), the doc saying which backend.
 */
export const ALL_SETTINGS: OptionSchema = [
  ...PLUGIN_SETTINGS,
  ...BACKENDS.flatMap((factory) =>
    [...(factory.settings ?? []), ...(SDK_SETTINGS[factory.name] ?? [])].map((spec): OptionSpec => ({ ...spec, doc: `\`backend=${factory.name}\`: ${spec.doc}` })),
  ),
];

/**
 * `docker plugin set NAME=` cannot unset a variable, so an empty setting means unset: it is
 * removed before anything reads the environment (the AWS SDK would take an empty AWS_REGION
 * for a region named '', an empty AWS_SHARED_CREDENTIALS_FILE for a file).
 */
export function dropEmptySettings(env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) if (value === '') delete env[name];
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): Settings {
  const values = parseOptions(PLUGIN_SETTINGS, env);
  return {
    dataDir: values.DATA_DIR,
    // Not settings (config.json fixes both): where the plugin runs outside Docker, in tests and benchmarks.
    socketPath: env.LOGSHIP_SOCKET || '/run/docker/plugins/logship.sock',
    fifoDir: env.LOGSHIP_FIFO_DIR || '/run/docker/logging',
    logLevel: values.LOG_LEVEL,
    metricsAddress: values.METRICS_ADDRESS ?? null,
    retentionMs: values.RETENTION,
    diskQuotaBytes: values.DISK_QUOTA,
    backends: backendEnvironment(env),
  };
}

function parseLevel(value: string): Level {
  if (!isLevel(value)) throw new InvalidSettingError(`invalid LOG_LEVEL '${value}': expected debug, info, warn or error`);
  return value;
}

/**
 * The proxy (the lower-case names win, as curl reads them) and the settings each backend's
 * `settings` schema names, from the environment, read once at start.
 */
export function backendEnvironment(env: NodeJS.ProcessEnv): BackendEnvironment {
  const own: Record<string, string> = {};
  for (const factory of BACKENDS) {
    for (const name of schemaKeys(factory.settings ?? [])) {
      const value = env[name];
      if (value !== undefined && value !== '') own[name] = value;
    }
  }
  return {
    proxy: {
      httpProxy: env.http_proxy || env.HTTP_PROXY || '',
      httpsProxy: env.https_proxy || env.HTTPS_PROXY || '',
      noProxy: env.no_proxy || env.NO_PROXY || '',
    },
    env: own,
  };
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?[smhd])+$/;

/** `0`, or a duration such as `168h`, `7d`, `1d12h`, `90m`, `30s`. */
export function parseRetention(value: string): number {
  const text = value.trim();
  if (text === '0') return 0;
  if (DURATION.test(text)) {
    let ms = 0;
    for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) ms += Number(n) * DURATION_UNITS[unit!]!;
    if (Number.isSafeInteger(Math.round(ms)) && ms >= 1000) return Math.round(ms);
  }
  throw new InvalidSettingError(
    `invalid RETENTION '${value}': expected 0 (keep forever) or a duration of at least 1s such as 7d, 168h, 1d12h or 90m`,
  );
}

/** `0` (no quota), or a size in the units of max-size: `10g`, `500m`. */
export function parseQuota(value: string): number {
  if (value.trim() === '0') return 0;
  try {
    return parseSize('DISK_QUOTA', value);
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err;
    throw new InvalidSettingError(`invalid DISK_QUOTA '${value}': expected 0 (no quota) or a size such as 500m or 10g (decimal units)`);
  }
}
