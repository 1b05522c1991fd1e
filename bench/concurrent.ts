// The plugin's own cost with many containers writing at once and shipping to fluentd, without
// the engine: CONCURRENT child processes each write `seq 1 LINES` as daemon frames into a FIFO
// of their own, one blocking write per frame as the daemon does, and this process runs
// logship's registry on them (FIFO pumps -> stores -> one fluentd shipper per container) to a
// forward-protocol receiver in a child process of its own (bench/fluent-counter.ts).
// Prints the wall time until every writer was done and until the receiver had every line, and
// the CPU this process (the plugin) and the receiver used: with `make bench`'s 50 x 20,000
// lines the plugin used ~4.9 CPU s in the engine, where one container's 1,000,000 lines cost
// it ~0.46 s to store and ~1.7 s to ship, and this is where to find out why.
//
//   node --expose-gc bench/concurrent.ts        env: CONCURRENT (50), LINES (20000 each), PRIORITY (1)
//   node --cpu-prof --cpu-prof-dir=build/prof bench/concurrent.ts      for a profile
// Run it with the plugin's flags (config.json's entrypoint and GLIBC_TUNABLES) for its memory.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BACKENDS } from '../src/backends/index.ts';
import { CursorFile } from '../src/delivery/cursor.ts';
import { ReadJournal } from '../src/ingest/read-journal.ts';
import { prioritizeIngest } from '../src/lifecycle/ingest-priority.ts';
import { releaseMemoryAfterBursts } from '../src/lifecycle/memory.ts';
import { Registry } from '../src/lifecycle/registry.ts';
import { START_LOGGING } from '../src/protocol/wire.ts';
import type { ContainerInfo } from '../src/shaping/container.ts';
import { FluentCounterProcess } from './fluent-counter.ts';

const CONCURRENT = Number(process.env.CONCURRENT ?? 50);
const LINES = Number(process.env.LINES ?? 20_000);
const PORT = Number(process.env.FLUENT_PORT ?? 24226);
/** PRIORITY=0: shipping never gives way to ingest (as before lifecycle/ingest-priority.ts). */
const PRIORITY = process.env.PRIORITY !== '0';

// A writer: its frames made before 'go' (the daemon's marshal is not the plugin's cost), then
// one blocking writeSync per frame, and the FIFO closed as the daemon does when the container exits.
const WRITER = `
const fs = require('node:fs');
const lines = Number(process.argv[2]);
const fd = fs.openSync(process.argv[1], fs.constants.O_RDWR);
const varint = (n) => { const b = []; while (n >= 0x80) { b.push(Number(n % 128n) | 0x80); n /= 128n; } b.push(Number(n)); return b; };
const frames = [];
const t0 = BigInt(Date.now()) * 1000000n;
for (let i = 1; i <= lines; i++) {
  const line = Buffer.from(String(i));
  const payload = Buffer.from([0x0a, 6, ...Buffer.from('stdout'), 0x10, ...varint(t0 + BigInt(i) * 1000n), 0x1a, line.length, ...line]);
  const f = Buffer.allocUnsafe(4 + payload.length);
  f.writeUInt32BE(payload.length, 0);
  payload.copy(f, 4);
  frames.push(f);
}
process.send('ready');
process.once('message', () => {
  for (const f of frames) fs.writeSync(fd, f);
  fs.closeSync(fd);
  process.exit(0);
});
`;

// Counted, not changed: how many batches were settled (a cursor save each) and how many times
// a cursor file was written, the per-batch costs the profile showed.
let cursorSaves = 0;
let cursorWrites = 0;
const proto = CursorFile.prototype as unknown as { save(p: unknown): void; write(fsync: boolean): void };
const { save, write } = proto;
proto.save = function (this: unknown, p: unknown) {
  cursorSaves++;
  save.call(this, p);
};
proto.write = function (this: unknown, fsync: boolean) {
  cursorWrites++;
  write.call(this, fsync);
};

let fifoReads = 0;
const journal = ReadJournal.prototype as unknown as { note(chunk: Buffer): void };
const { note } = journal;
journal.note = function (this: unknown, chunk: Buffer) {
  fifoReads++;
  note.call(this, chunk);
};

const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};

function pidCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const f2 = (x: number) => x.toFixed(2);
const rssMb = () => process.memoryUsage.rss() / 2 ** 20;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-concurrent-'));
const receiver = await FluentCounterProcess.start(PORT);
try {
  const fifoDir = path.join(dir, 'fifo');
  fs.mkdirSync(fifoDir);
  const registry = new Registry(path.join(dir, 'data'), fifoDir, { requests: START_LOGGING, backends: BACKENDS });
  releaseMemoryAfterBursts();
  if (PRIORITY) prioritizeIngest();
  const writers: ChildProcess[] = [];
  for (let i = 0; i < CONCURRENT; i++) {
    const fifo = path.join(fifoDir, `f${i}`);
    execFileSync('mkfifo', [fifo]);
    const w = spawn(process.execPath, ['-e', WRITER, fifo, String(LINES)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await once(w, 'message');
    writers.push(w);
    const id = i.toString(16).padStart(64, 'c');
    const info: ContainerInfo = {
      id,
      name: `/bench-${i}`,
      config: { backend: 'fluentd', 'fluentd-address': `127.0.0.1:${PORT}` },
      imageId: '',
      imageName: '',
      created: '',
      entrypoint: '',
      args: [],
      env: [],
      labels: {},
      daemonName: 'docker',
    };
    registry.start(fifo, info);
  }
  const total = CONCURRENT * LINES;
  let peak = rssMb();
  let atPeak = process.memoryUsage();
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss / 2 ** 20 > peak) [peak, atPeak] = [m.rss / 2 ** 20, m];
  }, 100);
  console.log(`concurrent: ${CONCURRENT} x ${LINES} lines, ingest priority ${PRIORITY ? 'on' : 'off'}, load ${os.loadavg().map(f2).join(' ')}, plugin RSS ${rssMb().toFixed(0)} MB at start`);
  const cpu0 = process.cpuUsage();
  const receiverCpu0 = pidCpuSeconds(receiver.pid);
  const t0 = performance.now();
  const exited = writers.map((w) => once(w, 'exit'));
  for (const w of writers) w.send('go');
  await Promise.all(exited);
  const written = (performance.now() - t0) / 1000;
  const cpuWritten = cpuSeconds(cpu0);
  const shipped = await receiver.waitFor(total, 120_000);
  const all = (performance.now() - t0) / 1000;
  const cpuAll = cpuSeconds(cpu0);
  clearInterval(sampler);
  const receiverCpu = pidCpuSeconds(receiver.pid) - receiverCpu0;
  console.log(
    `written in ${f2(written)} s (plugin CPU ${f2(cpuWritten)} s meanwhile), shipped ${receiver.total} of ${total} in ${f2(all)} s ` +
      `(plugin CPU ${f2(cpuAll)} s, ${f2((cpuAll / total) * 1e6)} µs a line, of it system ${f2(process.cpuUsage(cpu0).system / 1e6)} s; receiver CPU ${f2(receiverCpu)} s); plugin RSS peak ${peak.toFixed(0)} MB ` +
      `(then heap ${(atPeak.heapUsed / 2 ** 20).toFixed(0)} of ${(atPeak.heapTotal / 2 ** 20).toFixed(0)} MB, ` +
      `external ${(atPeak.external / 2 ** 20).toFixed(0)} MB of which array buffers ${(atPeak.arrayBuffers / 2 ** 20).toFixed(0)} MB); ` +
      `${cursorSaves} cursor saves (${f2(total / cursorSaves)} lines each), ${cursorWrites} cursor files written; ${fifoReads} FIFO reads (${f2(total / fifoReads)} lines each)`,
  );
  await registry.shutdown();
  if (!shipped) process.exitCode = 1;
} finally {
  await receiver.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
