// The produce request's record batches written into one Buffer per partition, in place of the
// library's own encoder, which builds every field of every record as a Buffer of its own
// (a varint is a 1-byte Buffer: some twenty per record with logship's headers) and then
// concatenates them, twice. Measured (bench/kafka.ts, 300,000 short lines, json, no
// compression, to the mock): that encoding was 60% of the process's CPU time while shipping
// (Buffer.concat 22%, DynamicBuffer.appendFrom 15%, garbage collection 11%), and shipping ran at
// 61k lines/s against 464k for the floor.
//
// Everything else stays the library's: the producer picks the Produce version the broker
// speaks (kGetApi, exported for clients built on its Base), finds leaders, assigns the
// idempotent sequence numbers, retries and parses the answers; only the request's bytes are
// written here, the same bytes as its own createRequest (test/unit/kafka-produce.test.ts
// compares them for every version and compression).
import type { API, Callback, CreateRecordsBatchOptions, MessageRecord, ProducerOptions, Writer } from '@platformatic/kafka';

type KafkaLibrary = typeof import('@platformatic/kafka');

/** The produce request as the library's createRequest(acks, timeout, topicData, options) takes it. */
export type ProduceArgs = [acks: number | undefined, timeout: number | undefined, messages: MessageRecord[], options?: Partial<CreateRecordsBatchOptions>];

/** A record batch's fixed part: baseOffset … records count (Kafka's RecordBatch, magic 2). */
const BATCH_HEADER = 61;
/** Where the CRC (CRC-32C of everything after it) and the part it covers start. */
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
const IS_TRANSACTIONAL = 1 << 4;

/** Bytes of an unsigned varint (as Kafka's, up to 2^53 here: a timestamp delta may need more than 32 bits). */
function uvarintSize(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

function writeUvarint(buf: Buffer, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** ZigZag as a non-negative Number (Kafka's varint and varlong both). */
const zigzag = (value: number): number => (value >= 0 ? value * 2 : -value * 2 - 1);

/** A key, value or header as Kafka's varint-length bytes: -1 for none. */
const bytesSize = (b: Buffer | null | undefined): number => (b == null ? 1 : uvarintSize(zigzag(b.length)) + b.length);

function writeBytes(buf: Buffer, pos: number, b: Buffer | null | undefined): number {
  if (b == null) return writeUvarint(buf, pos, 1);
  pos = writeUvarint(buf, pos, zigzag(b.length));
  if (b.length > 0) {
    // Short ones byte by byte: a typed array's set() costs more than it copies below ~64 bytes.
    if (b.length < 64) for (let i = 0; i < b.length; i++) buf[pos + i] = b[i]!;
    else b.copy(buf, pos);
  }
  return pos + b.length;
}

/**
 * One partition's messages as a record batch: the library's createRecordsBatch, byte for byte,
 * as one Buffer (or a promise of it: gzip compresses off the thread, as the library does).
 */
export function encodeRecordBatch(lib: KafkaLibrary, messages: readonly MessageRecord[], options: Partial<CreateRecordsBatchOptions>): Buffer | Promise<Buffer> {
  const count = messages.length;
  const now = BigInt(Date.now());
  const first = messages[0]!.timestamp ?? now;
  let max = first;
  // Times in ms as Numbers (exact below 2^53): a BigInt subtraction allocates.
  const firstMs = Number(first);
  const deltas = new Float64Array(count);
  const bodies = new Int32Array(count);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const m = messages[i]!;
    const ts = m.timestamp ?? now;
    if (ts > max) max = ts;
    const delta = Number(ts) - firstMs;
    deltas[i] = delta;
    let body = 1 + uvarintSize(zigzag(delta)) + uvarintSize(zigzag(i)) + bytesSize(m.key) + bytesSize(m.value);
    const headers = m.headers;
    body += uvarintSize(zigzag(headers?.size ?? 0));
    if (headers) for (const [k, v] of headers) body += bytesSize(k) + bytesSize(v);
    bodies[i] = body;
    total += uvarintSize(zigzag(body)) + body;
  }
  let attributes = options.transactionalId ? IS_TRANSACTIONAL : 0;
  const compression = options.compression ?? 'none';
  // Uncompressed, the records are written in the batch's place: no copy.
  const at = compression === 'none' ? BATCH_HEADER : 0;
  const records = Buffer.allocUnsafe(at + total);
  let pos = at;
  for (let i = 0; i < count; i++) {
    const m = messages[i]!;
    pos = writeUvarint(records, pos, zigzag(bodies[i]!));
    records[pos++] = 0; // attributes: none are defined for a record
    pos = writeUvarint(records, pos, zigzag(deltas[i]!));
    pos = writeUvarint(records, pos, zigzag(i));
    pos = writeBytes(records, pos, m.key);
    pos = writeBytes(records, pos, m.value);
    const headers = m.headers;
    pos = writeUvarint(records, pos, zigzag(headers?.size ?? 0));
    if (headers) {
      for (const [k, v] of headers) {
        pos = writeBytes(records, pos, k);
        pos = writeBytes(records, pos, v);
      }
    }
  }
  /** The batch's fixed part, before its records (at BATCH_HEADER), then its CRC. */
  const finish = (batch: Buffer): Buffer => {
    batch.writeBigInt64BE(0n, 0); // baseOffset: the broker assigns it
    batch.writeInt32BE(batch.length - 12, 8);
    batch.writeInt32BE(options.partitionLeaderEpoch ?? 0, 12);
    batch[16] = 2; // magic
    batch.writeInt16BE(attributes, ATTRIBUTES_AT);
    batch.writeInt32BE(count - 1, 23); // lastOffsetDelta
    batch.writeBigInt64BE(first, 27);
    batch.writeBigInt64BE(max, 35);
    batch.writeBigInt64BE(options.producerId ?? -1n, 43);
    batch.writeInt16BE(options.producerEpoch ?? 0, 51);
    const m = messages[0]!;
    batch.writeInt32BE(options.sequences ? options.sequences.getWithDefault(`${m.topic}:${m.partition}`, 0) : 0, 53);
    batch.writeInt32BE(count, 57);
    batch.writeUInt32BE(lib.crc32c(batch.subarray(ATTRIBUTES_AT)), CRC_AT);
    return batch;
  };
  const compressed = (body: Buffer): Buffer => {
    const batch = Buffer.allocUnsafe(BATCH_HEADER + body.length);
    body.copy(batch, BATCH_HEADER);
    return finish(batch);
  };
  if (compression === 'none') return finish(records);
  const algorithm = lib.compressionsAlgorithms[compression];
  if (!algorithm) throw new lib.UnsupportedCompressionError(`Unsupported compression algorithm ${compression}`);
  attributes |= algorithm.bitmask;
  if ('compress' in algorithm) return algorithm.compress(records).then(compressed);
  return compressed(algorithm.compressSync(records));
}

/**
 * A Produce request of `version` (3 to 11, as the library has them), the library's
 * createRequest byte for byte: topics and their partitions in the library's order
 * (groupByProperty), each partition one record batch.
 */
export function encodeProduceRequest(lib: KafkaLibrary, version: number, ...[acks = 1, timeout = 0, messages, options = {}]: ProduceArgs): Writer | Promise<Writer> {
  const now = BigInt(Date.now());
  for (const m of messages) {
    m.partition ??= 0;
    m.timestamp ??= now;
  }
  const topics = lib.groupByProperty(messages, 'topic').map(([topic, ms]) => ({
    topic,
    partitions: lib.groupByProperty(ms, 'partition').map(([partition, pms]) => ({ partition: Number(partition), batch: encodeRecordBatch(lib, pms, options) })),
  }));
  const write = (): Writer => {
    const flexible = version >= 9;
    const w = lib.Writer.create().appendString(options.transactionalId, flexible).appendInt16(acks).appendInt32(timeout);
    w.appendArray(
      topics,
      (w, { topic, partitions }) => {
        w.appendString(topic as string, flexible).appendArray(
          partitions,
          (w, { partition, batch }) => {
            const bytes = batch as Buffer;
            w.appendInt32(partition);
            if (flexible) w.appendUnsignedVarInt(bytes.length + 1);
            else w.appendInt32(bytes.length);
            w.append(bytes);
          },
          flexible,
          flexible,
        );
      },
      flexible,
      flexible,
    );
    if (flexible) w.appendTaggedFields();
    if (acks === lib.ProduceAcks.NO_RESPONSE) w.context.noResponse = true;
    return w;
  };
  const partitions = topics.flatMap((t) => t.partitions);
  if (!partitions.some((p) => p.batch instanceof Promise)) return write();
  return Promise.all(
    partitions.map(async (p) => {
      p.batch = await p.batch;
    }),
  ).then(write);
}

type ProduceApi = KafkaLibrary['produceV7']['api'];
type ProduceVersions = Record<number, { parseResponse: KafkaLibrary['produceV7']['parseResponse'] }>;
export type RecordProducer = import('@platformatic/kafka').Producer<Buffer, Buffer, Buffer, Buffer>;

const apis = new WeakMap<KafkaLibrary, Map<number, ProduceApi>>();

/** The library's Produce modules, by the versions encodeProduceRequest writes requests for. */
export function produceModules(lib: KafkaLibrary) {
  return {
    3: lib.produceV3,
    4: lib.produceV4,
    5: lib.produceV5,
    6: lib.produceV6,
    7: lib.produceV7,
    8: lib.produceV8,
    9: lib.produceV9,
    10: lib.produceV10,
    11: lib.produceV11,
  } as const;
}

/** The Produce API of `version` with requests written by encodeProduceRequest, or null for a version this file does not know. */
function produceApi(lib: KafkaLibrary, version: number): ProduceApi | null {
  const module = (produceModules(lib) as ProduceVersions)[version];
  if (!module) return null;
  let known = apis.get(lib);
  if (!known) apis.set(lib, (known = new Map()));
  let api = known.get(version);
  if (!api) {
    const flexible = version >= 9;
    api = lib.createAPI(0, version, (...args: ProduceArgs) => encodeProduceRequest(lib, version, ...args), module.parseResponse, flexible, flexible) as ProduceApi;
    known.set(version, api);
  }
  return api;
}

/** The library's Producer, its Produce requests (of the version the broker speaks) written by encodeProduceRequest. */
export function createProducer(lib: KafkaLibrary, options: ProducerOptions<Buffer, Buffer, Buffer, Buffer>): RecordProducer {
  const producer = new lib.Producer<Buffer, Buffer, Buffer, Buffer>(options);
  const getApi = producer[lib.kGetApi].bind(producer);
  producer[lib.kGetApi] = <A extends unknown[], R>(name: string, callback: Callback<API<A, R>>): void => {
    getApi<A, R>(name, (error, api) => {
      const ours = error || name !== 'Produce' ? null : produceApi(lib, (api as API<A, R>).version);
      if (ours) callback(null, ours as unknown as API<A, R>);
      else callback(error, api);
    });
  };
  return producer;
}
