// How fast each backend turns lines into its wire format (no I/O): lines per second for
// batches of 5,000 typical 60-byte lines. For the backends on a service's client library
// (awslogs, gcplogs, elasticsearch) it is what logship does before the client serializes. Run: node bench/backend-encoders.ts
import { configureBackend, NO_ENVIRONMENT } from '../src/lifecycle/options.ts';
import type { ContainerContext } from '../src/shaping/container.ts';
import type { OutgoingLine } from '../src/shaping/line.ts';
import { Entry, protos } from '@google-cloud/logging';
import { planPuts, toEvents } from '../src/backends/awslogs.ts';
import { DocumentEncoder, parseIndexPattern } from '../src/backends/elasticsearch.ts';
import { FluentdEncoder } from '../src/backends/fluentd.ts';
import { EntryEncoder } from '../src/backends/gcplogs.ts';
import { JournalEncoder } from '../src/backends/journald.ts';
import { GelfEncoder } from '../src/backends/gelf.ts';
import { RecordEncoder } from '../src/backends/otlp.ts';
import { SyslogEncoder, syslogFactory } from '../src/backends/syslog.ts';

const container: ContainerContext = {
  id: 'f81fcd13a82e'.padEnd(64, '0'),
  name: 'bench',
  imageId: 'sha256:' + 'a'.repeat(64),
  imageName: 'bb:local',
  created: '2026-11-21T23:06:40Z',
  command: '/bin/sh -c bench',
  daemonName: 'docker',
  tag: 'f81fcd13a82e',
  tagSet: false,
  tagEmpty: false,
  attributes: [['com.example.team', 'logs'], ['ENV', 'prod']],
  hostname: 'host',
  info: { id: 'f81fcd13a82e'.padEnd(64, '0'), name: '/bench', imageId: 'sha256:' + 'a'.repeat(64), imageName: 'bb:local', entrypoint: '/bin/sh', args: ['-c', 'bench'], env: [], labels: {}, config: {}, daemonName: 'docker', hostname: 'host' },
};
const start = BigInt(Date.parse('2026-11-21T23:06:40Z')) * 1_000_000n;
const lines: OutgoingLine[] = Array.from({ length: 5000 }, (_, i) => ({
  source: i % 10 === 0 ? 'stderr' : 'stdout',
  timeNano: start + BigInt(i) * 1_234_567n,
  line: Buffer.from(`2026-11-21 info request ${i} served in 12 ms path=/api/v1/items`),
}));

function measure(name: string, encodeBatch: () => void): void {
  encodeBatch();
  const rounds = 40;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) encodeBatch();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name.padEnd(28)} ${Math.round((rounds * lines.length) / seconds).toLocaleString('en')} lines/s`);
}

for (const format of ['', 'rfc5424micro']) {
  const config = configureBackend(syslogFactory, { 'syslog-address': 'tcp://127.0.0.1', 'syslog-format': format });
  const syslog = new SyslogEncoder(config, container, process.pid);
  measure(`syslog ${format || 'default'}`, () => syslog.encode(lines));
}
const gelf = new GelfEncoder(container);
measure('gelf (TCP frames)', () => gelf.frames(lines));
const otlp = new RecordEncoder(container, []);
measure('otlp (http/protobuf)', () => otlp.encode(lines, 'http/protobuf'));
const fluentd = new FluentdEncoder(container, true);
measure('fluentd (Forward, EventTime)', () => fluentd.encode(lines, 'chunk-id'));
const journal = new JournalEncoder(container);
measure('journald (native)', () => {
  for (const line of lines) journal.encode(line);
});
measure('awslogs (events, puts)', () => planPuts(toEvents(lines, false)));
const gcplogs = new EntryEncoder(container, false, null, Entry, protos);
measure('gcplogs (entries)', () => {
  for (const line of lines) gcplogs.encode(line);
});
const elasticsearch = new DocumentEncoder(container, { kind: 'index', pattern: parseIndexPattern('logstash-YYYY.MM.DD') });
measure('elasticsearch (bulk NDJSON)', () => elasticsearch.encode(lines).map((operation) => JSON.stringify(operation)));
