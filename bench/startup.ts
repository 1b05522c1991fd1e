// Start-up at scale: the plugin (dist/main.js, with the Node flags and environment of
// config.json's entrypoint) started on a data folder holding STORES container stores, most of
// them of stopped containers whose every line was shipped, PENDING of them with all their lines
// still to ship, and FIFOS of them attached to a FIFO a running container (this process) holds
// open, to reattach. Measures the time from spawning the process to its socket answering
// Plugin.Activate (what the daemon waits for), ROUNDS times (median), and counts the
// connections the fluentd receiver (a TCP listener on FLUENT_PORT) got: one per store with
// lines to ship, none for the others. After each round the pending stores' cursors must have
// reached their end (everything shipped), and the rest must not have moved.
//
//   scripts/isolate.sh STATE_DIR node_modules/.bin/node bench/startup.ts   (after make build)
//   env: STORES (2000), PENDING (100), FIFOS (200), LINES_PER_STORE (100), ROUNDS (3), FLUENT_PORT (24224)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CursorFile } from '../src/delivery/cursor.ts';
import { saveDeliveryState } from '../src/delivery/delivery.ts';
import { ContainerStore, type StorePosition } from '../src/store/container-store.ts';
import { batch, lines } from '../test/unit/frames.ts';

const STORES = Number(process.env.STORES ?? 2000);
const PENDING = Number(process.env.PENDING ?? 100);
const FIFOS = Number(process.env.FIFOS ?? 200);
const LINES_PER_STORE = Number(process.env.LINES_PER_STORE ?? 100);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const FLUENT_PORT = Number(process.env.FLUENT_PORT ?? 24224);
const TARGET_S = 2;
const BACKEND = 'fluentd';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-startup-'));
const dataDir = path.join(root, 'data');
const fifoDir = path.join(root, 'fifos');
const socket = path.join(root, 'logship.sock');
fs.mkdirSync(fifoDir);

const config = { backend: BACKEND, 'fluentd-address': `127.0.0.1:${FLUENT_PORT}` };
const idOf = (i: number) => `a${i.toString(16).padStart(63, '0')}`;
const storeDir = (i: number) => path.join(dataDir, 'containers', idOf(i));
// Pending stores first, then the attached ones, then the rest: spread would not change the work.
const isPending = (i: number) => i < PENDING;
const fifoOf = (i: number) => (i >= PENDING && i < PENDING + FIFOS ? path.join(fifoDir, `fifo-${i}`) : null);

/** Builds the data folder; returns each store's end (where a cursor that shipped everything is). */
async function populate(): Promise<StorePosition[]> {
  const ends: StorePosition[] = [];
  for (let i = 0; i < STORES; i++) {
    const dir = storeDir(i);
    const store = new ContainerStore(dir, { maxSizeBytes: 20_000_000, maxFiles: 5, compress: true }, 1 << 20, () => {});
    store.attachProducer();
    store.append(batch(lines(LINES_PER_STORE)));
    store.detachProducer();
    ends.push(await store.endPosition());
    await store.close();
    const id = idOf(i);
    const container = {
      id, name: `bench-${i}`, imageId: '', imageName: 'busybox', created: '', command: 'seq', daemonName: 'docker',
      tag: id.slice(0, 12), tagSet: false, tagEmpty: false, attributes: [], hostname: 'bench',
      info: { id, name: `/bench-${i}`, imageId: '', imageName: 'busybox', entrypoint: 'seq', args: [], env: [], labels: {}, config, daemonName: 'docker', hostname: 'bench' },
    };
    saveDeliveryState(dir, { config, container });
    const fifo = fifoOf(i);
    if (fifo) {
      const body = { File: fifo, Info: { ContainerID: id, ContainerName: `/bench-${i}`, Config: config, DaemonName: 'docker' } };
      fs.mkdirSync(path.join(dataDir, 'attachments'), { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(dataDir, 'attachments', `${path.basename(fifo)}.json`), JSON.stringify(body), { mode: 0o600 });
    }
  }
  return ends;
}

/** Puts every cursor back: pending stores at their start, the others at their end. */
function resetCursors(ends: StorePosition[]): void {
  for (let i = 0; i < STORES; i++) {
    const file = new CursorFile(storeDir(i), BACKEND);
    fs.rmSync(file.path, { force: true });
    file.save(isPending(i) ? { index: 0, seq: ends[i]!.seq, offset: 0 } : ends[i]!);
  }
}

function cursorIndex(i: number): number {
  return (JSON.parse(fs.readFileSync(new CursorFile(storeDir(i), BACKEND).path, 'utf8')) as StorePosition).index;
}

function activates(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/Plugin.Activate', method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

function startPlugin(): ChildProcess {
  const manifest = JSON.parse(fs.readFileSync('config.json', 'utf8')) as { entrypoint: string[]; env: { name: string; value: string }[] };
  const nodeFlags = manifest.entrypoint.slice(1, -1);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const { name, value } of manifest.env) env[name] = value;
  Object.assign(env, { DATA_DIR: dataDir, LOGSHIP_SOCKET: socket, LOGSHIP_FIFO_DIR: fifoDir, LOG_LEVEL: 'warn' });
  const out = fs.openSync(path.join(root, 'plugin.log'), 'a');
  return spawn(process.execPath, [...nodeFlags, 'dist/main.js'], { env, stdio: ['ignore', out, out] });
}

let connections = 0;
let received = 0;
const receiver = net.createServer((s) => {
  connections++;
  s.on('data', (d: Buffer) => (received += d.length));
  s.on('error', () => {});
});
receiver.listen(FLUENT_PORT, '127.0.0.1');
await once(receiver, 'listening');

const heldOpen: number[] = [];
let code = 1;
try {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run make build');
  const t = process.hrtime.bigint();
  const ends = await populate();
  const fifos = Array.from({ length: STORES }, (_, i) => fifoOf(i)).filter((f) => f !== null);
  if (fifos.length > 0) execFileSync('mkfifo', fifos);
  // A running container's end of its FIFO; read-write, so opening it does not wait for a reader.
  for (const fifo of fifos) heldOpen.push(fs.openSync(fifo, fs.constants.O_RDWR));
  console.log(
    `startup: ${STORES} stores of ${LINES_PER_STORE} lines (${PENDING} with every line left to ship to ${BACKEND}, the rest shipped), ` +
      `${fifos.length} FIFOs to reattach; built in ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(1)} s`,
  );
  const times: number[] = [];
  const problems: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    resetCursors(ends);
    connections = 0;
    received = 0;
    const t0 = process.hrtime.bigint();
    const plugin = startPlugin();
    while (!(await activates())) {
      if (plugin.exitCode !== null) throw new Error(`the plugin exited with ${plugin.exitCode}; see ${root}/plugin.log`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    times.push(seconds);
    // Shipping the pending stores: until their cursors reach the end (or 60 s).
    const deadline = Date.now() + 60_000;
    const shipped = () => Array.from({ length: PENDING }, (_, i) => i).filter((i) => cursorIndex(i) === ends[i]!.index).length;
    while (shipped() < PENDING && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const pendingShipped = shipped();
    const pendingSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await new Promise((r) => setTimeout(r, 1000)); // a late connection would show now
    plugin.kill('SIGTERM');
    await once(plugin, 'exit');
    let moved = 0;
    for (let i = PENDING; i < STORES; i++) if (cursorIndex(i) !== ends[i]!.index) moved++;
    console.log(
      `  round ${round}: listening after ${seconds.toFixed(2)} s; ${pendingShipped} of ${PENDING} pending stores shipped after ` +
        `${pendingSeconds.toFixed(2)} s (${received} bytes); ${connections} connections to ${BACKEND}`,
    );
    if (pendingShipped !== PENDING) problems.push(`round ${round}: ${PENDING - pendingShipped} pending stores not shipped`);
    if (connections > PENDING) problems.push(`round ${round}: ${connections} connections for ${PENDING} stores with lines to ship`);
    if (moved > 0) problems.push(`round ${round}: ${moved} cursors of shipped stores moved`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  console.log(
    `startup with ${STORES} stores and ${fifos.length} FIFOs: ${times.map((s) => s.toFixed(2)).join(' / ')} s (median ` +
      `${median.toFixed(2)} s): under ${TARGET_S} s ${median < TARGET_S ? 'met' : 'NOT met'}; no connection for a store with nothing ` +
      `to ship ${problems.some((p) => p.includes('connections')) ? 'NOT met' : 'met'}`,
  );
  if (problems.length > 0) console.log(`check FAILED:\n  ${problems.join('\n  ')}`);
  else console.log('check: every pending store shipped to its end, no other cursor moved');
  code = problems.length > 0 ? 1 : 0;
} finally {
  for (const fd of heldOpen) fs.closeSync(fd);
  receiver.close();
  if (code === 0) fs.rmSync(root, { recursive: true, force: true });
  else console.log(`kept ${root} (the plugin's log: plugin.log)`);
}
process.exitCode = code;
