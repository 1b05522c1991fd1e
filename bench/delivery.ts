// Delivery engine throughput: a store of N lines (rotated, gzipped) shipped from a cursor
// at its start to an in-process backend that acknowledges at once, so the figure is the
// engine's own cost (read, decode, reassemble, batch, cursor writes). Median of 3.
// With --shaping, the java multiline preset and parse-json are on and every tenth line is a
// JSON object: the cost of looking at every line for events and fields.
//   node bench/delivery.ts [lines] [--shaping]
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
const textOf = (i: number): string =>
  SHAPING && i % 10 === 0 ? `{"n":${i},"level":"info","msg":"${'x'.repeat(40)}"}` : `line ${i} ${'x'.repeat(60)}`;
const entryOf = (i: number): EntryFields => ({ source: 'stdout', line: textOf(i), timeNano: T0 + BigInt(i) * 1000n });
const shaping = SHAPING
  ? { multiline: { matcher: { kind: 'preset', preset: 'java' }, flushTimeoutMs: 1000, maxLines: 1000, maxBytes: 128 * 1024 } as const, parseJson: true }
  : { multiline: null, parseJson: false };

/** Wall and CPU seconds of the shipping alone (CPU time is the steadier figure on a shared machine). */
async function once(dir: string): Promise<{ wall: number; cpu: number }> {
  const store = new ContainerStore(dir, { maxSizeBytes: 20_000_000, maxFiles: 1000, compress: true }, 1 << 20, () => {});
  store.attachProducer();
  for (let i = 0; i < LINES; i += 1000) {
    const entries: EntryFields[] = [];
    for (let j = i; j < Math.min(LINES, i + 1000); j++) entries.push(entryOf(j));
    store.append(batch(entries));
  }
  await store.endPosition();
  fs.mkdirSync(path.join(dir, 'cursors'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cursors', 'bench.json'), JSON.stringify({ version: 1, index: 0, seq: 1, offset: 0 }));
  let shipped = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const shipper = new Shipper(
    store,
    {
      name: 'bench',
      limits: { maxLines: 1000, maxBytes: 1 << 20 },
      retry: null,
      ...shaping,
      create: () => ({ send: (lines: readonly OutgoingLine[]) => ((shipped += lines.length), Promise.resolve({})), close: () => Promise.resolve() }),
    },
    { id: 'b'.repeat(64), name: 'bench', imageId: '', imageName: '', created: '', command: '', daemonName: 'docker', tag: 'bench', tagSet: false, attributes: [], hostname: 'h' },
    new CursorFile(dir, 'bench'),
    new DeadLetterFile(dir, 'bench'),
  );
  store.detachProducer();
  await shipper.done;
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuUsed = process.cpuUsage(cpuStart);
  if (shipped !== LINES) throw new Error(`shipped ${shipped} of ${LINES}`);
  await store.close();
  return { wall, cpu: (cpuUsed.user + cpuUsed.system) / 1e6 };
}

const runs: { wall: number; cpu: number }[] = [];
for (let run = 0; run < 3; run++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-delivery-'));
  try {
    runs.push(await once(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const medianOf = (values: number[]): number => values.sort((a, b) => a - b)[1]!;
const median = medianOf(runs.map((r) => r.wall));
const cpu = medianOf(runs.map((r) => r.cpu));
console.log(`delivery${SHAPING ? ' (java preset, parse-json, 1 line in 10 JSON)' : ''}: ${LINES} lines (70-byte lines, 20 MB gzipped segments) shipped in ${median.toFixed(2)} s median of 3 = ${Math.round(LINES / median).toLocaleString("en")} lines/s; ${cpu.toFixed(2)} s CPU`);
