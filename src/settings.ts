// Plugin-wide settings, from the environment that `docker plugin set` controls.
import { BACKENDS } from './backends/index.ts';
import type { BackendEnvironment } from './lifecycle/options.ts';
import { schemaKeys } from './options/schema.ts';
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

/**
 * `docker plugin set NAME=` cannot unset a variable, so an empty setting means unset: it is
 * removed before anything reads the environment (the AWS SDK would take an empty AWS_REGION
 * for a region named '', an empty AWS_SHARED_CREDENTIALS_FILE for a file).
 */
export function dropEmptySettings(env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) if (value === '') delete env[name];
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): Settings {
  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!isLevel(logLevel)) {
    throw new InvalidSettingError(`invalid LOG_LEVEL '${logLevel}': expected debug, info, warn or error`);
  }
  return {
    dataDir: env.DATA_DIR || '/var/lib/logship',
    socketPath: env.LOGSHIP_SOCKET || '/run/docker/plugins/logship.sock',
    fifoDir: env.LOGSHIP_FIFO_DIR || '/run/docker/logging',
    logLevel,
    metricsAddress: env.METRICS_ADDRESS ? parseListenAddress(env.METRICS_ADDRESS) : null,
    retentionMs: parseRetention(env.RETENTION || DEFAULT_RETENTION),
    diskQuotaBytes: parseQuota(env.DISK_QUOTA || '0'),
    backends: backendEnvironment(env),
  };
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
