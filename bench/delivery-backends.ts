// Shipping keeps up (issue 18, item 3): for each backend with a local receiver (the integration
// tests' own: rsyslog, systemd-journald, and the protocol endpoints of test/integration/lib), a
// store of LINES short lines (`seq`-like, 1 µs apart) shipped from its start by the delivery
// engine (Shipper with the backend's own batch limits, as the plugin plans them), beside the
// rate at which the same lines were written into the store in this run (ContainerStore.append of
// daemon frames, what the plugin does after its FIFO read). The receivers run in this process
// (rsyslog and journald in their own): their CPU is counted against the shipping, so the figures
// are lower bounds on a machine where the receiver is elsewhere.
//
// Where the receiver is what limits the figure (rsyslog and journald: this process waits on
// them; the Elasticsearch endpoint: a third of this process's CPU parsing the bulk bodies), its floor is measured too: the same lines' wire bytes, encoded beforehand, sent back
// to back to a fresh receiver with nothing else running (FLOOR_LINES of them), and the
// shipping rate is shown as a ratio to it as well as to the write rate.
//
//   node bench/delivery-backends.ts [backend,...]   env: LINES (1000000)
//   (rsyslog and systemd-journald are started here: run it under scripts/isolate.sh, as the
//   integration suite does; `make bench-delivery` runs it with bench/delivery.ts)
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BACKENDS } from '../src/backends/index.ts';
import { DocumentEncoder, type ElasticsearchConfig } from '../src/backends/elasticsearch.ts';
import { JournalEncoder } from '../src/backends/journald.ts';
import { encodeSyslogMessage, type SyslogConfig } from '../src/backends/syslog.ts';
import type { ContainerContext } from '../src/shaping/container.ts';
import type { OutgoingLine } from '../src/shaping/line.ts';
import { UnixDatagramConnection } from '../src/transport/datagram.ts';
import { HttpClient } from '../src/transport/http.ts';
import type { AnyBackendFactory, BackendPlan } from '../src/delivery/backend.ts';
import { CursorFile } from '../src/delivery/cursor.ts';
import { DeadLetterFile } from '../src/delivery/dead-letters.ts';
import { Shipper } from '../src/delivery/shipper.ts';
import { configureBackend } from '../src/lifecycle/options.ts';
import { ContainerStore } from '../src/store/container-store.ts';
import { DEFAULT_STORE_OPTIONS } from '../src/store/options.ts';
import { context } from '../test/unit/backend-context.ts';
import { batch } from '../test/unit/frames.ts';
import { setLevel } from '../src/observability/log.ts';
import { CloudLoggingEndpoint } from '../test/integration/lib/cloud-logging-endpoint.ts';
import { CloudWatchEndpoint } from '../test/integration/lib/cloudwatch-endpoint.ts';
import { ElasticsearchEndpoint } from '../test/integration/lib/elasticsearch-endpoint.ts';
import { GelfServer } from '../test/integration/lib/gelf-server.ts';
import { HecServer } from '../test/integration/lib/hec-server.ts';
import { LokiEndpoint } from '../test/integration/lib/loki-endpoint.ts';
import { OtlpReceiver } from '../test/integration/lib/otlp-receiver.ts';
import { FluentReceiver, Journald, Rsyslog, SYSLOG_PORT, makeTlsMaterial, scratchDir } from '../test/integration/lib/servers.ts';

const LINES = Number(process.env.LINES ?? 1_000_000);
/** Lines of a receiver-floor run: its wire bytes are built in memory beforehand. */
const FLOOR_LINES = Math.min(LINES, 200_000);
const only = process.argv[2]?.split(',') ?? null;

/** A receiver running, the backend's config against it, and how to stop it. */
interface Target {
  config: unknown;
  stop(): Promise<void>;
  /** The receiver's floor: prepares these lines' wire bytes (untimed) and returns the run that sends them all. */
  floor?(lines: readonly OutgoingLine[], container: ContainerContext): () => Promise<void>;
}

const dir = scratchDir('bench-delivery');
const factory = (name: string): AnyBackendFactory => BACKENDS.find((f) => f.name === name)!;
const options = (name: string, opts: Record<string, string>) => configureBackend(factory(name), opts);

const TARGETS: Record<string, () => Promise<Target>> = {
  fluentd: async () => {
    const r = new FluentReceiver({ listenOptions: { port: 24334, host: '127.0.0.1' } });
    await r.listen();
    return { config: options('fluentd', { 'fluentd-address': '127.0.0.1:24334' }), stop: () => r.close() };
  },
  syslog: async () => {
    const r = new Rsyslog(path.join(dir, 'rsyslog'), makeTlsMaterial(path.join(dir, 'tls')));
    await r.start();
    const config = options('syslog', { 'syslog-address': `tcp://127.0.0.1:${SYSLOG_PORT}` }) as SyslogConfig;
    return {
      config,
      stop: () => r.stop(),
      floor(lines, container) {
        const bytes = Buffer.concat(lines.map((line) => encodeSyslogMessage(config, container, process.pid, line)));
        // One connection, one write: the kernel and rsyslog take it as fast as they can.
        return () =>
          new Promise<void>((resolve, reject) => {
            const socket = net.connect(SYSLOG_PORT, '127.0.0.1', () => socket.end(bytes, () => resolve()));
            socket.on('error', reject);
          });
      },
    };
  },
  journald: async () => {
    const r = new Journald('logship-bench', path.join(dir, 'journald.out'));
    r.removeState();
    await r.start();
    return {
      config: { socketPath: r.socket },
      stop: () => r.stop(),
      floor(lines, container) {
        const encoder = new JournalEncoder(container);
        const datagrams = lines.flatMap((line) => encoder.encode(line));
        return async () => {
          // The backend's own transport (it waits for the socket to take more), without the engine or encoding.
          const connection = new UnixDatagramConnection(r.socket);
          for (let i = 0; i < datagrams.length; i += 1000) await connection.send(datagrams.slice(i, i + 1000), new AbortController().signal);
          connection.close();
        };
      },
    };
  },
  elasticsearch: async () => {
    const r = new ElasticsearchEndpoint({ mode: 'elasticsearch' });
    await r.listen();
    const config = options('elasticsearch', { 'elasticsearch-url': r.url }) as ElasticsearchConfig;
    return {
      config,
      stop: () => r.close(),
      floor(lines, container) {
        const encoder = new DocumentEncoder(container, config.destination);
        const limit = factory('elasticsearch').batchLimits(config).maxLines;
        const bodies: string[] = [];
        for (let i = 0; i < lines.length; i += limit) bodies.push(encoder.encode(lines.slice(i, i + limit)).join('\n') + '\n');
        return async () => {
          // The backend's own HTTP client, one bulk request after another, as the engine sends.
          const http = new HttpClient({ name: 'elasticsearch' });
          for (const body of bodies) {
            const response = await http.request({ url: `${r.url}/_bulk`, method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body }, new AbortController().signal);
            if (response.status !== 200) throw new Error(`the floor's bulk request answered ${response.status}`);
          }
          await http.close();
        };
      },
    };
  },
  awslogs: async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDLOGSHIPBENCH', AWS_SECRET_ACCESS_KEY: 'logship-bench-secret' });
    const r = new CloudWatchEndpoint();
    await r.start();
    const opts = { 'awslogs-region': 'us-east-1', 'awslogs-endpoint': r.url, 'awslogs-group': 'g', 'awslogs-stream': 's', 'awslogs-create-group': 'true' };
    return { config: options('awslogs', opts), stop: () => r.stop() };
  },
  gcplogs: async () => {
    const r = new CloudLoggingEndpoint(18095);
    await r.start();
    return { config: options('gcplogs', { 'gcp-project': 'bench-project', 'gcp-endpoint': `http://${r.address}` }), stop: async () => r.stop() };
  },
  gelf: async () => {
    const r = new GelfServer(12202);
    await r.start();
    return { config: options('gelf', { 'gelf-address': 'tcp://127.0.0.1:12202' }), stop: () => r.stop() };
  },
  splunk: async () => {
    const r = new HecServer({ port: 0, token: 'bench-token', indexes: ['main'] });
    await r.listen();
    return { config: options('splunk', { 'splunk-url': r.url, 'splunk-token': 'bench-token' }), stop: () => r.close() };
  },
  loki: async () => {
    const r = new LokiEndpoint();
    await r.listen();
    return { config: options('loki', { 'loki-url': r.url }), stop: () => r.close() };
  },
  otlp: async () => {
    const r = new OtlpReceiver();
    await r.start();
    return { config: options('otlp', { 'otlp-endpoint': r.httpUrl }), stop: () => r.stop() };
  },
};

const storeDir = path.join(dir, 'store');
const store = new ContainerStore(storeDir, DEFAULT_STORE_OPTIONS, 1 << 20, () => {});
// From now: Loki and CloudWatch refuse lines a week or two old.
const T0 = BigInt(Date.now()) * 1_000_000n - BigInt(LINES) * 1000n;
setLevel('error'); // a refused or retried batch still shows
const frames = [];
const PER_BATCH = 10_000;
for (let from = 1; from <= LINES; from += PER_BATCH) {
  const n = Math.min(PER_BATCH, LINES - from + 1);
  frames.push(batch(Array.from({ length: n }, (_, i) => ({ line: String(from + i), timeNano: T0 + BigInt(from + i) * 1000n }))));
}
store.attachProducer();
const t0 = process.hrtime.bigint();
for (const b of frames) store.append(b);
await store.endPosition();
const writeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
store.detachProducer();
frames.length = 0;
const writeRate = LINES / writeSeconds;
console.log(`delivery per backend: ${LINES} lines written into the store in ${writeSeconds.toFixed(2)} s = ${Math.round(writeRate / 1000)}k lines/s`);

const slower: string[] = [];
for (const name of Object.keys(TARGETS)) {
  if (only && !only.includes(name)) continue;
  const target = await TARGETS[name]!();
  const f = factory(name);
  const plan: BackendPlan = {
    name,
    limits: f.batchLimits(target.config),
    retry: f.retryPolicy?.(target.config) ?? null,
    multiline: null,
    parseJson: false,
    create: (container) => f.create(target.config, container),
  };
  const cursor = new CursorFile(storeDir, name);
  fs.rmSync(cursor.path, { force: true });
  cursor.save({ index: 0, seq: 1, offset: 0 }); // the store's start: without a cursor a shipper starts at its end
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const container = context({ name: `bench-${name}` });
  const shipper = new Shipper(store, plan, container, cursor, new DeadLetterFile(storeDir, name));
  await shipper.done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const { shipped, deadLetters, dropped, retries } = shipper.status();
  await target.stop();
  const rate = shipped / seconds;
  const lost = LINES - shipped;
  console.log(
    `  ${name.padEnd(14)} ${shipped} lines in ${seconds.toFixed(2)} s = ${String(Math.round(rate / 1000)).padStart(4)}k lines/s ` +
      `(${(rate / writeRate).toFixed(2)}x the write rate; batches of up to ${plan.limits.maxLines} lines); this process's CPU ` +
      `${((cpu.user + cpu.system) / 1e6).toFixed(2)} s; retries ${retries}` +
      (lost > 0 ? `; NOT SHIPPED ${lost} (dead letters ${deadLetters}, dropped ${JSON.stringify(dropped)})` : ''),
  );
  if (target.floor) {
    const fresh = await TARGETS[name]!();
    const lines = Array.from({ length: FLOOR_LINES }, (_, i): OutgoingLine => ({ line: Buffer.from(String(i + 1)), timeNano: T0 + BigInt(i + 1) * 1000n, source: 'stdout' }));
    const run = fresh.floor!(lines, container);
    const floorStart = process.hrtime.bigint();
    await run();
    const floorRate = FLOOR_LINES / (Number(process.hrtime.bigint() - floorStart) / 1e9);
    await fresh.stop();
    console.log(
      `  ${''.padEnd(14)} receiver floor (${FLOOR_LINES} lines' wire bytes built beforehand, sent back to back): ${Math.round(floorRate / 1000)}k lines/s ` +
        `= ${(floorRate / writeRate).toFixed(2)}x the write rate; shipping is ${(rate / floorRate).toFixed(2)}x this floor`,
    );
  }
  if (rate < writeRate || lost > 0) slower.push(name);
}
await store.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(slower.length === 0 ? 'every backend shipped at least the write rate' : `below the write rate: ${slower.join(', ')}`);
process.exit(0); // a client library's keep-alive agent (awslogs, gcplogs) would hold the process open
