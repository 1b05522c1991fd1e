import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as lib from '@platformatic/kafka';
import { KafkaEncoder, RECORD_OVERHEAD, brokerErrors, classifyError, kafkaFactory, refusedTopic } from '../../src/backends/kafka.ts';
import { encodeRecordBatch } from '../../src/backends/kafka-produce.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { context, line } from './backend-context.ts';

const BROKERS = { 'kafka-brokers': 'k1:9092,[::1]:9093', 'kafka-topic': 'logs' };
const env = (vars: Record<string, string>) => ({ proxy: { httpProxy: '', httpsProxy: '', noProxy: '' }, env: vars });
const configure = (opts: Record<string, string>, vars: Record<string, string> = {}) => configureBackend(kafkaFactory, { ...BROKERS, ...opts }, env(vars));
const refused = (opts: Record<string, string>, pattern: RegExp, vars: Record<string, string> = {}) =>
  assert.throws(() => configure(opts, vars), (err: Error) => err instanceof InvalidOptionError && pattern.test(err.message));
const encoder = (opts: Record<string, string> = {}, ctx = context()) => new KafkaEncoder(configure(opts), ctx);
const headersOf = (h: [Buffer | null, Buffer | null][]) => Object.fromEntries(h.map(([k, v]) => [k!.toString(), v!.toString()]));

/** A line's record as the broker gets it: written by the encoder into a record batch, read back by the library's reader. */
function recordOf(e: KafkaEncoder, l: OutgoingLine) {
  const records = e.records([l]);
  const batch = lib.readRecordsBatch(lib.Reader.from(encodeRecordBatch(lib, records.request([0]), e.topic, 0, { compression: 'none' }) as Buffer));
  const r = batch.records[0]!;
  return { value: r.value!, key: r.key, headers: r.headers, timestamp: batch.firstTimestamp + r.timestampDelta, size: records.size(0) };
}

/** A library error as @platformatic/kafka builds them: aggregated, the broker's code as apiId. */
function libraryError(apiId: string): Error {
  const protocol = Object.assign(new Error('from the broker'), { code: 'PLT_KFK_PROTOCOL', apiId });
  const response = Object.assign(new AggregateError([protocol], 'Received response with error'), { code: 'PLT_KFK_RESPONSE' });
  return Object.assign(new AggregateError([response], 'Producing messages failed.'), { code: 'PLT_KFK_MULTIPLE' });
}

describe('kafka options', () => {
  it('defaults: acks all (idempotent), lz4, key the full id, json, 1 MB records, no TLS, no SASL', () => {
    const config = configure({});
    assert.deepEqual(config.brokers, ['k1:9092', '[::1]:9093']);
    assert.equal(config.acks, 'all');
    assert.equal(config.compression, 'lz4');
    assert.equal(config.format, 'json');
    assert.equal(config.clientId, 'logship');
    assert.equal(config.messageMaxBytes, 1_000_000);
    assert.equal(config.key.source, '{{.FullID}}');
    assert.equal(config.tls, null);
    assert.equal(config.sasl, null);
  });

  it('brokers and topic are required; a broker must be host:port', () => {
    assert.throws(() => configureBackend(kafkaFactory, { 'kafka-topic': 't' }), /must specify a value for log opt 'kafka-brokers'/);
    assert.throws(() => configureBackend(kafkaFactory, { 'kafka-brokers': 'k:1' }), /must specify a value for log opt 'kafka-topic'/);
    refused({ 'kafka-brokers': 'k1:9092,k2' }, /'k2' is not host:port/);
    refused({ 'kafka-brokers': 'k1:9092,' }, /'' is not host:port/);
    refused({ 'kafka-brokers': 'k1:99999' }, /not host:port/);
  });

  it('templates are checked when the options are: an unknown field fails docker run', () => {
    refused({ 'kafka-topic': 'logs-{{.Nope}}' }, /invalid template .* for log opt 'kafka-topic': can't evaluate field Nope/);
    refused({ 'kafka-key': '{{.Name' }, /log opt 'kafka-key': unclosed action/);
  });

  it("acks=0 is refused, saying why; '1' and 'all' are taken", () => {
    refused({ 'kafka-acks': '0' }, /'kafka-acks=0' is refused: with acks=0 the broker never answers/);
    refused({ 'kafka-acks': '2' }, /expected all or 1/);
    assert.equal(configure({ 'kafka-acks': '1' }).acks, '1');
    assert.equal(configure({ 'kafka-acks': '-1' }).acks, 'all');
  });

  it('compression is one the library has; the record limit within bounds', () => {
    refused({ 'kafka-compression': 'brotli' }, /expected none, gzip, snappy, lz4 or zstd/);
    refused({ 'kafka-message-max-bytes': '100' }, /from 1k to 100m/);
    assert.equal(configure({ 'kafka-message-max-bytes': '64k' }).messageMaxBytes, 64_000);
  });

  it('TLS: the files read at docker run; TLS options without kafka-tls refused', () => {
    refused({ 'kafka-tls-skip-verify': 'true' }, /'kafka-tls-skip-verify' is set, but 'kafka-tls' is not true/);
    refused({ 'kafka-tls': 'true', 'kafka-tls-ca-cert': '/nonexistent/ca.pem' }, /cannot read the file of log opt 'kafka-tls-ca-cert'/);
    assert.deepEqual(configure({ 'kafka-tls': 'true', 'kafka-tls-skip-verify': 'true' }).tls, { rejectUnauthorized: false });
  });

  it('SASL from the plugin settings only, never quoting the password', () => {
    const sasl = { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'shipper', KAFKA_SASL_PASSWORD: 'hunter2-kafka' };
    assert.deepEqual(configure({}, sasl).sasl, { mechanism: 'SCRAM-SHA-512', username: 'shipper', password: 'hunter2-kafka' });
    refused({}, /KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/, { KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u' });
    refused({}, /need KAFKA_SASL_MECHANISM/, { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'hunter2-kafka' });
    assert.throws(() => configure({}, { ...sasl, KAFKA_SASL_MECHANISM: 'GSSAPI' }), (err: Error) => /KAFKA_SASL_MECHANISM/.test(err.message) && !err.message.includes('hunter2'));
    assert.ok(!kafkaFactory.options.some((o) => /sasl|password/i.test(o.key)), 'no credential is a log-opt');
    assert.ok(kafkaFactory.settings!.find((s) => s.key === 'KAFKA_SASL_PASSWORD')!.secret);
  });
});

describe('kafka records', () => {
  const ctx = context({ id: 'c0ffee'.padEnd(64, '0'), name: 'web-1', attributes: [['app', 'shop'], ['E1', 'xyz']] });

  it("json: the fluentd driver's fields, the line as Go marshals it; headers; the line's time in ms", () => {
    const e = encoder({}, ctx);
    const record = recordOf(e, line('hé <b>\u0000', 'stderr', '2026-11-21T23:06:40.123Z', 456_789));
    assert.equal(
      record.value.toString(),
      `{"source":"stderr","log":"hé \\u003cb\\u003e\\u0000","container_id":"${ctx.id}","container_name":"/web-1","app":"shop","E1":"xyz"}`,
    );
    assert.deepEqual(headersOf(record.headers), { container_id: ctx.id, container_name: 'web-1', app: 'shop', E1: 'xyz', source: 'stderr' });
    assert.equal(record.timestamp, BigInt(Date.parse('2026-11-21T23:06:40.123Z')));
    assert.equal(record.key!.toString(), ctx.id);
    assert.equal(e.key!.toString(), ctx.id);
    assert.equal(e.topic, 'logs');
  });

  it('json: bytes that are not UTF-8 as U+FFFD, partial metadata as the fluentd driver sends it, parse-json fields beside (ours win)', () => {
    const e = encoder({}, context({ id: 'a'.repeat(64), name: 'n' }));
    const bad = recordOf(e, { ...line(Buffer.from([0x61, 0xff, 0x62]), 'stdout', '2026-01-01T00:00:00Z'), partial: { id: 'p1', ordinal: 2, last: true } });
    assert.deepEqual(JSON.parse(bad.value.toString()), {
      source: 'stdout',
      log: 'a\ufffdb',
      partial_message: 'true',
      partial_id: 'p1',
      partial_ordinal: '2',
      partial_last: 'true',
      container_id: 'a'.repeat(64),
      container_name: '/n',
    });
    const parsed = recordOf(e, { ...line('{"level":"warn","log":"x"}', 'stdout', '2026-01-01T00:00:00Z'), fields: { level: 'warn', log: 'x', n: 3 } });
    assert.deepEqual(JSON.parse(parsed.value.toString()), { source: 'stdout', log: '{"level":"warn","log":"x"}', level: 'warn', n: 3, container_id: 'a'.repeat(64), container_name: '/n' });
  });

  it('json: a line written from its bytes is the record the general path writes, byte for byte', () => {
    const e = encoder({}, ctx);
    const general = (l: OutgoingLine) => Buffer.from((e as unknown as { json(l: OutgoingLine): string }).json(l));
    const lines = [
      ...Array.from({ length: 256 }, (_, c) => Buffer.from([0x61, c, 0x62])),
      Buffer.from('plain text 123 {"k": [1, 2]} it\'s'),
      Buffer.from(''),
      Buffer.from('é ü \u2028 \ud83d\ude00 <tag> a&b "q" back\\slash tab\t'),
      Buffer.from([0xe2, 0x80, 0xa8, 0xc3, 0x28, 0xf0, 0x9f, 0x98]),
    ];
    for (const bytes of lines) {
      for (const source of ['stdout', 'stderr'] as const) {
        const l = line(bytes, source, '2026-01-01T00:00:00Z');
        assert.deepEqual(recordOf(e, l).value, general(l), bytes.toString('hex'));
      }
    }
    // Lines of every length to 4 KB, lengths whose value's size takes one more varint byte
    // (64 and 8,192 bytes of value) and longer lines, each twice, from both streams, as one send.
    const lengths = [...Array.from({ length: 4100 }, (_, n) => n), ...Array.from({ length: 200 }, (_, n) => 8050 + n), 9000, 20_000];
    const all = [...lengths, ...lengths].flatMap((n, k) => [line(Buffer.from('x'.repeat(n)), k % 2 === 0 ? 'stdout' : 'stderr', '2026-01-01T00:00:00Z')]);
    const records = e.records(all);
    const batch = lib.readRecordsBatch(lib.Reader.from(encodeRecordBatch(lib, records.request(all.map((_, k) => k)), e.topic, 0, { compression: 'none' }) as Buffer));
    assert.equal(batch.records.length, all.length);
    batch.records.forEach((r, k) => {
      assert.ok(r.key!.equals(e.key!));
      assert.ok(r.value!.equals(general(all[k]!)), `a line of ${all[k]!.line.length} bytes`);
      assert.equal(headersOf(r.headers).source, all[k]!.source);
    });
  });

  it("each record's time is its line's in whole ms, however the lines' times go (same ms, across one, back, before 1970)", () => {
    const e = encoder({}, ctx);
    const base = BigInt(Date.parse('2026-01-01T00:00:00Z')) * 1_000_000n;
    const times = [base, base + 999_999n, base + 1_000_000n, base + 1_000_001n, base - 1n, base + 5_500_000n, base + 5_999_999n, -1_500_000n, -500_000n, -1n, 0n, 999_999n];
    const records = e.records(times.map((timeNano) => ({ source: 'stdout', timeNano, line: Buffer.from('x') })));
    assert.deepEqual(
      times.map((_, i) => records.timestampMs(i)),
      times.map((t) => Number(t / 1_000_000n)),
    );
  });

  it('an attribute named source or log replaces that field, as in the fluentd driver', () => {
    const e = encoder({}, context({ id: 'b'.repeat(64), name: 'n', attributes: [['source', 'label'], ['log', 'l']] }));
    assert.deepEqual(JSON.parse(recordOf(e, line('text', 'stdout', '2026-01-01T00:00:00Z')).value.toString()), { container_id: 'b'.repeat(64), container_name: '/n', source: 'label', log: 'l' });
  });

  it('raw: the line as it is, bytes unchanged', () => {
    const bytes = Buffer.from([0x00, 0xff, 0x0a, 0x7b]);
    assert.deepEqual(recordOf(encoder({ 'kafka-format': 'raw' }, ctx), line(bytes, 'stdout', '2026-01-01T00:00:00Z')).value, bytes);
  });

  it("topic and key templates run on the container's info; an empty key is no key", () => {
    const c = context({ name: 'api', info: { ...context().info, name: '/api', labels: { team: 'pay' } } });
    const e = encoder({ 'kafka-topic': 'logs-{{.Name}}-{{.ContainerLabels.team}}', 'kafka-key': '{{.Name}}' }, c);
    assert.equal(e.topic, 'logs-api-pay');
    assert.equal(e.key!.toString(), 'api');
    assert.equal(encoder({ 'kafka-key': '' }, c).key, undefined);
  });

  it('a topic the template makes invalid fails the container, saying why', () => {
    const c = context({ info: { ...context().info, name: '/has space' } });
    assert.throws(() => encoder({ 'kafka-topic': 'logs {{.Name}}' }, c), /gives 'logs has space' for this container, which is not a valid topic name: it may have only/);
    assert.throws(() => encoder({ 'kafka-topic': '{{.ContainerLabels.none}}' }), /not a valid topic name: it is empty/);
  });

  it('size counts value, key and headers: a record over the limit is refused before it is sent', async () => {
    const e = encoder({}, ctx);
    const r = recordOf(e, line('x'.repeat(100), 'stdout', '2026-01-01T00:00:00Z'));
    const headerBytes = r.headers.reduce((n, [k, v]) => n + k!.length + v!.length, 0);
    assert.equal(r.size, r.value.length + 64 + headerBytes);
    const config = configure({ 'kafka-message-max-bytes': '2k', 'kafka-format': 'raw' });
    const backend = kafkaFactory.create(config, ctx);
    // One byte over: with the record's framing, key and headers it exceeds 2,000 bytes.
    const over = 2000 - RECORD_OVERHEAD - (r.size - r.value.length) + 1;
    // No broker at k1: a send of only refused lines resolves without the network.
    const result = await backend.send([line('y'.repeat(over), 'stdout', '2026-01-01T00:00:00Z')], new AbortController().signal);
    assert.deepEqual(result.rejected?.map((x) => [x.index, x.code]), [[0, 'too_large']]);
    await backend.close();
  });
});

describe('kafka errors', () => {
  it("the broker's codes found through aggregated errors and causes", () => {
    assert.deepEqual([...brokerErrors(libraryError('NOT_LEADER_OR_FOLLOWER'))], ['NOT_LEADER_OR_FOLLOWER']);
    assert.deepEqual([...brokerErrors(new Error('x', { cause: libraryError('NOT_ENOUGH_REPLICAS') }))], ['NOT_ENOUGH_REPLICAS']);
  });

  it('too large, invalid and a refused topic: not transient, with the code the engine rejects the line with', () => {
    for (const [code, reject] of [['MESSAGE_TOO_LARGE', 'too_large'], ['RECORD_LIST_TOO_LARGE', 'too_large'], ['INVALID_RECORD', 'invalid'], ['CORRUPT_MESSAGE', 'invalid'], ['TOPIC_AUTHORIZATION_FAILED', 'unauthorized']] as const) {
      const err = classifyError(libraryError(code), 't', null);
      assert.equal(err.transient, false, code);
      assert.equal(err.rejectCode, reject);
    }
  });

  it('a refused topic: every line of the batch rejected as unauthorized, none halved', () => {
    const err = classifyError(libraryError('TOPIC_AUTHORIZATION_FAILED'), 't', null);
    assert.deepEqual(refusedTopic(err, [0, 1, 2])?.rejected?.map((r) => [r.index, r.code]), [[0, 'unauthorized'], [1, 'unauthorized'], [2, 'unauthorized']]);
    assert.equal(refusedTopic(classifyError(libraryError('MESSAGE_TOO_LARGE'), 't', null), [0]), null);
  });

  it('leader moved, not enough replicas, timeouts, the network, an unknown topic or SASL: transient', () => {
    for (const code of ['NOT_LEADER_OR_FOLLOWER', 'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION', 'SASL_AUTHENTICATION_FAILED']) {
      assert.equal(classifyError(libraryError(code), 't', null).transient, true, code);
    }
    assert.equal(classifyError(Object.assign(new Error('Connection failed'), { code: 'PLT_KFK_NETWORK' }), 't', null).transient, true);
  });

  it("TLS: a certificate that did not verify, found in the causes, and the broker's alert, found in the connection's socket error: transient, saying which", () => {
    const closed = Object.assign(new AggregateError([Object.assign(new Error('Connection closed'), { code: 'PLT_KFK_NETWORK' })], 'listApis failed'), { code: 'PLT_KFK_MULTIPLE' });
    const unverified = Object.assign(new Error('Connection failed', { cause: Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }) }), { code: 'PLT_KFK_NETWORK' });
    const cert = classifyError(unverified, 't', null);
    assert.equal(cert.transient, true);
    assert.match(cert.message, /the broker's TLS certificate did not verify \(SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain\)/);
    const alert = Object.assign(new Error('tlsv13 alert certificate required'), { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
    const handshake = classifyError(closed, 't', null, new Error('Connection error', { cause: alert }));
    assert.equal(handshake.transient, true);
    assert.match(handshake.message, /the broker ended the TLS handshake \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED; does it require a client certificate/);
    // A socket error that is not TLS's says nothing more.
    assert.doesNotMatch(classifyError(closed, 't', null, Object.assign(new Error('reset'), { code: 'ECONNRESET' })).message, /TLS/);
  });

  it('a message never holds the SASL password', () => {
    const err = classifyError(Object.assign(new Error('auth as user:s3cret-pw failed'), { code: 'PLT_KFK_AUTHENTICATION' }), 't', { mechanism: 'PLAIN', username: 'user', password: 's3cret-pw' });
    assert.ok(!err.message.includes('s3cret-pw'), err.message);
    assert.equal(err.transient, true);
  });
});
