// The backend conformance suite: every entry of BACKENDS against its test receiver (rsyslog,
// systemd-journald, the forward server, librdkafka's mock Kafka cluster, the CloudWatch,
// Cloud Logging and Elasticsearch endpoints), the engine cases through the real engine (a Shipper over a real store):
//   - an empty batch; a send aborted mid-way; close twice;
//   - a poison line in the middle of a batch: the rest arrive, once each, in order, and the
//     poison line is dead-lettered and counted, or, where the backend can still ship it,
//     shipped as documented (cut to a datagram, or as plain text without its JSON fields);
//   - a transient outage: retried, no line acknowledged before it sent again, none rejected;
//   - a receiver that takes only part of a batch;
//   - a configuration or credential error: retried, nothing lost once fixed, no credential
//     in any error.
// A backend added to BACKENDS without a harness here fails the suite.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { BACKENDS } from '../../src/backends/index.ts';
import { type Backend, type SendResult, isTransient, type BackendPlan } from '../../src/delivery/backend.ts';
import { CursorFile } from '../../src/delivery/cursor.ts';
import { DeadLetterFile, type DeadLetterRecord } from '../../src/delivery/dead-letters.ts';
import { Shipper } from '../../src/delivery/shipper.ts';
import { configureBackend, parseLogOptions } from '../../src/lifecycle/options.ts';
// The plugin settings as the plugin reads them (at start; here whenever a backend is made).
import { backendEnvironment } from '../../src/settings.ts';
import { backendJsonTooDeep, backendRejected, backendRetries, backendTruncated } from '../../src/observability/metrics.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import { context } from '../unit/backend-context.ts';
import { type EntryFields, batch } from '../unit/frames.ts';
import { CloudLoggingEndpoint } from './lib/cloud-logging-endpoint.ts';
import { CloudWatchEndpoint } from './lib/cloudwatch-endpoint.ts';
import { ElasticsearchEndpoint } from './lib/elasticsearch-endpoint.ts';
import { GelfServer } from './lib/gelf-server.ts';
import { HecServer } from './lib/hec-server.ts';
import { KafkaMock } from './lib/kafka-mock.ts';
import { LokiEndpoint } from './lib/loki-endpoint.ts';
import { OtlpReceiver, plain } from './lib/otlp-receiver.ts';
import { FluentReceiver, Journald, Rsyslog, makeTlsMaterial, scratchDir, waitUntil } from './lib/servers.ts';
import type { ContainerContext } from '../../src/shaping/container.ts';

process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GCE_METADATA_HOST = '127.0.0.1:15029'; // closed: no metadata server
process.env.AWS_EC2_METADATA_DISABLED = 'true';

const DAY_MS = 86_400_000;
const nowNano = (offsetMs = 0): bigint => BigInt(Date.now() + offsetMs) * 1_000_000n;

/** How a backend's poison line ends: dead-lettered, or shipped in a form the backend can carry. */
type PoisonOutcome = { kind: 'dead-letter'; code: string } | { kind: 'cut' } | { kind: 'plain' };

interface Harness {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The receiver gone (its port or socket closed) and back, with what it had. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** The backend's log-opts for this container. */
  opts(ctx: ContainerContext): Record<string, string>;
  /**
   * The parsed config, for a backend whose receiver the plugin finds by its mounts rather
   * than by a log-opt (journald's socket): here, a test instance's.
   */
  config?(): unknown;
  /** The lines this container's records carry, in the order the receiver stored them. */
  received(ctx: ContainerContext): string[] | Promise<string[]>;
  /** A line this backend's receiver or encoder refuses, with the marker in it, and what becomes of it. */
  poison(marker: string): { entry: EntryFields; opts?: Record<string, string>; outcome: PoisonOutcome; setup?(): void; teardown?(): void };
  /** Makes the receiver take only part of what comes; null (with why) where the protocol has no such answer. */
  partial: { lines: (marker: string) => EntryFields[]; ctx?: Partial<ContainerContext>; setup(): void; teardown(): void } | { none: string };
  /** A configuration or credential error the operator fixes; null (with why) where the backend takes none. */
  misconfigured: { wrong(): void; right(): void; secrets: string[] } | { none: string };
}

let dir: string;
const harnesses: Record<string, Harness> = {};

// syslog, over unix datagrams to rsyslog: Docker's default transport, and the one with a limit.
{
  let rsyslog: Rsyslog;
  harnesses.syslog = {
    async start() {
      rsyslog = new Rsyslog(path.join(dir, 'rsyslog'), makeTlsMaterial(path.join(dir, 'tls')));
      await rsyslog.start();
    },
    stop: () => rsyslog.stop(),
    down: () => rsyslog.stop(),
    up: () => rsyslog.start(),
    opts: () => ({ 'syslog-address': `unixgram://${rsyslog.dgramSocket}` }),
    received: (ctx) => rsyslog.parsed().filter((m) => m.programname === ctx.tag).map((m) => m.msg.trim()),
    poison: (marker) => ({ entry: { line: `${marker} poison ${'x'.repeat(300 * 1024)}` }, outcome: { kind: 'cut' } }),
    partial: { none: 'a syslog receiver takes each message or is gone (the outage case)' },
    misconfigured: { none: 'syslog takes no credentials (TLS material is files, read at docker run)' },
  };
}

// fluentd, the forward protocol with acks, to the fluent org's server.
{
  let receiver: FluentReceiver | null = null;
  const log: { tag: string; record: Record<string, string> }[] = [];
  const drain = (): void => {
    if (receiver) for (const e of receiver.received.splice(0)) log.push({ tag: e.tag, record: e.record });
  };
  const listen = async (): Promise<void> => {
    receiver = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: 24334 } });
    await receiver.listen();
  };
  harnesses.fluentd = {
    start: listen,
    async stop() {
      drain();
      await receiver?.close();
      receiver = null;
    },
    async down() {
      await this.stop();
    },
    up: listen,
    opts: () => ({ 'fluentd-address': '127.0.0.1:24334', 'fluentd-request-ack': 'true' }),
    received: (ctx) => {
      drain();
      return log.filter((e) => e.tag === ctx.tag).map((e) => String(e.record.log));
    },
    poison: (marker) => ({
      // Its encoder throws on it (msgpack at depth 101): shipped as plain text instead.
      entry: { line: `{"m":"${marker} poison","d":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}` },
      opts: { 'parse-json': 'true' },
      outcome: { kind: 'plain' },
    }),
    partial: { none: 'the forward protocol acks a chunk whole' },
    misconfigured: { none: 'the forward protocol here takes no credentials (no shared key, as in Docker)' },
  };
}

// journald, the native protocol to systemd-journald in its own namespace.
{
  let journald: Journald;
  harnesses.journald = {
    async start() {
      journald = new Journald('logship-conformance', path.join(dir, 'journald.out'));
      journald.removeState();
      await journald.start();
    },
    async stop() {
      await journald.stop();
      journald.removeState();
    },
    down: () => journald.stop(),
    up: () => journald.start(),
    opts: () => ({}),
    config: () => ({ socketPath: journald.socket }),
    received: (ctx) => journald.messages(`CONTAINER_ID_FULL=${ctx.id}`),
    poison: (marker) => ({
      // JSON.stringify of its fields throws (about 4,400 levels): shipped as plain text instead.
      entry: { line: `{"m":"${marker} poison","d":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}` },
      opts: { 'parse-json': 'true' },
      outcome: { kind: 'plain' },
    }),
    partial: { none: 'the journal takes each datagram or is gone (the outage case)' },
    misconfigured: { none: 'journald takes no credentials' },
  };
}

// awslogs, the AWS SDK to the CloudWatch Logs endpoint.
{
  const endpoint = new CloudWatchEndpoint({ port: 14576 });
  const KEYS = { AWS_ACCESS_KEY_ID: 'AKIDCONFORMANCE', AWS_SECRET_ACCESS_KEY: 'conformance-aws-secret', AWS_SESSION_TOKEN: '' };
  const setEnv = (env: Record<string, string>): void => void Object.assign(process.env, env);
  harnesses.awslogs = {
    async start() {
      setEnv(KEYS);
      await endpoint.start();
      endpoint.createGroup('conformance');
    },
    stop: () => endpoint.stop(),
    down: () => endpoint.stop(),
    up: () => endpoint.start(),
    opts: (ctx) => ({ 'awslogs-region': 'us-east-1', 'awslogs-endpoint': endpoint.url, 'awslogs-group': 'conformance', 'awslogs-stream': ctx.tag }),
    received: (ctx) => endpoint.events('conformance', ctx.tag).map((e) => e.message),
    poison: (marker) => ({
      // Older than 14 days: the service takes the put and refuses to store the event.
      entry: { line: `${marker} poison`, timeNano: nowNano(-15 * DAY_MS) },
      outcome: { kind: 'dead-letter', code: 'too_old' },
    }),
    partial: {
      // A batch spanning more than 24 hours goes as two puts; the second fails (and the SDK's retry of it).
      lines: (marker) => Array.from({ length: 20 }, (_, i) => ({ line: `${marker} ${i + 1}`, timeNano: nowNano(i < 10 ? -30 * 3_600_000 + i : i) })),
      setup: () => endpoint.inject('ServiceUnavailableException', 2, 1),
      teardown: () => assert.equal(endpoint.pendingInjections, 0),
    },
    misconfigured: {
      wrong: () => {
        endpoint.requiredAccessKeyId = KEYS.AWS_ACCESS_KEY_ID;
        setEnv({ AWS_ACCESS_KEY_ID: 'AKIDWRONGKEY', AWS_SECRET_ACCESS_KEY: 'wrong-aws-secret-value' });
      },
      right: () => setEnv(KEYS),
      secrets: ['wrong-aws-secret-value', KEYS.AWS_SECRET_ACCESS_KEY],
    },
  };
}

// gcplogs, the Cloud Logging client to the gRPC endpoint.
{
  const endpoint = new CloudLoggingEndpoint(15020);
  harnesses.gcplogs = {
    start: () => endpoint.start(),
    async stop() {
      endpoint.stop();
      assert.deepEqual(endpoint.violations, [], 'the endpoint saw a request over its limits or out of order');
    },
    down: async () => endpoint.stop(),
    up: () => endpoint.start(),
    opts: () => ({ 'gcp-project': 'conformance', 'gcp-endpoint': `http://${endpoint.address}` }),
    received: (ctx) =>
      endpoint.written.filter((e) => (e.jsonPayload.container as { id?: string } | undefined)?.id === ctx.id).map((e) => String(e.jsonPayload.message ?? '')),
    poison: (marker) => ({
      entry: { line: `${marker} poison` },
      outcome: { kind: 'dead-letter', code: 'invalid' },
      setup: () => endpoint.rejectEntries((e) => String(e.jsonPayload.message).includes(`${marker} poison`)),
    }),
    partial: {
      // Every entry carries 20 KB of attributes: 500 lines go as two requests, and the second fails once.
      lines: (marker) => Array.from({ length: 500 }, (_, i) => ({ line: `${marker} ${i + 1}` })),
      ctx: { attributes: Array.from({ length: 20 }, (_, i) => [`label-${i}`, 'v'.repeat(1000)] as const) },
      setup: () => endpoint.failNext(grpc.status.UNAVAILABLE, 1, 1),
      teardown: () => endpoint.clearFaults(),
    },
    misconfigured: {
      // The project's permissions, missing: the operator grants them.
      wrong: () => endpoint.failNext(grpc.status.PERMISSION_DENIED, 1_000_000),
      right: () => endpoint.clearFaults(),
      secrets: [],
    },
  };
}

// elasticsearch, the Elastic client to the bulk endpoint, with basic auth.
{
  const endpoint = new ElasticsearchEndpoint({ mode: 'elasticsearch', port: 19220, basic: { username: 'logship', password: 'conformance-es-secret' } });
  const RIGHT = { ELASTICSEARCH_USERNAME: 'logship', ELASTICSEARCH_PASSWORD: 'conformance-es-secret' };
  let conflictsBefore = 0;
  harnesses.elasticsearch = {
    async start() {
      Object.assign(process.env, RIGHT);
      await endpoint.listen();
    },
    async stop() {
      await endpoint.close();
      delete process.env.ELASTICSEARCH_USERNAME;
      delete process.env.ELASTICSEARCH_PASSWORD;
      assert.deepEqual(endpoint.violations, [], 'the endpoint saw requests no server would take');
    },
    down: () => endpoint.close(),
    up: () => endpoint.listen(),
    opts: () => ({ 'elasticsearch-url': endpoint.url }),
    received: (ctx) =>
      endpoint.documents().filter((d) => (d.source.container as { id?: string }).id === ctx.id).map((d) => String(d.source.message)),
    poison: (marker) => ({
      entry: { line: `${marker} poison` },
      outcome: { kind: 'dead-letter', code: 'invalid' },
      setup: () => endpoint.conflictWhen((doc) => String(doc.message).includes(`${marker} poison`)),
      teardown: () => endpoint.conflictWhen(null),
    }),
    partial: {
      // Every third document refused for now (429) on its first offer.
      lines: (marker) => Array.from({ length: 30 }, (_, i) => ({ line: `${marker} ${i + 1}` })),
      setup: () => {
        conflictsBefore = endpoint.refused.get(409) ?? 0;
        const offered = new Set<string>();
        endpoint.refuseItems((doc) => {
          const text = String(doc.message);
          const first = !offered.has(text);
          offered.add(text);
          return first && Number(text.split(' ').at(-1)) % 3 === 0 ? { status: 429 } : null;
        });
      },
      teardown: () => {
        endpoint.refuseItems(null);
        assert.equal((endpoint.refused.get(409) ?? 0) - conflictsBefore, 0, 'no document sent again once stored');
      },
    },
    misconfigured: {
      wrong: () => void Object.assign(process.env, { ELASTICSEARCH_PASSWORD: 'wrong-es-secret-value' }),
      right: () => void Object.assign(process.env, RIGHT),
      secrets: ['wrong-es-secret-value', RIGHT.ELASTICSEARCH_PASSWORD],
    },
  };
}

// gelf over TCP to the GELF server (UDP has no failure to see while the receiver is down);
// the poison line's container goes over UDP, where a message longer than 128 chunks is cut.
{
  const server = new GelfServer(12231);
  const overUdp = new Set<string>();
  harnesses.gelf = {
    start: () => server.start(),
    async stop() {
      await server.stop();
      assert.deepEqual(server.violations, [], 'the GELF server saw what Graylog refuses');
    },
    // After the replay window (1 s): a server gone within it gets its last batches again, by design.
    down: async () => {
      await sleep(1100);
      await server.stop();
    },
    up: () => server.start(),
    opts: (ctx) =>
      overUdp.has(ctx.tag)
        ? { 'gelf-address': `udp://127.0.0.1:${server.port}`, 'gelf-compression-type': 'gzip' }
        : { 'gelf-address': `tcp://127.0.0.1:${server.port}` },
    received: (ctx) => server.messages((m) => m._container_id === ctx.id).map((m) => m.short_message),
    poison: (marker) => {
      overUdp.add(marker);
      // Random bytes in base64 hardly compress: about 300 KB gzipped, over 128 chunks' 180 KB.
      return { entry: { line: `${marker} poison ${randomBytes(300 * 1024).toString('base64')}` }, outcome: { kind: 'cut' } };
    },
    partial: { none: 'GELF has no acknowledgement: a receiver takes each message or is gone (the outage case)' },
    misconfigured: { none: 'GELF takes no credentials' },
  };
}

// splunk, with indexer acknowledgment granted late, to the HEC server.
{
  const TOKEN = 'conformance-hec-token-0001';
  const server = new HecServer({ port: 18088, token: TOKEN, acks: true, ackDelayMs: 150 });
  harnesses.splunk = {
    start: () => server.listen(),
    async stop() {
      await server.close();
      assert.deepEqual(server.violations, [], 'the HEC server saw what HEC refuses');
    },
    // Once the batches it took are acknowledged: one taken but not yet acknowledged would go again.
    down: async () => {
      await waitUntil(() => server.pendingAcks === 0, 'the acknowledgments of what the collector took');
      await server.close();
    },
    up: () => server.listen(),
    opts: () => ({ 'splunk-url': server.url, 'splunk-token': TOKEN, 'splunk-index-acknowledgment': 'true' }),
    received: (ctx) =>
      server.events.filter((e) => (e.event as { tag?: string }).tag === ctx.tag).map((e) => String((e.event as { line: unknown }).line)),
    poison: (marker) => ({
      entry: { line: `${marker} poison` },
      outcome: { kind: 'dead-letter', code: 'invalid' },
      setup: () => server.refuseEvents((e) => String((e.event as { line?: unknown }).line).includes(`${marker} poison`)),
      teardown: () => server.refuseEvents(null),
    }),
    partial: { none: 'HEC takes a request whole or refuses it (a refused event: the poison case)' },
    misconfigured: {
      // The collector's token was rotated: the operator gives the plugin the new one... here the collector takes the old one back.
      wrong: () => void (server.token = 'rotated-hec-token-0002'),
      right: () => void (server.token = TOKEN),
      secrets: [TOKEN],
    },
  };
}

/** The backend as the plugin makes it for a container, from its log-opts. */
function createBackend(name: string, harness: Harness, ctx: ContainerContext): Backend {
  const factory = BACKENDS.find((f) => f.name === name)!;
  return factory.create(harness.config?.() ?? configureBackend(factory, harness.opts(ctx), backendEnvironment(process.env)), ctx);
}

/** Engines a test started: those it did not finish (it failed) are stopped after it. */
const running = new Set<Engine>();

// loki, snappy protobuf to the push endpoint, which keeps each stream in order.
{
  const endpoint = new LokiEndpoint();
  harnesses.loki = {
    start: () => endpoint.listen(),
    async stop() {
      await endpoint.close();
      assert.deepEqual(endpoint.violations, [], 'the endpoint saw pushes no Loki would take');
    },
    down: () => endpoint.close(),
    up: () => endpoint.listen(),
    opts: () => ({ 'loki-url': endpoint.url, 'loki-external-labels': 'cid={{.FullID}}' }),
    received: (ctx) => endpoint.entries({ cid: ctx.id }).map((e) => e.line),
    poison: (marker) => ({
      // Older than the endpoint's reject window: Loki answers 400 for it alone.
      entry: { line: `${marker} poison`, timeNano: nowNano(-15 * DAY_MS) },
      outcome: { kind: 'dead-letter', code: 'too_old' },
    }),
    partial: { none: 'Loki takes the valid entries of a push and refuses the others for good (the poison case)' },
    misconfigured: {
      // The tenant the operator must name: 401 until then.
      wrong: () => void (endpoint.tenantRequired = true),
      right: () => void (endpoint.tenantRequired = false),
      secrets: [],
    },
  };
}

// otlp, gRPC (logship's HTTP/2 framing) to @grpc/grpc-js's server.
{
  const receiver = new OtlpReceiver();
  harnesses.otlp = {
    start: () => receiver.start(),
    async stop() {
      await receiver.stop();
      assert.deepEqual(receiver.violations, [], 'the receiver saw records without a time');
    },
    down: () => receiver.stop(),
    up: () => receiver.start(),
    opts: () => ({ 'otlp-endpoint': receiver.grpcUrl, 'otlp-protocol': 'grpc', 'otlp-headers': 'authorization=Bearer%20conformance-otlp-token' }),
    received: (ctx) =>
      receiver
        .records()
        .filter((r) => r.resource['container.id'] === ctx.id)
        .map((r) => {
          const body = plain(r.body);
          return typeof body === 'string' ? body : JSON.stringify(body);
        }),
    poison: (marker) => ({
      entry: { line: `${marker} poison` },
      outcome: { kind: 'dead-letter', code: 'invalid' },
      // A collector refuses a request with a malformed record whole (INVALID_ARGUMENT).
      setup: () => receiver.invalidWhen((r) => String(plain(r.body)).includes(`${marker} poison`)),
      teardown: () => receiver.invalidWhen(null),
    }),
    partial: { none: "OTLP's partial success refuses records for good (the poison case)" },
    misconfigured: {
      wrong: () => void (receiver.required = ['authorization', 'Bearer another-token']),
      right: () => void (receiver.required = null),
      secrets: ['conformance-otlp-token'],
    },
  };
}

// kafka, the idempotent producer to librdkafka's mock cluster (kcat) behind the test's proxy,
// which takes the brokers away and plays the brokers' SASL/PLAIN listener.
{
  let mock: KafkaMock;
  const topic = (ctx: ContainerContext): string => `conformance-${ctx.id.slice(0, 12)}`;
  const RIGHT = { KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'logship', KAFKA_SASL_PASSWORD: 'conformance-kafka-secret' };
  harnesses.kafka = {
    async start() {
      Object.assign(process.env, RIGHT);
      mock = new KafkaMock(path.join(dir, 'kafka'));
      await mock.start();
      mock.proxy.sasl = { username: RIGHT.KAFKA_SASL_USERNAME, password: RIGHT.KAFKA_SASL_PASSWORD };
    },
    async stop() {
      await mock.stop();
      for (const name of Object.keys(RIGHT)) delete process.env[name];
    },
    down: () => mock.proxy.downAll(),
    up: () => mock.proxy.upAll(),
    opts: (ctx) => ({ 'kafka-brokers': mock.bootstrap, 'kafka-topic': topic(ctx), 'kafka-message-max-bytes': '100k' }),
    received: async (ctx) =>
      (await mock.consume(topic(ctx)).catch(() => []))
        .filter((r) => r.headers.container_id === ctx.id)
        .map((r) => String((JSON.parse(r.value) as { log: string }).log)),
    poison: (marker) => ({
      // Over kafka-message-max-bytes: rejected before it is sent, never retried.
      entry: { line: `${marker} poison ${'x'.repeat(200 * 1024)}` },
      outcome: { kind: 'dead-letter', code: 'too_large' },
    }),
    partial: { none: 'every send goes to one partition, whose leader takes the record batch whole or refuses it' },
    misconfigured: {
      // The SASL password rotated on the cluster: the operator sets the new one in the plugin settings.
      wrong: () => void (process.env.KAFKA_SASL_PASSWORD = 'wrong-kafka-secret-value'),
      right: () => void Object.assign(process.env, RIGHT),
      secrets: ['wrong-kafka-secret-value', RIGHT.KAFKA_SASL_PASSWORD],
    },
  };
}

/** A container's store, shipped to one backend by the real engine; every send's outcome recorded. */
class Engine {
  readonly ctx: ContainerContext;
  readonly storeDir: string;
  readonly errors: unknown[] = [];
  readonly results: SendResult[] = [];
  private readonly name: string;
  private readonly options: Record<string, string>;
  private store: ContainerStore;
  private shipper: Shipper;

  private readonly harness: Harness;

  constructor(name: string, harness: Harness, ctx: ContainerContext, extra: Record<string, string> = {}) {
    this.name = name;
    this.harness = harness;
    this.ctx = ctx;
    running.add(this);
    this.options = { backend: name, ...harness.opts(ctx), ...extra };
    this.storeDir = fs.mkdtempSync(path.join(dir, `store-${name}-`));
    this.store = this.openStore();
    this.shipper = this.ship();
  }

  append(entries: EntryFields[]): void {
    const t = nowNano();
    this.store.append(batch(entries.map((e, i) => ({ timeNano: t + BigInt(i) * 1000n, ...e }))));
  }

  /** Stops shipping (as at plugin shutdown) and starts again over the same store. */
  async restart(): Promise<void> {
    await this.shipper.stop();
    this.shipper = this.ship();
  }

  /** The container stops; resolves once the engine has shipped everything. */
  async finish(): Promise<void> {
    this.store.detachProducer();
    await this.shipper.done;
    await this.store.close();
    running.delete(this);
  }

  /** Stops shipping where it is (a test that failed). */
  async abandon(): Promise<void> {
    await this.shipper.stop();
    await this.store.close();
    running.delete(this);
  }

  deadLetters(): DeadLetterRecord[] {
    const file = new DeadLetterFile(this.storeDir, this.name).path;
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DeadLetterRecord) : [];
  }

  private openStore(): ContainerStore {
    const store = new ContainerStore(this.storeDir, { maxSizeBytes: 50 << 20, maxFiles: 5, compress: false }, 1 << 20, (n, err) => assert.fail(`dropped ${n}: ${String(err)}`));
    store.attachProducer();
    return store;
  }

  /** The log-opts parsed as at StartLogging (so with the plugin settings of now). */
  private plan(): BackendPlan {
    const [plan] = parseLogOptions(this.options, BACKENDS, backendEnvironment(process.env)).backends;
    // The engine's own backoff, made short for the test; its batching as the backend asks.
    return {
      ...plan!,
      retry: { initialDelayMs: 50, maxDelayMs: 400 },
      limits: { ...plan!.limits, maxDelayMs: 50 },
      create: (c) => this.recording(createBackend(this.name, this.harness, c)),
    };
  }

  private ship(): Shipper {
    const cursor = new CursorFile(this.storeDir, this.name);
    // A new cursor starts at the end of the store: this one starts at its beginning.
    if (cursor.load() === null) {
      fs.mkdirSync(path.dirname(cursor.path), { recursive: true });
      fs.writeFileSync(cursor.path, JSON.stringify({ version: 1, index: 0, seq: 1, offset: 0 }));
    }
    return new Shipper(this.store, this.plan(), this.ctx, cursor, new DeadLetterFile(this.storeDir, this.name));
  }

  private recording(backend: Backend): Backend {
    return {
      send: async (lines, signal) => {
        try {
          const result = await backend.send(lines, signal);
          this.results.push(result);
          return result;
        } catch (err) {
          this.errors.push(err);
          throw err;
        }
      },
      close: () => backend.close(),
    };
  }
}

const counter = async (metric: typeof backendRejected, labels: Record<string, string>): Promise<number> =>
  (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x)).reduce((n, v) => n + v.value, 0);

const newContext = (overrides: Partial<ContainerContext> = {}): ContainerContext => {
  const id = randomBytes(32).toString('hex');
  return context({ id, tag: `cf-${id.slice(0, 10)}`, ...overrides });
};

const texts = (marker: string, from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `${marker} ${from + i}`);

async function receivedAll(harness: Harness, ctx: ContainerContext, expected: readonly string[], timeoutMs = 30_000): Promise<string[]> {
  let got: string[] = [];
  try {
    return await waitUntil(
      async () => {
        got = await harness.received(ctx);
        return expected.every((t) => got.includes(t)) ? got : undefined;
      },
      `${expected.length} lines`,
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${got.length} arrived, missing ${expected.filter((t) => !got.includes(t)).slice(0, 3).join(', ')}`);
  }
}

before(() => {
  dir = scratchDir('conformance');
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('backend conformance', () => {
  it('every backend in BACKENDS has a test receiver here', () => {
    assert.deepEqual(BACKENDS.map((f) => f.name).filter((name) => !harnesses[name]), []);
  });

  for (const factory of BACKENDS) {
    const harness = harnesses[factory.name];
    if (!harness) continue;
    describe(factory.name, () => {
      before(() => harness.start());
      afterEach(async () => {
        for (const engine of running) await engine.abandon();
      });
      after(() => harness.stop());

      it('an empty batch names no line and fails nothing', async () => {
        const ctx = newContext();
        const backend = createBackend(factory.name, harness, ctx);
        const result = await backend.send([], new AbortController().signal);
        assert.equal(result.retry, undefined);
        assert.equal(result.rejected?.length ?? 0, 0);
        await backend.close();
      });

      it('a send aborted mid-way settles at once, transient if it fails, and the backend goes on', async () => {
        const ctx = newContext();
        const backend = createBackend(factory.name, harness, ctx);
        const marker = ctx.tag;
        const lines = texts(marker, 1, 200).map((t) => ({ source: 'stdout' as const, timeNano: nowNano(), line: Buffer.from(t) }));
        const controller = new AbortController();
        const started = Date.now();
        const pending = backend.send(lines, controller.signal);
        setImmediate(() => controller.abort(new Error('plugin shutdown')));
        await pending.then(
          () => {},
          (err: unknown) => assert.ok(isTransient(err), `an aborted send fails transient, not as the batch's fault: ${String(err)}`),
        );
        assert.ok(Date.now() - started < 5000, `settled after ${Date.now() - started} ms`);
        await backend.send(lines.slice(0, 1), new AbortController().signal);
        await backend.close();
      });

      it('close twice', async () => {
        const ctx = newContext();
        const backend = createBackend(factory.name, harness, ctx);
        await backend.send(texts(ctx.tag, 1, 1).map((t) => ({ source: 'stdout' as const, timeNano: nowNano(), line: Buffer.from(t) })), new AbortController().signal);
        await backend.close();
        await backend.close();
      });

      it('a poison line in the middle of a batch: the rest arrive once each, in order; the poison line ends as documented, counted', async () => {
        const ctx = newContext();
        const marker = ctx.tag;
        const poison = harness.poison(marker);
        poison.setup?.();
        const before = {
          rejected: await counter(backendRejected, { backend: factory.name }),
          truncated: await counter(backendTruncated, { backend: factory.name }),
          tooDeep: await counter(backendJsonTooDeep, { backend: factory.name }),
        };
        const engine = new Engine(factory.name, harness, ctx, poison.opts);
        engine.append([...texts(marker, 1, 20).map((line) => ({ line })), poison.entry, ...texts(marker, 21, 40).map((line) => ({ line }))]);
        const expected = texts(marker, 1, 40);
        await receivedAll(harness, ctx, expected);
        await engine.finish();
        poison.teardown?.();
        const got = (await harness.received(ctx)).filter((t) => !t.includes('poison'));
        assert.deepEqual(got, expected, 'the other lines, once each, in order');
        const arrived = (await harness.received(ctx)).filter((t) => t.includes(`${marker} poison`));
        const letters = engine.deadLetters();
        switch (poison.outcome.kind) {
          case 'dead-letter':
            assert.deepEqual(arrived, [], 'the receiver did not take it');
            assert.equal(letters.length, 1);
            assert.ok(letters[0]!.line.includes(`${marker} poison`));
            assert.equal(letters[0]!.code, poison.outcome.code);
            assert.equal((await counter(backendRejected, { backend: factory.name })) - before.rejected, 1);
            break;
          case 'cut':
            assert.equal(arrived.length, 1);
            assert.ok(arrived[0]!.length < String(poison.entry.line).length, `cut: ${arrived[0]!.length} of ${String(poison.entry.line).length}`);
            assert.deepEqual(letters, []);
            assert.equal((await counter(backendTruncated, { backend: factory.name })) - before.truncated, 1);
            break;
          case 'plain':
            assert.deepEqual(arrived, [String(poison.entry.line)], 'the whole line, as text');
            assert.deepEqual(letters, []);
            assert.equal((await counter(backendJsonTooDeep, { backend: factory.name })) - before.tooDeep, 1);
            break;
        }
      });

      it('a transient outage: retried until the receiver is back, nothing acknowledged sent again, nothing rejected', async () => {
        const ctx = newContext();
        const marker = ctx.tag;
        const engine = new Engine(factory.name, harness, ctx);
        engine.append(texts(marker, 1, 10).map((line) => ({ line })));
        await receivedAll(harness, ctx, texts(marker, 1, 10));
        const retries = await counter(backendRetries, { backend: factory.name });
        await harness.down();
        try {
          engine.append(texts(marker, 11, 20).map((line) => ({ line })));
          await waitUntil(async () => (await counter(backendRetries, { backend: factory.name })) - retries >= 3, 'three failed sends');
        } finally {
          await harness.up();
        }
        await receivedAll(harness, ctx, texts(marker, 1, 20));
        await engine.finish();
        assert.deepEqual(await harness.received(ctx), texts(marker, 1, 20), 'every line once, in order');
        assert.deepEqual(engine.deadLetters(), [], 'an outage rejects nothing');
        assert.ok(engine.errors.length > 0 || engine.results.some((r) => r.retry), 'the outage was seen');
        for (const err of engine.errors) assert.ok(isTransient(err), `an outage is transient: ${String(err)}`);
      });

      it('a receiver that takes only part of a batch: the rest goes again, and everything arrives once', async (t: TestContext) => {
        if ('none' in harness.partial) return t.skip(harness.partial.none);
        const partial = harness.partial;
        const ctx = newContext(partial.ctx);
        const marker = ctx.tag;
        partial.setup();
        const engine = new Engine(factory.name, harness, ctx);
        const entries = partial.lines(marker);
        engine.append(entries);
        const expected = entries.map((e) => String(e.line));
        await receivedAll(harness, ctx, expected);
        await engine.finish();
        partial.teardown();
        assert.deepEqual((await harness.received(ctx)).sort(), [...expected].sort(), 'every line once');
        assert.ok(engine.results.some((r) => r.retry?.lines?.length), 'the backend named lines to send again');
        assert.deepEqual(engine.deadLetters(), []);
      });

      it('a configuration or credential error is retried and loses nothing once fixed; no error quotes a credential', async (t: TestContext) => {
        if ('none' in harness.misconfigured) return t.skip(harness.misconfigured.none);
        const misconfigured = harness.misconfigured;
        const ctx = newContext();
        const marker = ctx.tag;
        const logged: string[] = [];
        const write = process.stderr.write;
        process.stderr.write = ((chunk: string | Uint8Array) => (logged.push(String(chunk)), true)) as typeof process.stderr.write;
        let engine: Engine;
        try {
          misconfigured.wrong();
          engine = new Engine(factory.name, harness, ctx);
          engine.append(texts(marker, 1, 5).map((line) => ({ line })));
          await waitUntil(() => engine.errors.length >= 3, 'three failed sends');
          assert.deepEqual(await harness.received(ctx), []);
          misconfigured.right();
          // The operator fixed it and restarted the plugin: the same store, a new backend.
          await engine.restart();
          await receivedAll(harness, ctx, texts(marker, 1, 5));
          await engine.finish();
        } finally {
          process.stderr.write = write;
          misconfigured.right();
        }
        assert.deepEqual(await harness.received(ctx), texts(marker, 1, 5));
        assert.deepEqual(engine.deadLetters(), [], 'nothing rejected for a configuration error');
        const said = [...engine.errors.flatMap((e) => [String(e), (e as Error).message, String((e as Error).cause ?? '')]), ...logged];
        for (const err of engine.errors) assert.ok(isTransient(err), `transient: ${String(err)}`);
        for (const secret of misconfigured.secrets) for (const text of said) assert.ok(!text.includes(secret), `a credential in: ${text.slice(0, 200)}`);
      });
    });
  }
});
