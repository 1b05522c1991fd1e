// Plugin-wide settings, from the environment that `docker plugin set` controls.
import { isLevel, type Level } from './observability/log.ts';
import { type ListenAddress, parseListenAddress } from './observability/metrics-server.ts';

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
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): Settings {
  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!isLevel(logLevel)) {
    throw new Error(`invalid LOG_LEVEL '${logLevel}': expected debug, info, warn or error`);
  }
  return {
    dataDir: env.DATA_DIR || '/var/lib/logship',
    socketPath: env.LOGSHIP_SOCKET || '/run/docker/plugins/logship.sock',
    fifoDir: env.LOGSHIP_FIFO_DIR || '/run/docker/logging',
    logLevel,
    metricsAddress: env.METRICS_ADDRESS ? parseListenAddress(env.METRICS_ADDRESS) : null,
  };
}
