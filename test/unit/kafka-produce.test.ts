import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lib from '@platformatic/kafka';
import type { MessageRecord } from '@platformatic/kafka';
import {
  type ProduceArgs,
  type RecordSource,
  createProducer,
  encodeProduceRequest,
  encodeRecordBatch,
  kafkaBytes,
  kafkaHeaders,
  RecordSequences,
  prepareMessages,
  produceModules,
} from '../../src/backends/kafka-produce.ts';

const b = (text: string): Buffer => Buffer.from(text);
const T = 1_760_000_000_000n;
const VERSIONS = [3, 4, 5, 6, 7, 8, 9, 10, 11] as const;
const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
type Module = { createRequest: (...args: ProduceArgs) => lib.Writer; createRequestAsync?: (...args: ProduceArgs) => Promise<lib.Writer> };
const MODULES = produceModules(lib) as Record<(typeof VERSIONS)[number], Module>;

/**
 * Records that reach every branch of the encoding: no key and an empty value, values and
 * headers long enough for 2- and 3-byte varints, a header without a value, a time before the
 * batch's first and one far after it, more than 64 records (2-byte offset deltas), all to
 * one partition of one topic (as the backend sends them).
 * `farMs`: how far after; the library encodes a delta of 2^31 ms or more wrong (below).
 */
function messages(farMs = 2_000_000_000n, topic = 'logs', partition = 1): MessageRecord[] {
  const headers = new Map([
    [b('container_id'), b('c'.repeat(64))],
    [b('container_name'), b('web')],
    [b('source'), b('stdout')],
  ]);
  const out: MessageRecord[] = [];
  for (let i = 0; i < 150; i++) {
    const value = i === 5 ? Buffer.alloc(0) : i === 6 ? b('x'.repeat(20_000)) : b(`{"log":"line ${i}"}`);
    const timestamp = i === 9 ? T - 5_000n : i === 10 ? T + farMs : T + BigInt(i);
    const message: MessageRecord = { topic, partition, value, timestamp, headers: i === 11 ? new Map([[b('empty'), null as unknown as Buffer]]) : headers };
    if (i !== 4) message.key = b('k'.repeat(i === 7 ? 200 : 64));
    out.push(message);
  }
  return out;
}

const copy = (ms: MessageRecord[]): MessageRecord[] => ms.map((m) => ({ ...m }));

async function waitFor(done: () => boolean, ms = 5000): Promise<void> {
  for (const until = Date.now() + ms; !done(); await sleep(5)) if (Date.now() > until) throw new Error('timed out');
}

/** The messages as a RecordSource: each record's key, value and headers as kafka-produce.ts's own helpers write them. */
function sourceOf(ms: MessageRecord[]): RecordSource {
  const bodies = ms.map((m) => Buffer.concat([kafkaBytes(m.key), kafkaBytes(m.value), kafkaHeaders(m.headers)]));
  return {
    count: ms.length,
    timestampMs: (i) => Number(ms[i]!.timestamp),
    bodySize: (i) => bodies[i]!.length,
    writeBody: (i, buf, pos) => pos + bodies[i]!.copy(buf, pos),
  };
}

/** Our request for the messages (one topic, one partition), as the Produce API writes it. */
async function ours(version: number, ...[acks = 1, timeout = 0, ms, options = {}]: ProduceArgs): Promise<lib.Writer> {
  const { topic, partition } = ms[0]!;
  const batch = await encodeRecordBatch(lib, sourceOf(ms), topic, partition!, options);
  return encodeProduceRequest(lib, version, acks, timeout, topic, partition!, batch, options.transactionalId);
}

async function library(version: (typeof VERSIONS)[number], ...[acks, timeout, ms, options]: ProduceArgs): Promise<Buffer> {
  const module = MODULES[version];
  const writer = options?.compression === 'gzip' && module.createRequestAsync ? await module.createRequestAsync(acks, timeout, ms, options) : module.createRequest(acks, timeout, ms, options);
  return writer.buffer;
}

/** One producer's Produce API of `version`: the request it writes for arguments (a connection that only takes the payload). */
async function producerApi(version: number): Promise<(...args: ProduceArgs) => Promise<lib.Writer>> {
  const producer = createProducer(lib, { clientId: 't', bootstrapBrokers: ['localhost:1'] });
  (producer as unknown as Record<symbol, unknown>)[lib.kListApis] = (callback: (err: null, apis: unknown[]) => void) => callback(null, [{ name: 'Produce', minVersion: 3, maxVersion: version }]);
  const api = await new Promise<lib.API<unknown[], unknown>>((resolve, reject) => producer[lib.kGetApi]('Produce', (err, api) => (err ? reject(err) : resolve(api!))));
  await producer.close(true);
  return async (...args) => {
    let payload!: () => lib.Writer | Promise<lib.Writer>;
    const connection = { send: (_key: number, _version: number, create: typeof payload) => (payload = create) };
    api(connection as unknown as lib.Connection, ...args);
    return payload();
  };
}

describe('kafka produce requests', () => {
  for (const version of VERSIONS) {
    it(`v${version}: the library's request byte for byte, every compression, with sequences and a producer id`, async () => {
      for (const compression of COMPRESSIONS) {
        const sequences = new lib.NumericMap();
        sequences.set('logs:1', 41);
        sequences.set('2024:0', 7);
        const options = { compression, producerId: 123_456_789n, producerEpoch: 3, sequences };
        const request = await ours(version, -1, 30_000, copy(messages()), options);
        const theirs = await library(version, -1, 30_000, copy(messages()), options);
        assert.equal(request.length, theirs.length, `${compression}: length`);
        assert.ok(request.buffer.equals(theirs), `v${version} ${compression}: the bytes differ`);
      }
    });
  }

  it('no options, a transactional id, acks 0 (no response expected): as the library', async () => {
    for (const [acks, options] of [
      [1, undefined],
      [-1, { transactionalId: 'tx-1', compression: 'none' as const, producerId: 5n, producerEpoch: 0 }],
      [0, { compression: 'lz4' as const }],
    ] as const) {
      for (const version of [7, 11] as const) {
        const request = await ours(version, acks, 1000, copy(messages()), options);
        const theirs = await library(version, acks, 1000, copy(messages()), options);
        assert.ok(request.buffer.equals(theirs), `v${version} acks ${acks}: the bytes differ`);
        assert.equal(request.context.noResponse, acks === 0 ? true : undefined);
      }
    }
  });

  it('a batch the library reads back: records, keys, headers, times and the CRC', async () => {
    const ms = messages();
    const request = await ours(7, -1, 0, copy(ms), { compression: 'none' });
    // v7: transactional id (-1), acks, timeout, 1 topic, its name, 1 partition, index, records' length.
    const reader = lib.Reader.from(request.buffer.subarray(2 + 2 + 4 + 4 + 2 + 4 + 4 + 4 + 4));
    const batch = lib.readRecordsBatch(reader);
    assert.equal(batch.records.length, ms.length);
    const crc = lib.crc32c(request.buffer.subarray(request.buffer.length - (batch.length - 9)));
    assert.equal(batch.crc, crc);
    batch.records.forEach((r, i) => {
      assert.ok(r.value?.equals(ms[i]!.value));
      assert.equal(r.key?.length ?? -1, ms[i]!.key?.length ?? -1);
      assert.equal(batch.firstTimestamp + r.timestampDelta, ms[i]!.timestamp);
      assert.equal(r.headers.length, ms[i]!.headers!.size);
    });
  });

  it('a time 2^31 ms or more after the batch\'s first: a varlong, as Kafka\'s own client writes it (the library\'s is not)', async () => {
    // @platformatic/dynamic-buffer 0.3.1 zigzags a varlong with `>> 31n` (Kafka: `>> 63`) and
    // sizes it with a 32-bit mask, so a record ~25 days after its batch's first would get a
    // wrong time: a quiet container's next line, or lines the store kept through an outage.
    const far = 3_000_000_000n;
    const ms = messages(far);
    const request = await ours(7, -1, 0, copy(ms), { compression: 'none' });
    const theirs = await library(7, -1, 0, copy(ms), { compression: 'none' });
    assert.ok(!request.buffer.equals(theirs));
    const batch = lib.readRecordsBatch(lib.Reader.from(request.buffer.subarray(2 + 2 + 4 + 4 + 2 + 4 + 4 + 4 + 4)));
    batch.records.forEach((r, i) => assert.equal(batch.firstTimestamp + r.timestampDelta, ms[i]!.timestamp));
    const i = ms.findIndex((m) => m.timestamp === T + far);
    assert.ok(i > 0);
    // zigzag(3e9 - first's offset) as 7-bit groups, least first: Java's ByteUtils.writeVarlong.
    let z = (far - (ms[0]!.timestamp! - T)) * 2n;
    const expected: number[] = [];
    for (; z >= 0x80n; z >>= 7n) expected.push(Number(z & 0x7fn) | 0x80);
    expected.push(Number(z));
    assert.ok(request.buffer.includes(Buffer.from(expected)));
  });

  it("the producer's Produce API writes prepareMessages' records, the library's bytes, to the partition the library gives them; other messages fail the request", async () => {
    const ms = messages(undefined, '2024', 0);
    for (const version of [7, 11] as const) {
      const api = await producerApi(version);
      // The library gives the API its copy of the message, the partition taken modulo the topic's.
      const placeholders = (): MessageRecord[] => prepareMessages(sourceOf(ms), '2024', 5).map((m) => ({ ...m, partition: 2 })) as MessageRecord[];
      assert.equal(placeholders().length, 1);
      // The library's counter numbers requests (one message each); the batch's first sequence counts the records before it.
      const sent = async (producerId: bigint, request: number): Promise<Buffer> =>
        (await api(-1, 1000, placeholders(), { compression: 'lz4', producerId, producerEpoch: 1, sequences: new lib.NumericMap([['2024:2', request]]) })).buffer;
      const theirs = (producerId: bigint, sequence: number): Promise<Buffer> =>
        library(version, -1, 1000, ms.map((m) => ({ ...m, partition: 2 })), { compression: 'lz4', producerId, producerEpoch: 1, sequences: new lib.NumericMap([['2024:2', sequence]]) });
      for (const [producerId, request, sequence] of [
        [77n, 0, 0],
        [77n, 1, 150],
        [77n, 1, 150], // the library retrying request 1: the same records, the same sequence
        [77n, 2, 300],
        [78n, 0, 0], // a new producer id after a failed send: from 0 again
        [78n, 1, 150],
      ] as const) {
        assert.ok((await sent(producerId, request)).equals(await theirs(producerId, sequence)), `v${version}: producer ${producerId} request ${request}: the bytes differ from the library's with sequence ${sequence}`);
      }
      // A number that follows no request sent: its sequence cannot be known, so the request fails.
      await assert.rejects(() => sent(78n, 3), /cannot be known/);
      await assert.rejects(() => sent(79n, 1), /cannot be known/);
      await assert.rejects(async () => api(-1, 1000, copy(ms), {}), /not from prepareMessages/);
      await assert.rejects(async () => api(-1, 1000, [...placeholders(), ...placeholders()], {}), /not from prepareMessages/);
      // acks=1: no producer id, no sequences.
      assert.ok((await api(1, 1000, placeholders(), { compression: 'none' })).buffer.equals(await library(version, 1, 1000, ms.map((m) => ({ ...m, partition: 2 })), { compression: 'none' })));
    }
  });

  it("an uncompressed batch in the scratch Buffer: the library's connection copies it at once, so a broker gets the request's bytes though the next batch overwrites them", async () => {
    const ms = messages(undefined, 'logs', 1);
    const frames: Buffer[] = [];
    const server = net.createServer((socket) => socket.on('data', (chunk: Buffer) => frames.push(chunk)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const connection = new lib.Connection('t');
    try {
      await connection.connect('127.0.0.1', (server.address() as net.AddressInfo).port);
      const api = lib.produceV7.api;
      const ourApi = await new Promise<lib.API<unknown[], unknown>>((resolve, reject) => {
        const producer = createProducer(lib, { clientId: 't', bootstrapBrokers: ['localhost:1'] });
        (producer as unknown as Record<symbol, unknown>)[lib.kListApis] = (callback: (err: null, apis: unknown[]) => void) => callback(null, [{ name: 'Produce', minVersion: 3, maxVersion: 7 }]);
        producer[lib.kGetApi]('Produce', (err, found) => (err ? reject(err) : resolve(found!)));
        void producer.close(true);
      });
      assert.notEqual(ourApi, api);
      ourApi(connection, 0, 1000, prepareMessages(sourceOf(ms), 'logs', 1), { compression: 'none' });
      // The next batch, written over the scratch before the first request reaches the socket.
      const other = messages(undefined, 'other', 3).map((m) => ({ ...m, value: b('overwritten') }));
      const overwritten = (await encodeRecordBatch(lib, sourceOf(other), 'other', 3, { compression: 'none' })).subarray(0, 1);
      // The same memory as the first batch: a batch of those messages now would be written there too.
      const again = await encodeRecordBatch(lib, sourceOf(ms), 'logs', 1, { compression: 'none' });
      assert.ok(again.buffer === overwritten.buffer && again.byteOffset === overwritten.byteOffset, 'batches share the scratch');
      await encodeRecordBatch(lib, sourceOf(other), 'other', 3, { compression: 'none' });
      const expected = await library(7, 0, 1000, copy(ms), { compression: 'none' });
      await waitFor(() => Buffer.concat(frames).length >= 4 + 2 + 2 + 4 + 2 + 1 + expected.length);
      const frame = Buffer.concat(frames);
      // Size, then request header v1: api key, version, correlation id, client id 't'.
      assert.equal(frame.readInt32BE(0), frame.length - 4);
      assert.ok(frame.subarray(4 + 2 + 2 + 4 + 2 + 1).equals(expected), 'the broker got other bytes than the request');
    } finally {
      await connection.close();
      server.close();
    }
  });

  it('record sequences: a retry keeps its first, a retry of other records fails, past 2^31 - 1 they wrap to 0 as Kafka\'s do', () => {
    const sequences = new RecordSequences();
    assert.equal(sequences.first('t:0', 1n, 0, 0, 2 ** 31 - 10), 0);
    assert.equal(sequences.first('t:1', 1n, 0, 0, 5), 0);
    assert.equal(sequences.first('t:0', 1n, 0, 1, 20), 2 ** 31 - 10);
    assert.equal(sequences.first('t:0', 1n, 0, 2, 1), 10);
    assert.equal(sequences.first('t:1', 1n, 0, 1, 5), 5);
    assert.throws(() => sequences.first('t:1', 1n, 0, 1, 6), /retried with 6 records, sent with 5/);
    // Another epoch of the same id is another producer.
    assert.throws(() => sequences.first('t:1', 1n, 1, 2, 5), /cannot be known/);
    assert.equal(sequences.first('t:1', 1n, 1, 0, 5), 0);
  });

  it("a producer's Produce API is ours for every version this file knows, the library's for others", async () => {
    const producer = createProducer(lib, { clientId: 't', bootstrapBrokers: ['localhost:1'] });
    const seen: Array<{ name: string; version: number }> = [];
    // The versions a broker says it speaks (its ApiVersions answer): what kGetApi chooses from.
    (producer as unknown as Record<symbol, unknown>)[lib.kListApis] = (callback: (err: null, apis: unknown[]) => void) =>
      callback(null, [
        { name: 'Produce', minVersion: 3, maxVersion: 7 },
        { name: 'Metadata', minVersion: 0, maxVersion: 12 },
      ]);
    for (const name of ['Produce', 'Metadata']) {
      const api = await new Promise<lib.API<unknown[], unknown>>((resolve, reject) => producer[lib.kGetApi](name, (err, api) => (err ? reject(err) : resolve(api!))));
      seen.push({ name, version: api.version });
      if (name === 'Produce') assert.notEqual(api, lib.produceV7.api);
      else assert.equal(api, lib.metadataV12.api);
    }
    assert.deepEqual(seen, [
      { name: 'Produce', version: 7 },
      { name: 'Metadata', version: 12 },
    ]);
    await producer.close(true);
  });
});
