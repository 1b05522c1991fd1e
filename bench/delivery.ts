// Delivery engine throughput: a store of N lines (rotated, gzipped) shipped from a cursor
// at its start to an in-process backend that acknowledges at once, so the figure is the
// engine's own cost (read, decode, reassemble, batch, cursor writes). Median of RUNS (3), with
// the range of the CPU times: on a shared machine one run can take half as much again.
// The store is written and closed first (its compression done, as for a store that lags),
// then opened again to ship: compressing while shipping put the writer's gzip, fsyncs and
// plain-segment reads in the engine's figure.
// Beside it, the floor: the same store's records read (gunzip, record framing) and counted,
// nothing decoded, as `docker logs` reads them. The engine cannot cost less than that.
// With --shaping, the java multiline preset and parse-json are on and every tenth line is a
// JSON object: the cost of looking at every line for events and fields.
//   node bench/delivery.ts [lines] [--shaping]      env: RUNS (3)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CursorFile } from '../src/delivery/cursor.ts';
import { DeadLetterFile } from '../src/delivery/dead-letters.ts';
import { Shipper } from '../src/delivery/shipper.ts';
import { ContainerStore } from '../src/store/container-store.ts';
import { type EntryFields, T0, batch } from '../test/unit/frames.ts';
import type { OutgoingLine } from '../src/shaping/line.ts';

const args = process.argv.slice(2);
const SHAPING = args.includes('--shaping');
const LINES = Number(args.find((a) => !a.startsWith('--')) ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 3);
const textOf = (i: number): string =>
  SHAPING && i % 10 === 0 ? `{"n":${i},"level":"info","msg":"${'x'.repeat(40)}"}` : `line ${i} ${'x'.repeat(60)}`;
const entryOf = (i: number): EntryFields => ({ source: 'stdout', line: textOf(i), timeNano: T0 + BigInt(i) * 1000n });
const shaping = SHAPING
  ? { multiline: { matcher: { kind: 'preset', preset: 'java' }, flushTimeoutMs: 1000, maxLines: 1000, maxBytes: 128 * 1024 } as const, parseJson: true }
  : { multiline: null, parseJson: false };

interface Timed {
  wall: number;
  cpu: number;
}

/** Wall and CPU seconds of `work` (CPU time, the process's, is the steadier figure on a shared machine). */
async function timed(work: () => Promise<void>): Promise<Timed> {
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  await work();
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuUsed = process.cpuUsage(cpuStart);
  return { wall, cpu: (cpuUsed.user + cpuUsed.system) / 1e6 };
}

const STORE_OPTIONS = { maxSizeBytes: 20_000_000, maxFiles: 1000, compress: true };

async function writeStore(dir: string): Promise<void> {
  const store = new ContainerStore(dir, STORE_OPTIONS, 1 << 20, () => {});
  store.attachProducer();
  for (let i = 0; i < LINES; i += 1000) {
    const entries: EntryFields[] = [];
    for (let j = i; j < Math.min(LINES, i + 1000); j++) entries.push(entryOf(j));
    store.append(batch(entries));
  }
  store.detachProducer();
  await store.close(); // waits for the rotated segments' compression
}

/** The shipping of the whole store. */
async function ship(dir: string): Promise<Timed> {
  const store = new ContainerStore(dir, STORE_OPTIONS, 1 << 20, () => {});
  fs.mkdirSync(path.join(dir, 'cursors'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cursors', 'bench.json'), JSON.stringify({ version: 1, index: 0, seq: 1, offset: 0 }));
  let shipped = 0;
  const result = await timed(async () => {
    const shipper = new Shipper(
      store,
      {
        name: 'bench',
        limits: { maxLines: 1000, maxBytes: 1 << 20 },
        retry: null,
        ...shaping,
        create: () => ({ send: (lines: readonly OutgoingLine[]) => ((shipped += lines.length), Promise.resolve({})), close: () => Promise.resolve() }),
      },
      { id: 'b'.repeat(64), name: 'bench', imageId: '', imageName: '', created: '', command: '', daemonName: 'docker', tag: 'bench', tagSet: false, tagEmpty: false, attributes: [], hostname: 'h', info: { id: '', name: '', imageId: '', imageName: '', entrypoint: '', args: [], env: [], labels: {}, config: {}, daemonName: 'docker', hostname: 'h' } },
      new CursorFile(dir, 'bench'),
      new DeadLetterFile(dir, 'bench'),
    );
    await shipper.done;
  });
  if (shipped !== LINES) throw new Error(`shipped ${shipped} of ${LINES}`);
  await store.close();
  return result;
}

/** The floor: every record of the store read and counted, as `docker logs` reads them. */
async function readFloor(dir: string): Promise<Timed> {
  const store = new ContainerStore(dir, STORE_OPTIONS, 1 << 20, () => {});
  let records = 0;
  const result = await timed(async () => {
    for await (const entries of store.read({ sinceNano: null, untilNano: null, tail: -1, follow: false }, new AbortController().signal)) records += entries.length;
  });
  if (records !== LINES) throw new Error(`read ${records} of ${LINES}`);
  await store.close();
  return result;
}

const engine: Timed[] = [];
const floor: Timed[] = [];
for (let run = 0; run < RUNS; run++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-delivery-'));
  try {
    await writeStore(dir);
    engine.push(await ship(dir));
    floor.push(await readFloor(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const medianOf = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const wall = medianOf(engine.map((r) => r.wall));
const cpus = engine.map((r) => r.cpu);
const cpu = medianOf(cpus);
const floorCpu = medianOf(floor.map((r) => r.cpu));
const us = (seconds: number): string => ((seconds * 1e6) / LINES).toFixed(2);
console.log(
  `delivery${SHAPING ? ' (java preset, parse-json, 1 line in 10 JSON)' : ''}: ${LINES} lines (70-byte lines, 20 MB gzipped segments) shipped in ${wall.toFixed(2)} s median of ${RUNS} = ${Math.round(LINES / wall).toLocaleString('en')} lines/s; ${cpu.toFixed(2)} s CPU (${Math.min(...cpus).toFixed(2)}-${Math.max(...cpus).toFixed(2)}) = ${us(cpu)} us/line; floor (the store read, nothing decoded): ${medianOf(floor.map((r) => r.wall)).toFixed(2)} s, ${floorCpu.toFixed(2)} s CPU = ${us(floorCpu)} us/line; engine ${(cpu / floorCpu).toFixed(2)}x its floor's CPU, ${us(cpu - floorCpu)} us/line above it`,
);
