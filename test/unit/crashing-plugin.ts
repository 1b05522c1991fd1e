// A plugin process for reattach-crash.test.ts: a registry reading one FIFO (started when
// START is set, else reattached), which SIGKILLs itself at its KILL_AT-th write to a store
// segment: BEFORE it (KILL_WHEN=before: a chunk read from the pipe and not yet stored) or
// AFTER it (stored, its journal not yet cut). fs is wrapped, not the plugin: the code under
// test is the plugin's own.
import fs from 'node:fs';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';

const { DATA_DIR, FIFO_DIR, FIFO, CONTAINER_ID, START, KILL_AT, KILL_WHEN } = process.env as Record<string, string>;
const killAt = Number(KILL_AT ?? 0);
const segments = new Set<number>();
let writes = 0;

const openSync = fs.openSync;
fs.openSync = ((...args: Parameters<typeof fs.openSync>) => {
  const fd = openSync(...args);
  if (/\/\d{8}\.log$/.test(String(args[0]))) segments.add(fd);
  return fd;
}) as typeof fs.openSync;
const writeSync = fs.writeSync;
fs.writeSync = ((fd: number, ...rest: unknown[]) => {
  const kill = segments.has(fd) && ++writes === killAt;
  if (kill && KILL_WHEN === 'before') process.kill(process.pid, 'SIGKILL');
  const n = (writeSync as (...a: unknown[]) => number)(fd, ...rest);
  if (kill) process.kill(process.pid, 'SIGKILL');
  return n;
}) as typeof fs.writeSync;

const registry = new Registry(DATA_DIR!, FIFO_DIR!, { requests: START_LOGGING });
if (START) {
  registry.start(FIFO!, {
    id: CONTAINER_ID!,
    name: '/crashing',
    config: {},
    imageId: 'sha256:' + 'a'.repeat(64),
    imageName: 'busybox',
    created: '2026-12-03T00:00:00Z',
    entrypoint: 'sh',
    args: [],
    env: [],
    labels: {},
    daemonName: 'docker',
  });
} else if (registry.reattach() !== 1) {
  throw new Error('nothing to reattach');
}
process.on('SIGTERM', () => void registry.shutdown().then(() => process.exit(0)));
process.stdout.write('ready\n');
