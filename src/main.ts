// logship: a Docker logging-driver plugin. Wires settings, registry and HTTP server,
// and shuts down in order on SIGTERM (the daemon allows 10 s before SIGKILL).
import { BACKENDS } from './backends/index.ts';
import { Registry } from './lifecycle/registry.ts';
import { log, setLevel } from './observability/log.ts';
import { serveMetrics } from './observability/metrics-server.ts';
import { setLiveSources } from './observability/metrics.ts';
import { createApp, listen } from './protocol/server.ts';
import { settingsFromEnv } from './settings.ts';

const settings = settingsFromEnv(process.env);
setLevel(settings.logLevel);

const registry = new Registry(settings.dataDir, settings.fifoDir);
const live = registry.liveSources();
setLiveSources(live);
registry.resumeDelivery(BACKENDS);
const server = await listen(createApp(registry), settings.socketPath);
log.info('listening', { socket: settings.socketPath, dataDir: settings.dataDir, node: process.version });
if (settings.metricsAddress) {
  const { host, port } = settings.metricsAddress;
  await serveMetrics(settings.metricsAddress, () => ({ openContainers: live.openContainers() }));
  log.info('serving metrics', { address: `${host}:${port}` });
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('shutting down', { signal });
  server.close();
  server.closeAllConnections();
  await registry.shutdown();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
