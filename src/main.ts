// logship: a Docker logging-driver plugin. Wires settings, registry and HTTP server,
// and shuts down in order on SIGTERM (the daemon allows 10 s before SIGKILL).
import { Registry } from './lifecycle/registry.ts';
import { log, setLevel } from './observability/log.ts';
import { createApp, listen } from './protocol/server.ts';
import { type Settings, settingsFromEnv } from './settings.ts';

let settings: Settings;
try {
  settings = settingsFromEnv(process.env);
} catch (err) {
  // The daemon's log shows it, tagged with the plugin id; `docker plugin enable` fails.
  log.error('invalid plugin settings (docker plugin set)', { error: (err as Error).message });
  process.exit(1);
}
setLevel(settings.logLevel);

const registry = new Registry(settings.dataDir, settings.fifoDir, settings);
// Before anything else: containers writing into FIFOs a previous process read are blocked.
const resumed = registry.reattach();
const server = await listen(createApp(registry), settings.socketPath);
log.info('listening', {
  socket: settings.socketPath,
  dataDir: settings.dataDir,
  retentionMs: settings.retentionMs,
  diskQuotaBytes: settings.diskQuotaBytes,
  resumed,
  node: process.version,
});

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
