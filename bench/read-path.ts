// The plugin's side of `docker logs`, without the engine: dist/main.js (config.json's Node flags
// and environment) on a data folder holding one stopped container's store of LINES short lines
// (`seq`-like, as bench/drivers.ts writes them), and ReadLogs asked ROUNDS times over its socket
// by a client that counts the reply's frames and drops them. Prints the wall time of each read
// and the CPU the plugin's process spent on it; with PROFILE=1 the plugin writes a V8 CPU
// profile into PROFILE_DIR (default: the data folder, kept) when it exits.
//
//   node bench/read-path.ts   (after make build)   env: LINES (1000000), ROUNDS (5), PROFILE, PROFILE_DIR
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ContainerStore } from '../src/store/container-store.ts';
import { DEFAULT_STORE_OPTIONS } from '../src/store/options.ts';
import { batch, T0 } from '../test/unit/frames.ts';

const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PROFILE = process.env.PROFILE === '1';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-read-'));
const dataDir = path.join(root, 'data');
const socket = path.join(root, 'logship.sock');
const id = 'b'.repeat(64);

async function populate(): Promise<void> {
  const store = new ContainerStore(path.join(dataDir, 'containers', id), DEFAULT_STORE_OPTIONS, 1 << 20, () => {});
  store.attachProducer();
  const PER_BATCH = 10_000;
  for (let from = 1; from <= LINES; from += PER_BATCH) {
    const n = Math.min(PER_BATCH, LINES - from + 1);
    store.append(batch(Array.from({ length: n }, (_, i) => ({ line: String(from + i), timeNano: T0 + BigInt(from + i) * 1000n }))));
  }
  store.detachProducer();
  await store.close();
}

function startPlugin(): ChildProcess {
  const manifest = JSON.parse(fs.readFileSync('config.json', 'utf8')) as { entrypoint: string[]; env: { name: string; value: string }[] };
  const nodeFlags = manifest.entrypoint.slice(1, -1);
  if (PROFILE) nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE_DIR ?? root}`);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const { name, value } of manifest.env) env[name] = value;
  Object.assign(env, { DATA_DIR: dataDir, LOGSHIP_SOCKET: socket, LOGSHIP_FIFO_DIR: root, LOG_LEVEL: 'warn' });
  const out = fs.openSync(path.join(root, 'plugin.log'), 'a');
  return spawn(process.execPath, [...nodeFlags, process.env.MAIN ?? 'dist/main.js'], { env, stdio: ['ignore', out, out] });
}

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function call(url: string, body: unknown, onData?: (chunk: Buffer) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: url, method: 'POST' }, (res) => {
      res.on('data', onData ?? (() => {}));
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Counts [uint32 BE n][n bytes] frames across chunks cut anywhere. */
class FrameCounter {
  frames = 0;
  private need = 0; // bytes left of the current frame's payload
  private header = Buffer.alloc(4);
  private have = 0; // header bytes held
  feed(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.need > 0) {
        const take = Math.min(this.need, chunk.length - pos);
        this.need -= take;
        pos += take;
        continue;
      }
      this.header[this.have++] = chunk[pos++]!;
      if (this.have === 4) {
        this.need = this.header.readUInt32BE(0);
        this.have = 0;
        this.frames++;
      }
    }
  }
}

let plugin: ChildProcess | undefined;
try {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run make build');
  await populate();
  plugin = startPlugin();
  for (;;) {
    if (plugin.exitCode !== null) throw new Error(`the plugin exited; see ${root}/plugin.log`);
    try {
      if ((await call('/Plugin.Activate', {})) === 200) break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  console.log(`read-path: ReadLogs of a store of ${LINES} lines, ${ROUNDS} rounds`);
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const counter = new FrameCounter();
    const cpu0 = cpuSeconds(plugin.pid!);
    const t0 = process.hrtime.bigint();
    const status = await call('/LogDriver.ReadLogs', { Info: { ContainerID: id }, Config: { Tail: -1 } }, (c) => counter.feed(c));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSeconds(plugin.pid!) - cpu0;
    if (status !== 200 || counter.frames !== LINES) throw new Error(`round ${round}: status ${status}, ${counter.frames} frames of ${LINES}`);
    walls.push(wall);
    cpus.push(cpu);
    console.log(`  round ${round}: ${wall.toFixed(2)} s, plugin CPU ${cpu.toFixed(2)} s`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`median: ${median(walls).toFixed(2)} s wall, ${median(cpus).toFixed(2)} s plugin CPU per ${LINES} lines`);
} finally {
  if (plugin && plugin.exitCode === null) {
    plugin.kill('SIGTERM');
    await once(plugin, 'exit');
  }
  if (PROFILE) console.log(`profile in ${process.env.PROFILE_DIR ?? root}`);
  else fs.rmSync(root, { recursive: true, force: true });
}
