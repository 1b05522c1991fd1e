// Kafka for the tests: librdkafka's mock cluster, hosted by Debian's kcat (the real wire
// protocol: ApiVersions, Metadata, InitProducerId, idempotent Produce, Fetch), read back with
// `kcat -C -f`, behind a TCP proxy the test controls so a broker can go away and come back
// with what it had (the mock keeps its records in its own memory: stopping it loses them).
// The mock has neither SASL nor TLS: the proxy plays a broker's SASL listener (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512) and terminates TLS for every broker it advertises when a test asks.
//
// The mock keeps about 5 MB per partition (older record batches are trimmed): a test that
// reads back many lines keeps them short, compressed, or checks offsets.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { ScramExchange } from './scram.ts';
import { Daemon, type TlsMaterial, waitUntil } from './servers.ts';

const execFileAsync = promisify(execFile);

/** A record as `kcat -C -f` printed it. */
export interface ConsumedRecord {
  partition: number;
  offset: number;
  /** null: the record has no key. */
  key: string | null;
  headers: Record<string, string>;
  value: string;
  timestampMs: number;
}

// Fields apart by 0x1f, records by 0x1e: neither occurs in what the tests send.
const FORMAT = '%p\\x1f%o\\x1f%K\\x1f%k\\x1f%h\\x1f%T\\x1f%s\\x1e';

export class KafkaMock {
  readonly dir: string;
  readonly brokerCount: number;
  private daemon: Daemon | null = null;
  /** The mock's own brokers, `127.0.0.1:port`, in broker id order. */
  brokers: string[] = [];
  readonly proxy = new KafkaProxy();

  constructor(dir: string, brokerCount = 3) {
    this.dir = dir;
    this.brokerCount = brokerCount;
  }

  /** The bootstrap list through the proxy, for the producer under test. */
  get bootstrap(): string {
    return this.proxy.addresses.join(',');
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    const log = path.join(this.dir, 'kcat-mock.log');
    fs.writeFileSync(log, '');
    // A consumer of a topic no test writes keeps kcat (and its mock cluster) running.
    this.daemon = new Daemon('kcat', ['-X', `test.mock.num.brokers=${this.brokerCount}`, '-b', 'unused:9092', '-C', '-t', 'logship-keepalive', '-q'], log);
    const line = await waitUntil(() => /127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*/.exec(fs.readFileSync(log, 'utf8'))?.[0], 'the mock cluster to print its brokers', 10_000);
    this.brokers = line.split(',');
    await this.proxy.start(this.brokers);
  }

  async stop(): Promise<void> {
    await this.proxy.stop();
    await this.daemon?.stop();
    this.daemon = null;
  }

  /** Every record of a topic so far, read straight from the mock (not through the proxy). */
  async consume(topic: string): Promise<ConsumedRecord[]> {
    const { stdout } = await execFileAsync('kcat', ['-b', this.brokers[0]!, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', FORMAT], {
      maxBuffer: 1 << 30,
      timeout: 60_000,
    });
    return stdout
      .split('\x1e')
      .filter((r) => r !== '')
      .map((r) => {
        const [partition, offset, keyLength, key, headers, timestamp, ...value] = r.split('\x1f');
        return {
          partition: Number(partition),
          offset: Number(offset),
          key: keyLength === '-1' ? null : key!,
          headers: Object.fromEntries(
            headers === '' ? [] : headers!.split(',').map((h) => [h.slice(0, h.indexOf('=')), h.slice(h.indexOf('=') + 1)]),
          ),
          timestampMs: Number(timestamp),
          value: value.join('\x1f'),
        };
      });
  }

  /** Partitions of a topic and each one's leader (broker id from 1), from the mock's metadata. */
  async leaders(topic: string): Promise<Map<number, number>> {
    const { stdout } = await execFileAsync('kcat', ['-b', this.brokers[0]!, '-L', '-t', topic, '-J'], { timeout: 30_000 });
    const meta = JSON.parse(stdout) as { topics: { topic: string; partitions: { partition: number; leader: number }[] }[] };
    return new Map(meta.topics.find((t) => t.topic === topic)!.partitions.map((p) => [p.partition, p.leader]));
  }
}

/**
 * One listening port per mock broker, forwarding to it. Clients find the brokers from
 * Metadata answers, so those are rewritten to name the proxy's ports (else a client would
 * connect to the mock directly, past the proxy). `down(id)` closes a broker's port and its
 * connections; `up(id)` opens the same port again.
 */
export class KafkaProxy {
  private targets: { host: string; port: number }[] = [];
  private servers: (net.Server | null)[] = [];
  private ports: number[] = [];
  private sockets: Set<net.Socket>[] = [];
  /** Metadata answers rewritten (the proxy was in the path). */
  metadataRewrites = 0;
  /**
   * A broker's refusal of a produce request, decided from its partitions' record batch sizes:
   * the Kafka error code to answer with (10 MESSAGE_TOO_LARGE, as a broker with a smaller
   * `message.max.bytes` does; 29 TOPIC_AUTHORIZATION_FAILED), or null to pass it on. A refused
   * request never reaches the mock, as a broker that refuses it stores nothing.
   */
  refuseProduce: ((batchBytes: number[]) => number | null) | null = null;
  /** Produce requests answered with a refusal. */
  refusedProduces = 0;
  /** Topics the cluster's Metadata answers refuse this client (TOPIC_AUTHORIZATION_FAILED), as for a principal with no ACL on them. */
  readonly refuseTopics = new Set<string>();
  /** Topics answered so in Metadata. */
  refusedMetadata = 0;
  /**
   * SASL, which the mock has not: with it set, the proxy answers SaslHandshake and
   * SaslAuthenticate itself, as a broker's SASL listener with these mechanisms enabled does
   * (all three when not given), and closes a connection that sends anything else (but
   * ApiVersions) before it authenticated. A SCRAM credential is derived from the password.
   */
  sasl: { username: string; password: string; mechanisms?: readonly SaslMechanism[] } | null = null;
  /** Each authentication that succeeded, and attempts refused. */
  readonly saslLogins: { username: string; mechanism: SaslMechanism }[] = [];
  saslFailures = 0;
  /** Connections accepted (after the TLS handshake, with TLS on). */
  connections = 0;
  /**
   * TLS on every broker's port, the mock's brokers behind it in plain text; `requireClientCert`:
   * a client certificate signed by `ca` is required, as a broker with `ssl.client.auth=required`.
   * Set with useTls(), which reopens the ports.
   */
  private tls: (TlsMaterial & { requireClientCert: boolean }) | null = null;
  /** TLS handshakes that failed on the proxy's side (no client certificate, say). */
  tlsClientErrors = 0;
  /**
   * The broker's idempotence check, which the mock leaves out (it stores a batch whatever its
   * sequence): per partition and producer id and epoch, a batch's base sequence is 0 for the
   * first, the last batch's again (a retry of it: the same records, which the broker drops),
   * or the one after the last batch's records (wrapping past 2^31 - 1). Each batch that is none
   * of these, as a real broker refuses it (OUT_OF_ORDER_SEQUENCE_NUMBER), is noted here.
   */
  readonly sequenceFaults: string[] = [];
  /** Idempotent batches checked, and of those the ones with a base sequence past 0 (a producer's later batches). */
  sequencedBatches = 0;
  laterSequencedBatches = 0;
  private readonly sequences = new Map<string, { first: number; records: number }>();
  /** Versions of each API the client used (by API key), to tell what a test covered. */
  readonly versions = new Map<number, Set<number>>();

  get addresses(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p}`);
  }

  async start(brokers: string[]): Promise<void> {
    this.targets = brokers.map((b) => ({ host: b.slice(0, b.lastIndexOf(':')), port: Number(b.slice(b.lastIndexOf(':') + 1)) }));
    this.ports = this.targets.map(() => 0);
    this.sockets = this.targets.map(() => new Set());
    this.servers = this.targets.map(() => null);
    for (let i = 0; i < this.targets.length; i++) await this.up(i + 1);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.targets.length; i++) await this.down(i + 1);
  }

  /** Listeners with TLS (or, with null, without), on the same ports: connections reset, the ports reopened. */
  async useTls(material: (TlsMaterial & { requireClientCert?: boolean }) | null): Promise<void> {
    await this.downAll();
    this.tls = material && { ...material, requireClientCert: material.requireClientCert ?? false };
    await this.upAll();
  }

  /** Broker `id` (from 1) unreachable: its port closed, its connections reset. */
  async down(id: number): Promise<void> {
    const server = this.servers[id - 1];
    this.servers[id - 1] = null;
    for (const socket of this.sockets[id - 1]!) socket.destroy();
    this.sockets[id - 1]!.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async downAll(): Promise<void> {
    for (let i = 1; i <= this.targets.length; i++) await this.down(i);
  }

  async up(id: number): Promise<void> {
    if (this.servers[id - 1]) return;
    const target = this.targets[id - 1]!;
    const sockets = this.sockets[id - 1]!;
    const onClient = (client: net.Socket): void => {
      this.connections++;
      const upstream = net.connect(target);
      sockets.add(client);
      sockets.add(upstream);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      // Which requests were Metadata (by correlation id), and at what version.
      const metadata = new Map<number, number>();
      const session: SaslSession = { mechanism: null, scram: null, authenticated: false };
      frames(client, (frame) => {
        const apiKey = frame.readInt16BE(4);
        const version = frame.readInt16BE(6);
        if (!this.versions.has(apiKey)) this.versions.set(apiKey, new Set());
        this.versions.get(apiKey)!.add(version);
        if (this.sasl && !session.authenticated && apiKey !== API_VERSIONS) {
          const answer = apiKey === SASL_HANDSHAKE || apiKey === SASL_AUTHENTICATE ? this.saslAnswer(frame, session) : null;
          if (answer === null) return close();
          client.write(answer);
          return;
        }
        if (apiKey === METADATA) metadata.set(frame.readInt32BE(8), version);
        if (apiKey === PRODUCE && this.refuseProduce) {
          const refusal = produceRefusal(frame, this.refuseProduce);
          if (refusal) {
            this.refusedProduces++;
            client.write(refusal);
            return;
          }
        }
        if (apiKey === PRODUCE) this.checkSequences(frame);
        upstream.write(frame);
      });
      frames(upstream, (frame) => {
        const correlationId = frame.readInt32BE(4);
        const version = metadata.get(correlationId);
        if (version !== undefined) {
          metadata.delete(correlationId);
          this.rewriteMetadata(frame, version);
        }
        client.write(frame);
      });
    };
    const material = this.tls;
    const server = material
      ? tls.createServer(
          {
            cert: fs.readFileSync(material.cert),
            key: fs.readFileSync(material.key),
            ca: fs.readFileSync(material.ca),
            requestCert: material.requireClientCert,
            rejectUnauthorized: material.requireClientCert,
          },
          onClient,
        )
      : net.createServer(onClient);
    // The raw sockets too: one still in its TLS handshake is closed by down() as well.
    server.on('connection', (raw: net.Socket) => {
      sockets.add(raw);
      raw.on('close', () => sockets.delete(raw));
    });
    server.on('tlsClientError', () => this.tlsClientErrors++);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.ports[id - 1], '127.0.0.1', () => resolve());
    });
    this.ports[id - 1] = (server.address() as net.AddressInfo).port;
    this.servers[id - 1] = server;
  }

  async upAll(): Promise<void> {
    for (let i = 1; i <= this.targets.length; i++) await this.up(i);
  }

  private checkSequences(frame: Buffer): void {
    for (const b of parseProduce(frame).batches) {
      if (b.producerId < 0n) continue;
      this.sequencedBatches++;
      if (b.baseSequence > 0) this.laterSequencedBatches++;
      const key = `${b.topic}:${b.partition} producer ${b.producerId} epoch ${b.producerEpoch}`;
      const last = this.sequences.get(key);
      const next = last === undefined ? 0 : (last.first + last.records) % 2 ** 31;
      const retry = last !== undefined && b.baseSequence === last.first && b.records === last.records;
      if (!retry && b.baseSequence !== next) this.sequenceFaults.push(`${key}: base sequence ${b.baseSequence} (${b.records} records), expected ${next}${last ? ` or ${last.first} again` : ''}`);
      this.sequences.set(key, { first: b.baseSequence, records: b.records });
    }
  }

  /**
   * A broker's answer to SaslHandshake v1 (the mechanisms enabled) or SaslAuthenticate v2
   * (PLAIN's `\0user\0password` in one step; SCRAM's client-first, then client-final), or null
   * for a request a broker would close the connection on. Refusals are SASL_AUTHENTICATION_FAILED
   * with a message that names no credential.
   */
  private saslAnswer(frame: Buffer, session: SaslSession): Buffer | null {
    const sasl = this.sasl!;
    const enabled = sasl.mechanisms ?? SASL_MECHANISMS;
    const apiKey = frame.readInt16BE(4);
    const version = frame.readInt16BE(6);
    const correlationId = frame.readInt32BE(8);
    const r = new Reader(frame, 12);
    r.skipString(false); // client_id
    const w = new Writer();
    w.int32(correlationId);
    if (apiKey === SASL_HANDSHAKE && version === 1 && session.mechanism === null) {
      const mechanism = r.string(false) as SaslMechanism;
      const ok = enabled.includes(mechanism);
      if (ok) session.mechanism = mechanism;
      w.int16(ok ? 0 : 33); // UNSUPPORTED_SASL_MECHANISM
      w.count(enabled.length, false);
      for (const m of enabled) w.string(m, false);
      return w.frame();
    }
    if (apiKey !== SASL_AUTHENTICATE || version !== 2 || session.mechanism === null) return null;
    r.skipTaggedFields();
    const length = r.uvarint() - 1;
    const authBytes = frame.toString('utf8', r.pos, r.pos + length);
    const mechanism = session.mechanism;
    const users = new Map([[sasl.username, sasl.password]]);
    let step: { ok: true; message: string; done: boolean } | { ok: false; error: string };
    if (mechanism === 'PLAIN') {
      const [, username, password] = authBytes.split('\0');
      step = username === sasl.username && password === sasl.password ? { ok: true, message: '', done: true } : { ok: false, error: 'Authentication failed: Invalid username or password' };
    } else {
      const first = session.scram === null;
      session.scram ??= new ScramExchange(mechanism, users);
      const answer = first ? session.scram.first(authBytes) : session.scram.final(authBytes);
      step = answer.ok ? { ...answer, done: !first } : answer;
    }
    if (step.ok && step.done) {
      session.authenticated = true;
      this.saslLogins.push({ username: sasl.username, mechanism });
    } else if (!step.ok) this.saslFailures++;
    w.uvarint(0);
    w.int16(step.ok ? 0 : 58); // SASL_AUTHENTICATION_FAILED
    if (step.ok) w.nullString(true);
    else w.string(step.error, true);
    const bytes = Buffer.from(step.ok ? step.message : '');
    w.uvarint(bytes.length + 1); // auth_bytes
    w.raw(bytes);
    w.int64(0n); // session_lifetime_ms
    w.uvarint(0);
    return w.frame();
  }

  /**
   * A Metadata answer (any version) rewritten in place: its brokers made to name the proxy's
   * ports, and the topics of refuseTopics given TOPIC_AUTHORIZATION_FAILED, as a broker answers
   * a principal that may not describe the topic.
   */
  private rewriteMetadata(frame: Buffer, version: number): void {
    const flexible = version >= 9;
    const r = new Reader(frame, 8);
    if (flexible) r.skipTaggedFields(); // the response header's
    if (version >= 3) r.pos += 4; // throttle_time_ms
    const count = r.count(flexible);
    for (let i = 0; i < count; i++) {
      r.pos += 4; // node_id
      r.skipString(flexible);
      const port = frame.readInt32BE(r.pos);
      const index = this.targets.findIndex((t) => t.port === port);
      if (index >= 0) {
        frame.writeInt32BE(this.ports[index]!, r.pos);
        this.metadataRewrites++;
      }
      r.pos += 4;
      if (version >= 1) r.skipString(flexible); // rack
      if (flexible) r.skipTaggedFields();
    }
    if (this.refuseTopics.size === 0) return;
    if (version >= 2) r.skipString(flexible); // cluster_id
    if (version >= 1) r.pos += 4; // controller_id
    const topics = r.count(flexible);
    for (let t = 0; t < topics; t++) {
      const errorAt = r.pos;
      r.pos += 2;
      if (this.refuseTopics.has(r.string(flexible))) {
        frame.writeInt16BE(29, errorAt); // TOPIC_AUTHORIZATION_FAILED
        this.refusedMetadata++;
      }
      if (version >= 10) r.pos += 16; // topic_id
      if (version >= 1) r.pos += 1; // is_internal
      const partitions = r.count(flexible);
      for (let p = 0; p < partitions; p++) {
        r.pos += 2 + 4 + 4; // error_code, partition_index, leader_id
        if (version >= 7) r.pos += 4; // leader_epoch
        // replica_nodes, isr_nodes, offline_replicas: arrays of int32
        for (let list = 0; list < (version >= 5 ? 3 : 2); list++) {
          const nodes = r.count(flexible);
          r.pos += 4 * nodes;
        }
        if (flexible) r.skipTaggedFields();
      }
      if (version >= 8) r.pos += 4; // topic_authorized_operations
      if (flexible) r.skipTaggedFields();
    }
  }
}

const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** A connection's SASL state: the mechanism its handshake chose, a SCRAM exchange under way. */
interface SaslSession {
  mechanism: SaslMechanism | null;
  scram: ScramExchange | null;
  authenticated: boolean;
}

const PRODUCE = 0;
const METADATA = 3;
const SASL_HANDSHAKE = 17;
const API_VERSIONS = 18;
const SASL_AUTHENTICATE = 36;

/**
 * A produce request (v3 to v11) the refusal function refuses, answered as a broker answers it:
 * every partition with that error code. Null when it passes (or wants no answer: acks=0).
 */
/** A record batch of a produce request: where it goes and, for an idempotent producer, its sequence (Kafka's RecordBatch, magic 2). */
interface ProducedBatch {
  topic: string;
  partition: number;
  bytes: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  records: number;
}

/** A produce request's fields the proxy acts on: its acks, its topics' partitions and their record batches. */
function parseProduce(frame: Buffer): { version: number; correlationId: number; acks: number; topics: { name: string; partitions: number[] }[]; batches: ProducedBatch[] } {
  const version = frame.readInt16BE(6);
  const correlationId = frame.readInt32BE(8);
  const flexible = version >= 9;
  const r = new Reader(frame, 12);
  r.skipString(false); // client_id: a request header's is never compact
  if (flexible) r.skipTaggedFields();
  r.skipString(flexible); // transactional_id
  const acks = frame.readInt16BE(r.pos);
  r.pos += 2 + 4; // acks, timeout_ms
  const topics: { name: string; partitions: number[] }[] = [];
  const batches: ProducedBatch[] = [];
  const topicCount = r.count(flexible);
  for (let t = 0; t < topicCount; t++) {
    const name = r.string(flexible);
    const partitions: number[] = [];
    const partitionCount = r.count(flexible);
    for (let p = 0; p < partitionCount; p++) {
      const partition = r.int32();
      partitions.push(partition);
      const size = Math.max(0, flexible ? r.uvarint() - 1 : r.int32());
      // One record batch per partition, as every client sends: producer id at 43, epoch 51, base sequence 53, records 57.
      const at = r.pos;
      if (size >= 61) {
        batches.push({ topic: name, partition, bytes: size, producerId: frame.readBigInt64BE(at + 43), producerEpoch: frame.readInt16BE(at + 51), baseSequence: frame.readInt32BE(at + 53), records: frame.readInt32BE(at + 57) });
      } else batches.push({ topic: name, partition, bytes: size, producerId: -1n, producerEpoch: -1, baseSequence: -1, records: 0 });
      r.pos += size;
      if (flexible) r.skipTaggedFields();
    }
    if (flexible) r.skipTaggedFields();
    topics.push({ name, partitions });
  }
  return { version, correlationId, acks, topics, batches };
}

function produceRefusal(frame: Buffer, refuse: (batchBytes: number[]) => number | null): Buffer | null {
  const { version, correlationId, acks, topics, batches } = parseProduce(frame);
  const flexible = version >= 9;
  const code = refuse(batches.map((b) => b.bytes));
  if (code === null || acks === 0) return null;
  const w = new Writer();
  w.int32(correlationId);
  if (flexible) w.uvarint(0);
  w.count(topics.length, flexible);
  for (const topic of topics) {
    w.string(topic.name, flexible);
    w.count(topic.partitions.length, flexible);
    for (const index of topic.partitions) {
      w.int32(index);
      w.int16(code);
      w.int64(-1n); // base_offset
      w.int64(-1n); // log_append_time_ms
      if (version >= 5) w.int64(-1n); // log_start_offset
      if (version >= 8) {
        w.count(0, flexible); // record_errors
        w.nullString(flexible); // error_message
      }
      if (flexible) w.uvarint(0);
    }
    if (flexible) w.uvarint(0);
  }
  w.int32(0); // throttle_time_ms
  if (flexible) w.uvarint(0);
  return w.frame();
}

class Writer {
  private readonly parts: Buffer[] = [];

  int16(v: number): void {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
  }

  int32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
  }

  int64(v: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    this.parts.push(b);
  }

  uvarint(v: number): void {
    const bytes: number[] = [];
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      bytes.push(b);
    } while (v !== 0);
    this.parts.push(Buffer.from(bytes));
  }

  count(n: number, compact: boolean): void {
    if (compact) this.uvarint(n + 1);
    else this.int32(n);
  }

  string(text: string, compact: boolean): void {
    const bytes = Buffer.from(text);
    if (compact) this.uvarint(bytes.length + 1);
    else this.int16(bytes.length);
    this.parts.push(bytes);
  }

  raw(bytes: Buffer): void {
    this.parts.push(bytes);
  }

  nullString(compact: boolean): void {
    if (compact) this.uvarint(0);
    else this.int16(-1);
  }

  /** The whole answer, with its size before it. */
  frame(): Buffer {
    const body = Buffer.concat(this.parts);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    return Buffer.concat([size, body]);
  }
}

/** Calls `each` with every whole size-prefixed Kafka frame (its 4-byte size included) as it arrives. */
function frames(socket: net.Socket, each: (frame: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const size = 4 + pending.readInt32BE(0);
      each(Buffer.from(pending.subarray(0, size)));
      pending = pending.subarray(size);
    }
  });
}

class Reader {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uvarint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.buf[this.pos++]!;
      value |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return value;
    }
  }

  count(compact: boolean): number {
    return compact ? this.uvarint() - 1 : this.int32();
  }

  string(compact: boolean): string {
    const n = compact ? this.uvarint() - 1 : this.buf.readInt16BE(this.pos);
    if (!compact) this.pos += 2;
    const text = this.buf.toString('utf8', this.pos, this.pos + Math.max(0, n));
    this.pos += Math.max(0, n);
    return text;
  }

  /** A string, nullable or not: compact (uvarint length + 1) or int16 length (-1 null). */
  skipString(compact: boolean): void {
    if (compact) {
      const n = this.uvarint();
      if (n > 0) this.pos += n - 1;
    } else {
      const n = this.buf.readInt16BE(this.pos);
      this.pos += 2 + Math.max(0, n);
    }
  }

  skipTaggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint(); // tag
      this.pos += this.uvarint();
    }
  }
}
