// Shipping keeps up (issue 18, item 3): for each backend, a store of LINES short lines
// (`seq`-like, 1 µs apart) shipped from its start by the delivery engine (Shipper with the
// backend's own batch limits, as the plugin plans them) to its local receiver (the integration
// tests' own: rsyslog, systemd-journald, and the protocol endpoints of test/integration/lib,
// see bench/receivers.ts), beside two yardsticks:
//
// - the write rate: how fast Docker writes `seq 1 LINES` to a log driver, run to exit as
//   `make bench` runs it (bench/docker-run.ts), measured in this run when an engine answers
//   (WRITE_DRIVER: the discard-only floor plugin when installed, else json-file), or given as
//   WRITE_RATE (lines/s). Shipping at least that rate, lag does not grow under a sustained load.
// - the receiver's floor: the bytes the backend sent for FLOOR_LINES of the same lines,
//   recorded on their way (bench/wire.ts; gcplogs: the gRPC requests the endpoint took), sent
//   again back to back to a fresh receiver with nothing encoding and no engine (journald: the
//   backend's datagrams, encoded beforehand, on its own transport). Shipping can only approach it
//   (measured under the same load: on a shared machine a floor run under more comes out lower).
//
// Each receiver runs in a child process of its own (RECEIVERS=process, the default: its CPU is
// not the shipper's, as on a machine where the receiver is elsewhere; rsyslog and journald are
// their own processes anyway), or in this one (RECEIVERS=inline: its CPU counted against the shipping's).
//
//   node bench/delivery-backends.ts [backend,...]
//   env: ONLY (a comma list of backends, as the argument: a subset of them), LINES (1000000), FLOOR_LINES (LINES), RECEIVERS (process), WRITE_RATE, WRITE_DRIVER,
//        WRITE_ROUNDS (3), DISCARD (logship-discard:latest)
//   (rsyslog and systemd-journald are started here: run it under scripts/isolate.sh, as the
//   integration suite does, with an engine started inside for the write rate; `make
//   bench-delivery` runs it after bench/delivery.ts)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BACKENDS } from '../src/backends/index.ts';
import { JournalEncoder } from '../src/backends/journald.ts';
import type { ContainerContext } from '../src/shaping/container.ts';
import type { OutgoingLine } from '../src/shaping/line.ts';
import { UnixDatagramConnection } from '../src/transport/datagram.ts';
import type { AnyBackendFactory, BackendPlan } from '../src/delivery/backend.ts';
import { CursorFile } from '../src/delivery/cursor.ts';
import { DeadLetterFile } from '../src/delivery/dead-letters.ts';
import { Shipper } from '../src/delivery/shipper.ts';
import { configureBackend } from '../src/lifecycle/options.ts';
import { ContainerStore } from '../src/store/container-store.ts';
import { DEFAULT_STORE_OPTIONS } from '../src/store/options.ts';
import { setLevel } from '../src/observability/log.ts';
import { context } from '../test/unit/backend-context.ts';
import { batch } from '../test/unit/frames.ts';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { CloudLoggingEndpoint } from '../test/integration/lib/cloud-logging-endpoint.ts';
import { scratchDir } from '../test/integration/lib/servers.ts';
import { seqWriteRate } from './docker-run.ts';
import { RECEIVERS, type ReceiverAddress, type RunningReceiver, SPLUNK_TOKEN, startInChild } from './receivers.ts';
import { WireRecorder, replay } from './wire.ts';

const LINES = Number(process.env.LINES ?? 1_000_000);
// As many as are shipped: a receiver with a queue (rsyslog's main queue holds 100,000 messages)
// takes a burst shorter than it faster than it keeps up with.
const FLOOR_LINES = Math.min(LINES, Number(process.env.FLOOR_LINES ?? LINES));
const IN_PROCESS = process.env.RECEIVERS === 'inline';
const DISCARD = process.env.DISCARD ?? 'logship-discard:latest';
const WRITE_ROUNDS = Number(process.env.WRITE_ROUNDS ?? 3);
// A subset, as an argument or ONLY=splunk,elasticsearch (make bench-delivery passes no argument).
const only = (process.argv[2] ?? process.env.ONLY)?.split(',').filter((name) => name !== '') ?? null;

const dir = scratchDir('bench-delivery');
const factory = (name: string): AnyBackendFactory => BACKENDS.find((f) => f.name === name)!;
const options = (name: string, opts: Record<string, string>) => configureBackend(factory(name), opts);
const local = (port: number): string => `http://127.0.0.1:${port}`;

/** How a receiver's floor is measured: from what the backend sent, recorded. */
type Floor =
  | { kind: 'wire' }
  /** The backend's own datagrams, built beforehand, sent on its transport (journald). */
  | { kind: 'datagrams' }
  /** The gRPC requests the endpoint took, sent again two at a time (gcplogs). */
  | { kind: 'grpc' };

interface Target {
  /** The backend's config against a receiver listening at `address`. */
  config(address: ReceiverAddress): unknown;
  floor: Floor;
}

Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDLOGSHIPBENCH', AWS_SECRET_ACCESS_KEY: 'logship-bench-secret' });
const TARGETS: Record<string, Target> = {
  fluentd: { config: (a) => options('fluentd', { 'fluentd-address': `127.0.0.1:${a.port}` }), floor: { kind: 'wire' } },
  syslog: { config: (a) => options('syslog', { 'syslog-address': `tcp://127.0.0.1:${a.port}` }), floor: { kind: 'wire' } },
  journald: { config: (a) => ({ socketPath: a.socket }), floor: { kind: 'datagrams' } },
  elasticsearch: { config: (a) => options('elasticsearch', { 'elasticsearch-url': local(a.port) }), floor: { kind: 'wire' } },
  awslogs: {
    config: (a) =>
      options('awslogs', { 'awslogs-region': 'us-east-1', 'awslogs-endpoint': local(a.port), 'awslogs-group': 'g', 'awslogs-stream': 's', 'awslogs-create-group': 'true' }),
    floor: { kind: 'wire' },
  },
  gcplogs: { config: (a) => options('gcplogs', { 'gcp-project': 'bench-project', 'gcp-endpoint': `http://127.0.0.1:${a.port}` }), floor: { kind: 'grpc' } },
  gelf: { config: (a) => options('gelf', { 'gelf-address': `tcp://127.0.0.1:${a.port}` }), floor: { kind: 'wire' } },
  splunk: { config: (a) => options('splunk', { 'splunk-url': local(a.port), 'splunk-token': SPLUNK_TOKEN }), floor: { kind: 'wire' } },
  loki: { config: (a) => options('loki', { 'loki-url': `${local(a.port)}/loki/api/v1/push` }), floor: { kind: 'wire' } },
  otlp: { config: (a) => options('otlp', { 'otlp-endpoint': local(a.port) }), floor: { kind: 'wire' } },
};

// A misspelt name would measure nothing and say so only by its absence.
const unknown = only?.filter((name) => !Object.hasOwn(TARGETS, name)) ?? [];
if (unknown.length > 0) throw new Error(`no such backend in this bench: ${unknown.join(', ')} (known: ${Object.keys(TARGETS).join(', ')})`);

/** A receiver as the measured runs have it: in a child process, or here with RECEIVERS=inline. */
function startReceiver(name: string): Promise<RunningReceiver> {
  const own = path.join(dir, `${name}-${Date.now()}`);
  fs.mkdirSync(own, { recursive: true });
  return IN_PROCESS ? RECEIVERS[name]!(own) : startInChild(name, own);
}

const f2 = (x: number): string => x.toFixed(2);
const k = (rate: number): string => `${Math.round(rate / 1000)}k`;

// The write rate, first: the engine has the machine to itself while it writes.
setLevel('error'); // a refused or retried batch still shows
let writeRate = Number(process.env.WRITE_RATE ?? NaN);
let writeHow = `WRITE_RATE=${process.env.WRITE_RATE}`;
if (!Number.isFinite(writeRate)) {
  let driver = process.env.WRITE_DRIVER ?? null;
  try {
    await docker.ping();
    if (!driver) driver = (await docker.getPlugin(DISCARD, undefined).inspect().then((p) => (p as { Enabled: boolean }).Enabled).catch(() => false)) ? DISCARD : 'json-file';
    const engine = await docker.version();
    const measured = await seqWriteRate(driver, LINES, WRITE_ROUNDS);
    writeRate = measured.rate;
    writeHow = `\`seq 1 ${LINES}\` through ${driver} on Docker ${engine.Version}, run to exit (${measured.seconds.map(f2).join(', ')} s; median of ${WRITE_ROUNDS})`;
  } catch (err) {
    writeHow = `not measured (no engine answers, or it failed: ${(err as Error).message}); give WRITE_RATE`;
  }
}
console.log(
  `delivery per backend: ${LINES} lines; receivers ${IN_PROCESS ? 'in this process' : 'each in a process of its own'}; ` +
    `${os.cpus().length} CPUs, load ${os.loadavg().map(f2).join(' ')}`,
);
console.log(`  the write rate: ${Number.isFinite(writeRate) ? `${k(writeRate)} lines/s, ` : ''}${writeHow}`);

const storeDir = path.join(dir, 'store');
const store = new ContainerStore(storeDir, DEFAULT_STORE_OPTIONS, 1 << 20, () => {});
// From now: Loki and CloudWatch refuse lines a week or two old.
const T0 = BigInt(Date.now()) * 1_000_000n - BigInt(LINES) * 1000n;
const lineAt = (n: number): OutgoingLine => ({ line: Buffer.from(String(n)), timeNano: T0 + BigInt(n) * 1000n, source: 'stdout' });
{
  const frames = [];
  const PER_BATCH = 10_000;
  for (let from = 1; from <= LINES; from += PER_BATCH) {
    const n = Math.min(PER_BATCH, LINES - from + 1);
    frames.push(batch(Array.from({ length: n }, (_, i) => ({ line: String(from + i), timeNano: T0 + BigInt(from + i) * 1000n }))));
  }
  store.attachProducer();
  for (const b of frames) store.append(b);
  await store.endPosition();
  store.detachProducer();
}

/** The backend's own sends of `lines` in batches of its limit, to a receiver at `address` (untimed). */
async function sendAll(name: string, address: ReceiverAddress, lines: readonly OutgoingLine[], container: ContainerContext): Promise<void> {
  const f = factory(name);
  const config = TARGETS[name]!.config(address);
  const backend = f.create(config, container);
  const limit = f.batchLimits(config).maxLines;
  const signal = new AbortController().signal;
  for (let i = 0; i < lines.length; i += limit) {
    const result = await backend.send(lines.slice(i, i + limit), signal);
    if (result.retry || result.rejected?.length) throw new Error(`${name}: the floor's recording was not taken whole: ${JSON.stringify(result).slice(0, 300)}`);
  }
  await backend.close();
}

/** The receiver's floor, lines/s: what the backend sends for FLOOR_LINES lines, prepared beforehand, sent to a fresh receiver. */
async function floorRate(name: string, container: ContainerContext): Promise<number> {
  const lines = Array.from({ length: FLOOR_LINES }, (_, i) => lineAt(i + 1));
  const floor = TARGETS[name]!.floor;
  let run: (address: ReceiverAddress) => Promise<void>;
  if (floor.kind === 'wire') {
    // Recorded from a receiver in this process (the recording is not timed).
    const recorded = await RECEIVERS[name]!(path.join(dir, `${name}-recording`));
    const recorder = await WireRecorder.start(recorded.address.port);
    await sendAll(name, { port: recorder.port }, lines, container);
    await recorder.stop();
    await recorded.stop();
    run = (address) => replay(address.port, recorder.connections);
  } else if (floor.kind === 'grpc') {
    const endpoint = new CloudLoggingEndpoint(18095, { keepRaw: true });
    await endpoint.start();
    await sendAll(name, { port: endpoint.port }, lines, container);
    endpoint.stop();
    const requests = endpoint.raw;
    run = async (address) => {
      const client = new grpc.Client(`127.0.0.1:${address.port}`, grpc.credentials.createInsecure());
      const identity = (b: Buffer): Buffer => b;
      // Two in flight: the endpoint never waits for a round trip, nor decodes them all at once.
      let next = 0;
      const sender = async (): Promise<void> => {
        while (next < requests.length) {
          const raw = requests[next++]!;
          await new Promise<void>((resolve, reject) =>
            client.makeUnaryRequest('/google.logging.v2.LoggingServiceV2/WriteLogEntries', identity, identity, raw, (err) => (err ? reject(err) : resolve())),
          );
        }
      };
      await Promise.all([sender(), sender()]);
      client.close();
    };
  } else {
    const encoder = new JournalEncoder(container);
    const datagrams = lines.flatMap((line) => encoder.encode(line));
    run = async (address) => {
      const connection = new UnixDatagramConnection(address.socket!);
      for (let i = 0; i < datagrams.length; i += 1000) await connection.send(datagrams.slice(i, i + 1000), new AbortController().signal);
      connection.close();
    };
  }
  const fresh = await startReceiver(name);
  const start = process.hrtime.bigint();
  await run(fresh.address);
  const rate = FLOOR_LINES / (Number(process.hrtime.bigint() - start) / 1e9);
  await fresh.stop();
  return rate;
}

/**
 * Waits until no TCP socket to or from `port` holds bytes not yet read: a backend without
 * acknowledgements (syslog, GELF) is done once the kernel took its last batch, up to socket
 * buffers (megabytes on loopback) before the receiver has read it, so the shipping time ends
 * here, where the floor's does (the receiver read every byte).
 */
async function drained(port: number): Promise<void> {
  const end = `:${port}`;
  for (;;) {
    // Rows: state, Recv-Q, Send-Q, local address, peer address.
    const queued = execFileSync('ss', ['-tnH'], { encoding: 'utf8' })
      .split('\n')
      .map((row) => row.trim().split(/\s+/))
      .filter((cols) => cols[3]?.endsWith(end) || cols[4]?.endsWith(end))
      .reduce((sum, cols) => sum + Number(cols[1]) + Number(cols[2]), 0);
    if (queued === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25)); // each look is a process: not more often
  }
}

interface Figures {
  name: string;
  rate: number;
  floor: number;
}
const figures: Figures[] = [];
const problems: string[] = [];
for (const name of Object.keys(TARGETS)) {
  if (only && !only.includes(name)) continue;
  const receiver = await startReceiver(name);
  const f = factory(name);
  const config = TARGETS[name]!.config(receiver.address);
  const plan: BackendPlan = {
    name,
    limits: f.batchLimits(config),
    retry: f.retryPolicy?.(config) ?? null,
    multiline: null,
    parseJson: false,
    create: (container) => f.create(config, container),
  };
  const cursor = new CursorFile(storeDir, name);
  fs.rmSync(cursor.path, { force: true });
  cursor.save({ index: 0, seq: 1, offset: 0 }); // the store's start: without a cursor a shipper starts at its end
  const container = context({ name: `bench-${name}` });
  const load = os.loadavg()[0]!;
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const shipper = new Shipper(store, plan, container, cursor, new DeadLetterFile(storeDir, name));
  await shipper.done;
  const cpu = process.cpuUsage(cpu0);
  if (receiver.address.port) await drained(receiver.address.port);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const { shipped, deadLetters, dropped, retries } = shipper.status();
  await receiver.stop();
  const rate = shipped / seconds;
  const lost = LINES - shipped;
  if (lost > 0) problems.push(`${name}: NOT SHIPPED ${lost} (dead letters ${deadLetters}, dropped ${JSON.stringify(dropped)})`);
  const floor = await floorRate(name, container);
  figures.push({ name, rate, floor });
  console.log(
    `  ${name.padEnd(14)} ${shipped} lines in ${f2(seconds)} s = ${k(rate).padStart(5)} lines/s = ${f2(rate / floor)}x its receiver's floor ` +
      `(${k(floor)} lines/s)` +
      (Number.isFinite(writeRate) ? `, ${f2(rate / writeRate)}x the write rate` : '') +
      `; batches of up to ${plan.limits.maxLines}; this process's CPU ${f2((cpu.user + cpu.system) / 1e6)} s; retries ${retries}; load ${f2(load)}`,
  );
}
await store.close();
fs.rmSync(dir, { recursive: true, force: true });

if (Number.isFinite(writeRate)) {
  // Held by the receiver: within 10% of its floor, which is below the write rate. Held by
  // logship: further than that below its floor and below the write rate.
  const reach = figures.filter((x) => x.rate >= writeRate).map((x) => x.name);
  const rest = figures.filter((x) => x.rate < writeRate);
  const receiverBound = rest.filter((x) => x.rate >= 0.9 * x.floor).map((x) => `${x.name} (its floor ${f2(x.floor / writeRate)}x the write rate, shipping ${f2(x.rate / x.floor)}x its floor)`);
  const ours = rest.filter((x) => x.rate < 0.9 * x.floor).map((x) => `${x.name} (${f2(x.rate / x.floor)}x its floor, which is ${f2(x.floor / writeRate)}x the write rate)`);
  console.log(`  at least the write rate: ${reach.join(', ') || 'none'}`);
  console.log(`  held by the receiver (within 10% of its floor, below the write rate): ${receiverBound.join(', ') || 'none'}`);
  console.log(`  held by logship (under 0.9x its receiver's floor): ${ours.join(', ') || 'none'}`);
}
for (const p of problems) console.log(`  ${p}`);
process.exit(problems.length > 0 ? 1 : 0); // exit: a client library's keep-alive agent (awslogs, gcplogs) would hold the process open
