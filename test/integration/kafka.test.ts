// kafka against librdkafka's mock cluster (3 brokers, kcat), through the test's proxy, read
// back with `kcat -C -f`: every record's value, key, headers, partition and order; a leader
// gone for 10 s while 100,000 lines are shipped by the real engine (every batch's idempotent
// sequence checked by the proxy, as a broker does: the mock does not); a record too large for
// the broker rejected, not retried forever; a refused topic dead-lettered whole; the broker's
// retriable errors retried; acks=0 refused; a cluster down at create; SASL PLAIN and SCRAM
// and TLS (a CA, a client certificate, skip-verify) against the proxy playing those listeners.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKENDS } from '../../src/backends/index.ts';
import { KafkaBackend, kafkaFactory } from '../../src/backends/kafka.ts';
import { isTransient } from '../../src/delivery/backend.ts';
import { CursorFile } from '../../src/delivery/cursor.ts';
import { DeadLetterFile, type DeadLetterRecord } from '../../src/delivery/dead-letters.ts';
import { Shipper } from '../../src/delivery/shipper.ts';
import { configureBackend, parseLogOptions } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import { context } from '../unit/backend-context.ts';
import { type EntryFields, batch } from '../unit/frames.ts';
import { type ConsumedRecord, KafkaMock } from './lib/kafka-mock.ts';
import { type TlsMaterial, makeTlsMaterial, scratchDir, waitUntil } from './lib/servers.ts';

let dir: string;
let mock: KafkaMock;

const signal = (): AbortSignal => new AbortController().signal;
const nowNano = (): bigint => BigInt(Date.now()) * 1_000_000n;
const lines = (prefix: string, n: number, source: 'stdout' | 'stderr' = 'stdout'): OutgoingLine[] =>
  Array.from({ length: n }, (_, i) => ({ source, timeNano: nowNano() + BigInt(i), line: Buffer.from(`${prefix} ${i + 1}`) }));
const newContext = (overrides: Parameters<typeof context>[0] = {}) => {
  const id = randomBytes(32).toString('hex');
  return context({ id, tag: id.slice(0, 12), ...overrides });
};
const backend = (opts: Record<string, string>, ctx = newContext()) => ({
  b: new KafkaBackend(configureBackend(kafkaFactory, { 'kafka-brokers': mock.bootstrap, ...opts }), ctx),
  ctx,
});
const topicName = (what: string): string => `${what}-${randomBytes(4).toString('hex')}`;

async function consumed(topic: string, count: number, timeoutMs = 60_000): Promise<ConsumedRecord[]> {
  let got: ConsumedRecord[] = [];
  await waitUntil(async () => (got = await mock.consume(topic)).length >= count, `${count} records in ${topic}`, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}: ${got.length} there`);
  });
  return got;
}

/** A backend with SASL credentials from the plugin settings, as `docker plugin set` gives them. */
function saslBackend(mechanism: string, password: string, topic: string, opts: Record<string, string> = {}): KafkaBackend {
  const settings = { proxy: { httpProxy: '', httpsProxy: '', noProxy: '' }, env: { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: 'logship', KAFKA_SASL_PASSWORD: password } };
  return new KafkaBackend(configureBackend(kafkaFactory, { 'kafka-brokers': mock.bootstrap, 'kafka-topic': topic, ...opts }, settings), newContext());
}

/** What the plugin logged (its JSON lines on stderr) while fn ran. */
async function capturingStderr(fn: () => Promise<void>): Promise<string[]> {
  const logged: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (logged.push(...String(chunk).split('\n').filter(Boolean)), true)) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
  }
  return logged;
}

/** A container's store shipped to kafka by the real engine, as the plugin runs it. */
class Engine {
  readonly storeDir = fs.mkdtempSync(path.join(dir, 'store-'));
  readonly store = new ContainerStore(this.storeDir, { maxSizeBytes: 200 << 20, maxFiles: 5, compress: false }, 1 << 20, (n, err) => assert.fail(`dropped ${n}: ${String(err)}`));
  readonly shipper: Shipper;

  constructor(opts: Record<string, string>, ctx = newContext()) {
    this.store.attachProducer();
    const [plan] = parseLogOptions({ backend: 'kafka', 'kafka-brokers': mock.bootstrap, ...opts }, BACKENDS).backends;
    const cursor = new CursorFile(this.storeDir, 'kafka');
    // A new cursor starts at the end of the store: this one starts at its beginning.
    fs.mkdirSync(path.dirname(cursor.path), { recursive: true });
    fs.writeFileSync(cursor.path, JSON.stringify({ version: 1, index: 0, seq: 1, offset: 0 }));
    this.shipper = new Shipper(this.store, { ...plan!, retry: { initialDelayMs: 100, maxDelayMs: 1000 } }, ctx, cursor, new DeadLetterFile(this.storeDir, 'kafka'));
  }

  append(entries: EntryFields[]): void {
    this.store.append(batch(entries));
  }

  async finish(): Promise<void> {
    this.store.detachProducer();
    await this.shipper.done;
    await this.store.close();
  }

  deadLetters(): DeadLetterRecord[] {
    const file = new DeadLetterFile(this.storeDir, 'kafka').path;
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DeadLetterRecord) : [];
  }
}

before(async () => {
  dir = scratchDir('kafka');
  mock = new KafkaMock(path.join(dir, 'mock'));
  await mock.start();
});

after(async () => {
  await mock?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('kafka to the mock cluster', () => {
  it('json: the fluentd fields, keyed by the full id, one partition, in order, headers, the line time', async () => {
    const topic = topicName('records');
    const ctx = newContext({ name: 'web-1', attributes: [['app', 'shop'], ['E1', 'xyz']] });
    const { b } = backend({ 'kafka-topic': topic }, ctx);
    const out = [...lines('out', 300), ...lines('err', 200, 'stderr')];
    assert.deepEqual(await b.send(out.slice(0, 250), signal()), {});
    assert.deepEqual(await b.send(out.slice(250), signal()), {});
    await b.close();
    const records = await consumed(topic, 500);
    assert.equal(records.length, 500);
    assert.equal(new Set(records.map((r) => r.partition)).size, 1, 'one partition');
    assert.deepEqual(records.map((r) => r.offset), Array.from({ length: 500 }, (_, i) => i), 'in order, once each');
    assert.ok(mock.proxy.metadataRewrites > 0, 'through the proxy');
    records.forEach((r, i) => {
      const line = out[i]!;
      assert.equal(r.key, ctx.id);
      assert.deepEqual(JSON.parse(r.value), { source: line.source, log: line.line.toString(), container_id: ctx.id, container_name: '/web-1', app: 'shop', E1: 'xyz' });
      assert.deepEqual(r.headers, { container_id: ctx.id, container_name: 'web-1', app: 'shop', E1: 'xyz', source: line.source });
      assert.equal(BigInt(r.timestampMs), line.timeNano / 1_000_000n);
    });
    // The partition Java clients pick for that key: librdkafka's Java-compatible murmur2 agrees.
    execFileSync('kcat', ['-b', mock.brokers[0]!, '-P', '-t', topic, '-X', 'partitioner=murmur2_random', '-k', ctx.id], { input: 'oracle\n' });
    const oracle = (await consumed(topic, 501)).find((r) => r.value === 'oracle')!;
    assert.equal(oracle.partition, records[0]!.partition);
  });

  for (const compression of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
    it(`compression ${compression}: the consumer reads every record back`, async () => {
      const topic = topicName(`c-${compression}`);
      const { b } = backend({ 'kafka-topic': topic, 'kafka-compression': compression, 'kafka-format': 'raw' });
      assert.deepEqual(await b.send(lines('z', 1000), signal()), {});
      await b.close();
      assert.deepEqual((await consumed(topic, 1000)).map((r) => r.value), lines('z', 1000).map((l) => l.line.toString()));
    });
  }

  it('raw, with no key, a topic from the container name: the lines as they are; each send to one partition', async () => {
    const ctx = newContext({ name: `app-${randomBytes(3).toString('hex')}` });
    const { b } = backend({ 'kafka-topic': 'logs-{{.Name}}', 'kafka-key': '', 'kafka-format': 'raw' }, ctx);
    const sent = [Buffer.from('plain text'), Buffer.from('{"level":"info"}'), Buffer.from('tabs\tand "quotes"')];
    for (let k = 0; k < 4; k++) {
      assert.deepEqual(await b.send(sent.map((line) => ({ source: 'stdout' as const, timeNano: nowNano(), line })), signal()), {});
    }
    await b.close();
    const records = await consumed(`logs-${ctx.name}`, 12);
    assert.ok(records.every((r) => r.key === null), 'no key');
    const byPartition = Map.groupBy(records, (r) => r.partition);
    for (const [, inPartition] of byPartition) {
      assert.equal(inPartition.length % 3, 0, 'a send is never split across partitions');
      assert.deepEqual(inPartition.slice(0, 3).map((r) => r.value), sent.map(String));
    }
    assert.ok(byPartition.size > 1, 'keyless sends spread over the partitions');
  });

  it('kafka-acks=0 is refused, saying why; acks=1 ships without an idempotent producer', async () => {
    assert.throws(() => configureBackend(kafkaFactory, { 'kafka-brokers': mock.bootstrap, 'kafka-topic': 't', 'kafka-acks': '0' }), (err: Error) => {
      assert.ok(err instanceof InvalidOptionError);
      assert.match(err.message, /kafka-acks=0' is refused: .*never answers/);
      return true;
    });
    const topic = topicName('acks1');
    const { b } = backend({ 'kafka-topic': topic, 'kafka-acks': '1' });
    assert.deepEqual(await b.send(lines('a', 10), signal()), {});
    await b.close();
    assert.equal((await consumed(topic, 10)).length, 10);
  });

  it('a cluster unreachable: create connects to nothing, a send fails transient, then ships once it is back', async () => {
    await mock.proxy.downAll();
    const topic = topicName('down');
    let b: KafkaBackend;
    try {
      ({ b } = backend({ 'kafka-topic': topic }));
      await assert.rejects(b.send(lines('d', 5), signal()), (err: unknown) => isTransient(err));
    } finally {
      await mock.proxy.upAll();
    }
    assert.deepEqual(await b.send(lines('d', 5), signal()), {});
    await b.close();
    assert.deepEqual((await consumed(topic, 5)).map((r) => JSON.parse(r.value).log), lines('d', 5).map((l) => l.line.toString()));
  });

  it('a record over kafka-message-max-bytes, and a batch the broker calls too large: rejected and dead-lettered, the others delivered, nothing retried forever', async () => {
    const topic = topicName('large');
    const engine = new Engine({ 'kafka-topic': topic, 'kafka-format': 'raw', 'kafka-message-max-bytes': '64k' });
    // The broker's own limit, smaller than logship's (its message.max.bytes): a batch carrying the 30 KB line is refused.
    mock.proxy.refuseProduce = (sizes) => (sizes.some((s) => s > 20_000) ? 10 : null);
    const refusedBefore = mock.proxy.refusedProduces;
    try {
      const t = nowNano();
      engine.append([
        ...Array.from({ length: 20 }, (_, i) => ({ line: `small ${i + 1}`, timeNano: t + BigInt(i) })),
        { line: `over-ours ${'x'.repeat(70_000)}`, timeNano: t + 20n },
        { line: `over-the-broker's ${randomBytes(15_000).toString('hex')}`, timeNano: t + 21n },
        ...Array.from({ length: 20 }, (_, i) => ({ line: `small ${i + 21}`, timeNano: t + 22n + BigInt(i) })),
      ]);
      await engine.finish();
    } finally {
      mock.proxy.refuseProduce = null;
    }
    const records = await consumed(topic, 40);
    assert.deepEqual(records.map((r) => r.value), Array.from({ length: 40 }, (_, i) => `small ${i + 1}`));
    const letters = engine.deadLetters();
    assert.deepEqual(letters.map((l) => [l.line.split(' ')[0], l.code]), [['over-ours', 'too_large'], ["over-the-broker's", 'too_large']]);
    // Halving down to the line: a few refusals, not one per retry forever.
    const refused = mock.proxy.refusedProduces - refusedBefore;
    assert.ok(refused >= 1 && refused <= 12, `${refused} refused produce requests`);
  });

  it('a topic the cluster refuses this producer: every line rejected (unauthorized) and dead-lettered, no halving, a warning naming the topic and the ACL; delivered once granted', async () => {
    const topic = topicName('authz');
    const engine = new Engine({ 'kafka-topic': topic, 'kafka-format': 'raw' });
    mock.proxy.refuseProduce = () => 29; // TOPIC_AUTHORIZATION_FAILED
    const refusedBefore = mock.proxy.refusedProduces;
    const logged = await capturingStderr(async () => {
      try {
        engine.append(Array.from({ length: 30 }, (_, i) => ({ line: `refused ${i + 1}` })));
        await waitUntil(() => engine.deadLetters().length >= 30, '30 dead letters');
      } finally {
        mock.proxy.refuseProduce = null;
      }
    });
    const refused = mock.proxy.refusedProduces - refusedBefore;
    // One produce per batch the engine made of them, not one per half down to each line (some 60 for 30 lines).
    assert.ok(refused >= 1 && refused <= 3, `${refused} refused produce requests`);
    assert.deepEqual(engine.deadLetters().map((l) => [l.line, l.code]), Array.from({ length: 30 }, (_, i) => [`refused ${i + 1}`, 'unauthorized']));
    const warning = logged.map((l) => JSON.parse(l) as Record<string, string>).find((l) => l.msg?.includes('TOPIC_AUTHORIZATION_FAILED'));
    assert.ok(warning, logged.join(''));
    assert.equal(warning.topic, topic);
    assert.match(warning.acl!, new RegExp(`--operation Write --topic '${topic}'`));
    // Granted: the next lines go through.
    engine.append(Array.from({ length: 5 }, (_, i) => ({ line: `granted ${i + 1}` })));
    await engine.finish();
    assert.deepEqual((await consumed(topic, 5)).map((r) => r.value), Array.from({ length: 5 }, (_, i) => `granted ${i + 1}`));
  });

  it('a topic the principal may not even describe (TOPIC_AUTHORIZATION_FAILED in Metadata, before any produce): every line dead-lettered as unauthorized, no halving', async () => {
    const topic = topicName('authz-meta');
    const engine = new Engine({ 'kafka-topic': topic, 'kafka-format': 'raw' });
    mock.proxy.refuseTopics.add(topic);
    const refusedBefore = mock.proxy.refusedMetadata;
    try {
      engine.append(Array.from({ length: 30 }, (_, i) => ({ line: `m${i + 1}` })));
      await waitUntil(() => engine.deadLetters().length >= 30, '30 dead letters');
    } finally {
      mock.proxy.refuseTopics.delete(topic);
    }
    const refused = mock.proxy.refusedMetadata - refusedBefore;
    assert.ok(refused >= 1 && refused <= 6, `${refused} Metadata answers refused the topic`);
    assert.deepEqual(engine.deadLetters().map((l) => [l.line, l.code]), Array.from({ length: 30 }, (_, i) => [`m${i + 1}`, 'unauthorized']));
    engine.append([{ line: 'after the grant' }]);
    await engine.finish();
    assert.deepEqual((await consumed(topic, 1)).map((r) => r.value), ['after the grant']);
  });

  for (const [name, code] of [['NOT_LEADER_OR_FOLLOWER', 6], ['LEADER_NOT_AVAILABLE', 5], ['NOT_ENOUGH_REPLICAS', 19], ['NOT_ENOUGH_REPLICAS_AFTER_APPEND', 20], ['REQUEST_TIMED_OUT', 7]] as const) {
    it(`${name} from the broker five times: retried (the library's own retries, then the engine's), every line once, in order, nothing rejected`, async () => {
      const topic = topicName(`retry-${code}`);
      const engine = new Engine({ 'kafka-topic': topic, 'kafka-format': 'raw' });
      // Past the library's three retries within a send: the engine's retry is exercised too.
      let left = 5;
      mock.proxy.refuseProduce = () => (left-- > 0 ? code : null);
      try {
        engine.append(Array.from({ length: 20 }, (_, i) => ({ line: `r${i + 1}` })));
        await engine.finish();
      } finally {
        mock.proxy.refuseProduce = null;
      }
      assert.ok(left < 0, 'the broker refused five produce requests');
      assert.deepEqual((await consumed(topic, 20)).map((r) => r.value), Array.from({ length: 20 }, (_, i) => `r${i + 1}`));
      assert.deepEqual(engine.deadLetters(), []);
      assert.deepEqual(mock.proxy.sequenceFaults, [], 'every batch the sequence a broker expects');
    });
  }

  for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
    it(`SASL ${mechanism} from the plugin settings: every connection authenticated, delivered; a wrong password refused, retried (transient) with a warning, never quoted or logged`, async () => {
      const topic = topicName(`sasl-${mechanism.toLowerCase()}`);
      const right = `${mechanism}-right-secret`;
      const wrong = `${mechanism}-wrong-secret`;
      mock.proxy.sasl = { username: 'logship', password: right, mechanisms: [mechanism] };
      const logins = mock.proxy.saslLogins.length;
      const failures = mock.proxy.saslFailures;
      try {
        const logged = await capturingStderr(async () => {
          const b = saslBackend(mechanism, wrong, topic);
          await assert.rejects(b.send(lines('s', 3), signal()), (err: unknown) => {
            assert.ok(isTransient(err), String(err));
            assert.match((err as Error).message, /SASL authentication failed/);
            for (const text of [String(err), (err as Error).message, String((err as Error).cause ?? '')]) assert.ok(!text.includes(wrong), text);
            return true;
          });
          await b.close();
        });
        assert.ok(mock.proxy.saslFailures > failures, 'the broker refused the password');
        assert.equal(mock.proxy.saslLogins.length, logins, 'nobody logged in with it');
        // Rate-limited per process (10 s): the first of these tests logs it, the others are counted in its `suppressed`.
        if (mechanism === 'PLAIN') assert.ok(logged.some((l) => l.includes('SASL authentication failed; retrying')), logged.join('\n'));
        assert.ok(!logged.some((l) => l.includes(wrong) || l.includes(right)), 'a password in the log');

        const connections = mock.proxy.connections;
        const b = saslBackend(mechanism, right, topic);
        assert.deepEqual(await b.send(lines('s', 3), signal()), {});
        await b.close();
        const made = mock.proxy.connections - connections;
        assert.ok(made >= 1, 'through the proxy');
        assert.deepEqual(mock.proxy.saslLogins.slice(logins), Array.from({ length: made }, () => ({ username: 'logship', mechanism })), 'every connection authenticated');
      } finally {
        mock.proxy.sasl = null;
      }
      assert.equal((await consumed(topic, 3)).length, 3);
    });
  }

  it("the partition's leader gone for 10 s while 100,000 lines are written: all arrive, in order; copies counted", async () => {
    const topic = topicName('outage');
    const ctx = newContext();
    const engine = new Engine({ 'kafka-topic': topic, 'kafka-format': 'raw' }, ctx);
    const total = 100_000;
    const t = nowNano();
    const write = (from: number, to: number): void =>
      engine.append(Array.from({ length: to - from }, (_, i) => ({ line: `o${from + i}`, timeNano: t + BigInt(from + i) })));
    write(0, 5000);
    await consumed(topic, 1);
    const leader = (await mock.leaders(topic)).get((await mock.consume(topic))[0]!.partition)!;
    await mock.proxy.down(leader);
    const downAt = Date.now();
    let written = 5000;
    try {
      // The rest written during the outage, in steps, as a container prints them: the store takes them at once.
      while (written < total) {
        write(written, written + 5000);
        written += 5000;
        await sleep(400);
      }
      await sleep(Math.max(0, 10_000 - (Date.now() - downAt)));
    } finally {
      await mock.proxy.up(leader);
    }
    await engine.finish();
    const records = await consumed(topic, total, 120_000);
    assert.equal(new Set(records.map((r) => r.partition)).size, 1);
    const values = records.map((r) => Number(r.value.slice(1)));
    // In order: each line after the one before it, except where a batch went again after a lost answer.
    let copies = 0;
    let next = 0;
    for (const v of values) {
      if (v === next) next++;
      else if (v < next) copies++;
      else assert.fail(`line o${next} missing: o${v} came next`);
    }
    assert.equal(next, total, 'every line arrived');
    assert.deepEqual(engine.deadLetters(), []);
    // The mock stores a batch whatever its sequence: the proxy checks them as a broker does.
    assert.deepEqual(mock.proxy.sequenceFaults, [], 'every batch the sequence a broker expects');
    assert.ok(mock.proxy.laterSequencedBatches > 0, 'batches after a producer\'s first were checked');
    console.log(`# outage: ${total} lines, ${copies} copies (${records.length} records), leader was broker ${leader}`);
  });
});

describe('kafka over TLS: the proxy terminates it for every broker it advertises', () => {
  let material: TlsMaterial;
  let otherCa: TlsMaterial;
  const send = async (opts: Record<string, string>, what: string): Promise<string> => {
    const topic = topicName(what);
    const { b } = backend({ 'kafka-topic': topic, 'kafka-tls': 'true', ...opts });
    try {
      assert.deepEqual(await b.send(lines(what, 3), signal()), {});
    } finally {
      await b.close();
    }
    return topic;
  };
  const refused = async (opts: Record<string, string>, why: RegExp): Promise<void> => {
    const { b } = backend({ 'kafka-topic': topicName('refused'), 'kafka-tls': 'true', ...opts });
    try {
      await assert.rejects(b.send(lines('x', 1), signal()), (err: unknown) => {
        assert.ok(isTransient(err), String(err));
        assert.match((err as Error).message, why);
        return true;
      });
    } finally {
      await b.close();
    }
  };

  before(async () => {
    material = makeTlsMaterial(path.join(dir, 'tls'));
    otherCa = makeTlsMaterial(path.join(dir, 'other-ca'));
    await mock.proxy.useTls(material);
  });

  after(() => mock.proxy.useTls(null));

  it('kafka-tls with kafka-tls-ca-cert delivers, through the proxy', async () => {
    const connections = mock.proxy.connections;
    const topic = await send({ 'kafka-tls-ca-cert': material.ca }, 'tls');
    assert.ok(mock.proxy.connections > connections, 'over the TLS listeners');
    assert.equal((await consumed(topic, 3)).length, 3);
  });

  it("the wrong CA: refused, transient, saying the certificate did not verify; kafka-tls-skip-verify=true then delivers", async () => {
    await refused({ 'kafka-tls-ca-cert': otherCa.ca }, /the broker's TLS certificate did not verify \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE): /);
    // Without a CA option the system's CAs, which know nothing of the test CA, either.
    await refused({}, /the broker's TLS certificate did not verify \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE): /);
    const topic = await send({ 'kafka-tls-ca-cert': otherCa.ca, 'kafka-tls-skip-verify': 'true' }, 'skip');
    assert.equal((await consumed(topic, 3)).length, 3);
  });

  it('a broker that requires a client certificate: delivers with kafka-tls-cert and -key; without them refused, transient, never a crash', async () => {
    await mock.proxy.useTls({ ...material, requireClientCert: true });
    try {
      const failures = mock.proxy.tlsClientErrors;
      await refused({ 'kafka-tls-ca-cert': material.ca }, /the broker ended the TLS handshake \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED; does it require a client certificate, kafka-tls-cert and kafka-tls-key\?\)/);
      assert.ok(mock.proxy.tlsClientErrors > failures, 'the proxy refused the handshake');
      const topic = await send({ 'kafka-tls-ca-cert': material.ca, 'kafka-tls-cert': material.cert, 'kafka-tls-key': material.key }, 'mtls');
      assert.equal((await consumed(topic, 3)).length, 3);
    } finally {
      await mock.proxy.useTls(material);
    }
  });

  it('TLS and SASL SCRAM-SHA-512 together: every connection authenticated, delivered', async () => {
    const topic = topicName('tls-scram');
    mock.proxy.sasl = { username: 'logship', password: 'tls-scram-secret', mechanisms: ['SCRAM-SHA-512'] };
    const logins = mock.proxy.saslLogins.length;
    const connections = mock.proxy.connections;
    try {
      const b = saslBackend('SCRAM-SHA-512', 'tls-scram-secret', topic, { 'kafka-tls': 'true', 'kafka-tls-ca-cert': material.ca });
      assert.deepEqual(await b.send(lines('ts', 3), signal()), {});
      await b.close();
    } finally {
      mock.proxy.sasl = null;
    }
    const made = mock.proxy.connections - connections;
    assert.ok(made >= 1);
    assert.deepEqual(mock.proxy.saslLogins.slice(logins), Array.from({ length: made }, () => ({ username: 'logship', mechanism: 'SCRAM-SHA-512' })));
    assert.equal((await consumed(topic, 3)).length, 3);
  });
});
