// kafka throughput: a store of N short lines (`seq 1 N`, as `make bench` writes them) shipped
// by the real engine (Shipper over a store, the kafka backend as the plugin plans it) to
// librdkafka's mock cluster (kcat, 3 brokers, straight to its brokers), against two floors
// measured in the same run: the engine's (the same store shipped to an in-process backend
// that acknowledges at once) and the broker's (the same records as Produce requests built
// beforehand, written back to back on one connection to the partition's leader: how fast the
// mock takes them from a producer that costs nothing). Each case once, in one run, so the
// figures compare with each other (the machine is shared).
//   node bench/kafka.ts [lines] [compression,...] [--format=json|raw] [--max-lines=N] [--rounds=N] [--profile=DIR]
// --rounds: each case N times, in turns, the best of each reported (a shared machine's load comes and goes),
// and each case's least CPU time per line less the floor's: kafka's own cost of a line.
// --profile: a CPU profile of each kafka case's shipping alone, DIR/kafka-<compression>.cpuprofile.
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BACKENDS } from '../src/backends/index.ts';
import { KafkaEncoder, kafkaFactory } from '../src/backends/kafka.ts';
import { encodeProduceRequest, encodeRecordBatch } from '../src/backends/kafka-produce.ts';
import { CursorFile } from '../src/delivery/cursor.ts';
import { DeadLetterFile } from '../src/delivery/dead-letters.ts';
import { Shipper } from '../src/delivery/shipper.ts';
import type { BackendPlan } from '../src/delivery/backend.ts';
import { configureBackend, parseLogOptions } from '../src/lifecycle/options.ts';
import type { OutgoingLine } from '../src/shaping/line.ts';
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
const PROFILE = flag('profile');
const ROUNDS = Number(flag('rounds') ?? 1);
const CONTAINER = context({ id: 'b'.repeat(64) });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-bench-kafka-'));
const mock = new KafkaMock(path.join(dir, 'mock'));

/** The store, written once; each case ships it from its start with a cursor of its own. */
/** Line j of the store: `seq`'s, a microsecond after the one before. */
const timeOf = (j: number): bigint => T0 + BigInt(j) * 1000n;

function writeStore(): ContainerStore {
  const store = new ContainerStore(path.join(dir, 'store'), { maxSizeBytes: 20_000_000, maxFiles: 1000, compress: true }, 1 << 20, () => {});
  store.attachProducer();
  for (let i = 1; i <= LINES; i += 1000) {
    const entries: EntryFields[] = [];
    for (let j = i; j < Math.min(LINES + 1, i + 1000); j++) entries.push({ source: 'stdout', line: String(j), timeNano: timeOf(j) });
    store.append(batch(entries));
  }
  return store;
}

/**
 * The broker's floor for one case: the store's records, encoded as the backend does (batches of
 * the plan's maxLines, cut into requests by kafka-message-max-bytes, the same compression, Produce
 * v7, no producer id) before the clock starts, then written back to back on one connection to
 * the leader of the partition the backend sent to; the rate is the records over the time from
 * the first byte written to the last answer read (every partition's error code 0).
 */
async function brokerFloor(opts: Record<string, string>, maxLines: number): Promise<number> {
  const lib = await import('@platformatic/kafka');
  const config = configureBackend(kafkaFactory, opts);
  const encoder = new KafkaEncoder(config, CONTAINER);
  const admin = new lib.Admin({ clientId: 'bench-floor', bootstrapBrokers: mock.brokers });
  const metadata = await admin.metadata({ topics: [encoder.topic] });
  await admin.close();
  const topic = metadata.topics.get(encoder.topic)!;
  const partition = lib.compatibilityPartitioner({ topic: encoder.topic }, encoder.key!) % topic.partitionsCount;
  const leader = metadata.brokers.get(topic.partitions[partition]!.leader)!;
  const clientId = Buffer.from('bench-floor');
  const frames: Buffer[] = [];
  for (let i = 1; i <= LINES; i += maxLines) {
    const lines: OutgoingLine[] = [];
    for (let j = i; j < Math.min(LINES + 1, i + maxLines); j++) {
      lines.push({ source: 'stdout', line: Buffer.from(String(j)), timeNano: timeOf(j) });
    }
    for (const { records } of encoder.records(lines).cut(config.messageMaxBytes).requests) {
      const batch = await encodeRecordBatch(lib, records, encoder.topic, partition, { compression: config.compression });
      const body = encodeProduceRequest(lib, 7, -1, 30_000, encoder.topic, partition, batch).buffer;
      // Request header v1: api key 0 (Produce), version 7, correlation id, client id.
      const header = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
      header.writeInt32BE(header.length - 4 + body.length, 0);
      header.writeInt16BE(0, 4);
      header.writeInt16BE(7, 6);
      header.writeInt32BE(frames.length, 8);
      header.writeInt16BE(clientId.length, 12);
      clientId.copy(header, 14);
      frames.push(Buffer.concat([header, body]));
    }
  }
  const socket = net.connect(leader.port, leader.host);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const start = process.hrtime.bigint();
  const answered = new Promise<void>((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    let answers = 0;
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const size = pending.readInt32BE(0);
        try {
          // Throws for a partition's error code other than 0.
          lib.produceV7.parseResponse(pending.readInt32BE(4), 0, 7, lib.Reader.from(pending.subarray(8, 4 + size)));
        } catch (err) {
          reject(err);
        }
        pending = pending.subarray(4 + size);
        if (++answers === frames.length) resolve();
      }
    });
  });
  for (const frame of frames) if (!socket.write(frame)) await new Promise((resolve) => socket.once('drain', resolve));
  await answered;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  return LINES / seconds;
}

/** A case's rate, and the CPU time this process spent per line (less sensitive than the rate to a shared machine's load). */
interface Shipped {
  rate: number;
  cpuUsPerLine: number;
}

async function ship(store: ContainerStore, name: string, plan: BackendPlan): Promise<Shipped> {
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
  const session = PROFILE && name.startsWith('kafka') ? new Session() : null;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const shipper = new Shipper(store, counted, CONTAINER, new CursorFile(store.dir, name), new DeadLetterFile(store.dir, name));
  await all;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    fs.mkdirSync(PROFILE!, { recursive: true });
    fs.writeFileSync(path.join(PROFILE!, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  await shipper.stop();
  return { rate: LINES / seconds, cpuUsPerLine: (used.user + used.system) / LINES };
}

try {
  await mock.start();
  const store = writeStore();
  await store.endPosition();
  const floorPlan: BackendPlan = {
    name: 'floor',
    limits: { maxLines: 20_000, maxBytes: 4 << 20 },
    retry: null,
    multiline: null,
    parseJson: false,
    create: () => ({ send: () => Promise.resolve({}), close: () => Promise.resolve() }),
  };
  console.log(`kafka bench: ${LINES} lines (seq 1 ${LINES}), ${FORMAT} records, mock cluster of 3 (kcat ${mock.brokers.length} brokers), ${ROUNDS} round(s)`);
  const lps = (n: number): string => `${Math.round(n).toLocaleString('en')} lines/s`;
  const cpu = (s: Shipped): string => `${s.cpuUsPerLine.toFixed(2)} µs CPU/line`;
  const load = (): string => `load ${os.loadavg()[0]!.toFixed(1)}`;
  // The library is loaded once per plugin process, at the first kafka send: not what a line costs.
  await import('@platformatic/kafka');
  const cases = COMPRESSIONS.map((compression) => {
    const opts = { backend: 'kafka', 'kafka-brokers': mock.brokers.join(','), 'kafka-topic': `bench-${compression}`, 'kafka-compression': compression, 'kafka-format': FORMAT };
    const [plan] = parseLogOptions(opts, BACKENDS).backends;
    const limits = MAX_LINES ? { ...plan!.limits, maxLines: Number(MAX_LINES) } : plan!.limits;
    return { compression, opts, plan: { ...plan!, limits }, best: null as Shipped | null, leastCpu: Infinity, broker: 0 };
  });
  let floor: Shipped | null = null;
  let floorLeastCpu = Infinity;
  // Rounds, each the floor then every case: on a shared machine the best of each is the
  // figure least disturbed by the others' load (the CPU time per line is steadier than rates).
  for (let round = 1; round <= ROUNDS; round++) {
    const f = await ship(store, 'floor', floorPlan);
    console.log(`  round ${round} (${load()}): engine's floor (an in-process backend that acknowledges at once) ${lps(f.rate)}, ${cpu(f)}`);
    if (floor === null || f.rate > floor.rate) floor = f;
    floorLeastCpu = Math.min(floorLeastCpu, f.cpuUsPerLine);
    for (const c of cases) {
      const shipped = await ship(store, `kafka-${c.compression}`, c.plan);
      const broker = await brokerFloor(c.opts, c.plan.limits.maxLines);
      console.log(`  round ${round} (${load()}): kafka ${c.compression} ${lps(shipped.rate)}, ${cpu(shipped)}; the broker's floor ${lps(broker)}`);
      if (c.best === null || shipped.rate > c.best.rate) c.best = shipped;
      c.leastCpu = Math.min(c.leastCpu, shipped.cpuUsPerLine);
      c.broker = Math.max(c.broker, broker);
    }
  }
  console.log(`best of ${ROUNDS}: engine's floor ${lps(floor!.rate)} (${cpu(floor!)})`);
  for (const { compression, best, leastCpu, broker } of cases) {
    const { rate } = best!;
    console.log(
      `  kafka ${compression}${MAX_LINES ? ` (batches of ${MAX_LINES})` : ''}: ${lps(rate)} (${cpu(best!)}) = ${(rate / floor!.rate).toFixed(2)} of the engine's floor, ${(rate / broker).toFixed(2)} of the broker's (${lps(broker)}: the same requests prebuilt, back to back)`,
    );
  }
  // Kafka's own CPU per line: what a line costs shipped to kafka beyond what the engine costs
  // without it, the least of each over the rounds (the least disturbed by the machine's load).
  console.log(`least CPU of ${ROUNDS}: engine's floor ${floorLeastCpu.toFixed(2)} µs/line`);
  for (const { compression, leastCpu } of cases) {
    console.log(`  kafka ${compression}: ${leastCpu.toFixed(2)} µs/line, kafka's own ${(leastCpu - floorLeastCpu).toFixed(2)} µs/line (${(leastCpu / floorLeastCpu).toFixed(2)} of the floor's)`);
  }
  await store.close();
} finally {
  await mock.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
