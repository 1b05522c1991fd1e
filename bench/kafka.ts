// kafka throughput: a store of N short lines (`seq 1 N`, as `make bench` writes them) shipped
// by the real engine (Shipper over a store, the kafka backend as the plugin plans it) to
// librdkafka's mock cluster (kcat, 3 brokers, straight to its brokers), against the floor of
// the same store shipped to an in-process backend that acknowledges at once. Each case once,
// in one run, so the figures compare with each other (the machine is shared).
//   node bench/kafka.ts [lines] [compression,...] [--format=json|raw] [--max-lines=N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BACKENDS } from '../src/backends/index.ts';
import { CursorFile } from '../src/delivery/cursor.ts';
import { DeadLetterFile } from '../src/delivery/dead-letters.ts';
import { Shipper } from '../src/delivery/shipper.ts';
import type { BackendPlan } from '../src/delivery/backend.ts';
import { parseLogOptions } from '../src/lifecycle/options.ts';
import { ContainerStore } from '../src/store/container-store.ts';
import { KafkaMock } from '../test/integration/lib/kafka-mock.ts';
import { context } from '../test/unit/backend-context.ts';
import { type EntryFields, T0, batch } from '../test/unit/frames.ts';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const LINES = Number(positional[0] ?? 1_000_000);
const COMPRESSIONS = (positional[1] ?? 'none,lz4,zstd').split(',');
const FORMAT = flag('format') ?? 'json';
const MAX_LINES = flag('max-lines');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-kafka-'));
const mock = new KafkaMock(path.join(dir, 'mock'));

/** The store, written once; each case ships it from its start with a cursor of its own. */
function writeStore(): ContainerStore {
  const store = new ContainerStore(path.join(dir, 'store'), { maxSizeBytes: 20_000_000, maxFiles: 1000, compress: true }, 1 << 20, () => {});
  store.attachProducer();
  for (let i = 1; i <= LINES; i += 1000) {
    const entries: EntryFields[] = [];
    for (let j = i; j < Math.min(LINES + 1, i + 1000); j++) entries.push({ source: 'stdout', line: String(j), timeNano: T0 + BigInt(j) * 1000n });
    store.append(batch(entries));
  }
  return store;
}

async function ship(store: ContainerStore, name: string, plan: BackendPlan): Promise<number> {
  const cursors = path.join(store.dir, 'cursors');
  fs.mkdirSync(cursors, { recursive: true });
  fs.writeFileSync(path.join(cursors, `${name}.json`), JSON.stringify({ version: 1, index: 0, seq: 1, offset: 0 }));
  // Done when every line was acknowledged (a send that resolved without naming lines to send again).
  let acknowledged = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const counted: BackendPlan = {
    ...plan,
    create: (c) => {
      const backend = plan.create(c);
      return {
        send: async (lines, signal) => {
          const result = await backend.send(lines, signal);
          if (result.retry || result.rejected) throw new Error(`the bench expects every line taken: ${JSON.stringify(result)}`);
          if ((acknowledged += lines.length) >= LINES) done();
          return result;
        },
        close: () => backend.close(),
      };
    },
  };
  const start = process.hrtime.bigint();
  const shipper = new Shipper(store, counted, context({ id: 'b'.repeat(64) }), new CursorFile(store.dir, name), new DeadLetterFile(store.dir, name));
  await all;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await shipper.stop();
  return LINES / seconds;
}

try {
  await mock.start();
  const store = writeStore();
  await store.endPosition();
  const floor = await ship(store, 'floor', {
    name: 'floor',
    limits: { maxLines: 20_000, maxBytes: 4 << 20 },
    retry: null,
    multiline: null,
    parseJson: false,
    create: () => ({ send: () => Promise.resolve({}), close: () => Promise.resolve() }),
  });
  console.log(`kafka bench: ${LINES} lines (seq 1 ${LINES}), ${FORMAT} records, mock cluster of 3 (kcat ${mock.brokers.length} brokers)`);
  console.log(`  floor (an in-process backend that acknowledges at once): ${Math.round(floor).toLocaleString('en')} lines/s`);
  // The library is loaded once per plugin process, at the first kafka send: not what a line costs.
  await import('@platformatic/kafka');
  for (const compression of COMPRESSIONS) {
    const opts = { backend: 'kafka', 'kafka-brokers': mock.brokers.join(','), 'kafka-topic': `bench-${compression}`, 'kafka-compression': compression, 'kafka-format': FORMAT };
    const [plan] = parseLogOptions(opts, BACKENDS).backends;
    const limits = MAX_LINES ? { ...plan!.limits, maxLines: Number(MAX_LINES) } : plan!.limits;
    const rate = await ship(store, `kafka-${compression}`, { ...plan!, limits });
    console.log(`  kafka ${compression}${MAX_LINES ? ` (batches of ${MAX_LINES})` : ''}: ${Math.round(rate).toLocaleString('en')} lines/s = ${(rate / floor).toFixed(2)} of the floor`);
  }
  await store.close();
} finally {
  await mock.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
