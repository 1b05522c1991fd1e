// kafka's own encoding alone, no engine and no broker: a send's records (KafkaRecords) cut into
// requests (cut) and written as record batches (encodeRecordBatch), for N short lines (`seq`'s) in
// sends of 20,000 (the plan's maxLines), json records, the bench's container; CPU time per line,
// best of the rounds, beside the floor of copying each line's bytes once into a buffer.
//   node bench/kafka-encode.ts [lines] [compression,...] [--rounds=N]
import * as lib from '@platformatic/kafka';
import { KafkaEncoder, kafkaFactory } from '../src/backends/kafka.ts';
import { encodeRecordBatch } from '../src/backends/kafka-produce.ts';
import { configureBackend } from '../src/lifecycle/options.ts';
import type { OutgoingLine } from '../src/shaping/line.ts';
import { context } from '../test/unit/backend-context.ts';
import { T0 } from '../test/unit/frames.ts';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const LINES = Number(positional[0] ?? 1_000_000);
const COMPRESSIONS = (positional[1] ?? 'none,lz4').split(',');
const ROUNDS = Number(args.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 3);
const SEND = 20_000;

const sends: OutgoingLine[][] = [];
for (let i = 1; i <= LINES; i += SEND) {
  const lines: OutgoingLine[] = [];
  for (let j = i; j < Math.min(LINES + 1, i + SEND); j++) lines.push({ source: 'stdout', line: Buffer.from(String(j)), timeNano: T0 + BigInt(j) * 1000n });
  sends.push(lines);
}

function cpuNsPerLine(run: () => void): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / LINES;
}

const floor = Buffer.allocUnsafe(1 << 20);
for (let round = 1; round <= ROUNDS; round++) {
  const copy = cpuNsPerLine(() => {
    for (const lines of sends) {
      let pos = 0;
      for (const l of lines) pos += l.line.copy(floor, pos);
    }
  });
  const out = [`round ${round}: copy floor ${copy.toFixed(0)} ns/line`];
  for (const compression of COMPRESSIONS) {
    const config = configureBackend(kafkaFactory, { 'kafka-brokers': 'localhost:9092', 'kafka-topic': 'bench', 'kafka-compression': compression });
    const encoder = new KafkaEncoder(config, context({ id: 'b'.repeat(64) }));
    let bytes = 0;
    const ns = cpuNsPerLine(() => {
      for (const lines of sends) {
        for (const { records } of encoder.records(lines).cut(config.messageMaxBytes).requests) {
          bytes += (encodeRecordBatch(lib, records, encoder.topic, 0, { compression: config.compression }) as Buffer).length;
        }
      }
    });
    out.push(`${compression} ${ns.toFixed(0)} ns/line (${(bytes / LINES).toFixed(1)} bytes/record)`);
  }
  console.log(out.join(', '));
}
