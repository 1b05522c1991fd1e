// logship: a Docker logging-driver plugin. Wires settings, registry and HTTP server,
// and shuts down in order on SIGTERM (the daemon allows 10 s before SIGKILL).
import { BACKENDS } from './backends/index.ts';
import { prioritizeIngest } from './lifecycle/ingest-priority.ts';
import { releaseMemoryAfterBursts } from './lifecycle/memory.ts';
import { Registry } from './lifecycle/registry.ts';
import { watchFileLimit } from './observability/file-limit.ts';
import { log, setLevel } from './observability/log.ts';
import { serveMetrics } from './observability/metrics-server.ts';
import { setLiveSources } from './observability/metrics.ts';
import { createApp, listen } from './protocol/server.ts';
import { START_LOGGING } from './protocol/wire.ts';
import { type Settings, dropEmptySettings, settingsFromEnv } from './settings.ts';

dropEmptySettings(process.env);
let settings: Settings;
try {
  settings = settingsFromEnv(process.env);
} catch (err) {
  // The daemon's log shows it, tagged with the plugin id; `docker plugin enable` fails.
  log.error('invalid plugin settings (docker plugin set)', { error: (err as Error).message });
  process.exit(1);
}
setLevel(settings.logLevel);

const registry = new Registry(settings.dataDir, settings.fifoDir, { requests: START_LOGGING, backends: BACKENDS, environment: settings.backends, limits: settings });
// Before anything else: containers writing into FIFOs a previous process read are blocked.
const resumed = registry.reattach();
// Before the janitor's first sweep: a store with lines left to ship is held, not removed.
registry.resumeDelivery();
registry.tightenStoreModes();
const live = registry.liveSources();
setLiveSources(live);
const server = await listen(createApp(registry), settings.socketPath);
const fileLimit = watchFileLimit(() => live.openContainers());
releaseMemoryAfterBursts();
prioritizeIngest();
log.info('listening', {
  socket: settings.socketPath,
  dataDir: settings.dataDir,
  retentionMs: settings.retentionMs,
  diskQuotaBytes: settings.diskQuotaBytes,
  resumed,
  openFilesLimit: fileLimit?.soft,
  openFilesHardLimit: fileLimit?.hard,
  node: process.version,
});
if (settings.metricsAddress) {
  const { host, port } = settings.metricsAddress;
  await serveMetrics(settings.metricsAddress, () => ({ openContainers: live.openContainers() }), registry.statusSource());
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
