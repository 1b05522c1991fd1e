// The produce request's record batch written into one Buffer, from the engine's lines as they
// are, in place of the library's own encoder, which builds every field of every record as a
// Buffer of its own (a varint is a 1-byte Buffer: some twenty per record with logship's
// headers) and then concatenates them, twice. Measured (bench/kafka.ts, 300,000 short lines,
// json, no compression, to the mock): that encoding was 60% of the process's CPU time while
// shipping (Buffer.concat 22%, DynamicBuffer.appendFrom 15%, garbage collection 11%), and
// shipping ran at 61k lines/s against 464k for the floor.
//
// The library still sees one message per record, so that it counts the idempotent sequence
// numbers as its own; but they are one placeholder object, repeated, that names the
// RecordSource the records' bytes come from (prepareMessages): no key, value or header Maps
// per line for it to copy and re-serialize, and no record object or value Buffer per line of
// ours. Measured (bench/kafka.ts, 300,000 lines, lz4, minutes apart on a shared machine):
// 160k lines/s (0.38 of the engine's floor) before, 320k (0.59) after.
//
// Everything else stays the library's: the producer picks the Produce version the broker
// speaks (kGetApi, exported for clients built on its Base), finds leaders, assigns the
// idempotent sequence numbers, retries and parses the answers; only the request's bytes are
// written here, the same bytes as its own createRequest for the same records
// (test/unit/kafka-produce.test.ts compares them for every version and compression).
import type { API, Callback, CreateRecordsBatchOptions, MessageRecord, MessageToProduce, ProducerOptions, Writer } from '@platformatic/kafka';

type KafkaLibrary = typeof import('@platformatic/kafka');

/** The produce request as the library's createRequest(acks, timeout, topicData, options) takes it. */
export type ProduceArgs = [acks: number | undefined, timeout: number | undefined, messages: MessageRecord[], options?: Partial<CreateRecordsBatchOptions>];

/**
 * The records of one record batch, written where they go: nothing per record but what the
 * source already holds. Kafka's record is its length, attributes, time delta and offset
 * delta (written here), then key, value and headers (the source's `body`).
 */
export interface RecordSource {
  readonly count: number;
  /** Record i's time, ms since the epoch. */
  timestampMs(i: number): number;
  /** Bytes of record i's key, value and headers as Kafka writes them. */
  bodySize(i: number): number;
  /** Writes those bytes at `pos`; returns the position after them. */
  writeBody(i: number, buf: Buffer, pos: number): number;
}

/** A record batch's fixed part: baseOffset … records count (Kafka's RecordBatch, magic 2). */
const BATCH_HEADER = 61;
/** Where the CRC (CRC-32C of everything after it) and the part it covers start. */
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
const IS_TRANSACTIONAL = 1 << 4;

/** Bytes of an unsigned varint (as Kafka's, up to 2^53 here: a timestamp delta may need more than 32 bits). */
export function uvarintSize(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

export function writeUvarint(buf: Buffer, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** ZigZag as a non-negative Number (Kafka's varint and varlong both). */
export const zigzag = (value: number): number => (value >= 0 ? value * 2 : -value * 2 - 1);

/** Kafka's bytes field (a key, value, header key or value): varint length, -1 for none, then the bytes. */
export function kafkaBytes(b: Buffer | null | undefined): Buffer {
  if (b == null) return Buffer.from([1]);
  const out = Buffer.allocUnsafe(uvarintSize(zigzag(b.length)) + b.length);
  b.copy(out, writeUvarint(out, 0, zigzag(b.length)));
  return out;
}

/** A record's headers as Kafka writes them: their count, then each key and value. */
export function kafkaHeaders(headers: ReadonlyMap<Buffer, Buffer | null> | undefined): Buffer {
  const fields = [...(headers ?? [])].flatMap(([k, v]) => [kafkaBytes(k), kafkaBytes(v)]);
  const count = Buffer.allocUnsafe(uvarintSize(zigzag(headers?.size ?? 0)));
  writeUvarint(count, 0, zigzag(headers?.size ?? 0));
  return Buffer.concat([count, ...fields]);
}

/**
 * Copies `b` at `pos`: a line of a few bytes byte by byte, anything longer with set(), whose
 * call costs as much as copying ~8 bytes in a loop (Node 24; Buffer.copy's checks add a few ns more).
 */
export function put(buf: Buffer, pos: number, b: Buffer): number {
  const n = b.length;
  if (n < 8) for (let i = 0; i < n; i++) buf[pos + i] = b[i]!;
  else buf.set(b, pos);
  return pos + n;
}

/** Scratch buffers up to this size are kept: the default request (kafka-message-max-bytes, 1 MB) fits. */
const SCRATCH_MAX = 4 << 20;
let scratch: Buffer | null = null;

/**
 * `size` bytes to write records into before they are compressed at once, reused from batch to
 * batch (the compressor copies them out): with a new Buffer of a MB per request, outside V8's
 * heap, encoding 3,000 short json lines a batch took 540 ns of CPU a line with lz4 or zstd,
 * against 370 with this one and 390 uncompressed.
 */
function scratchBuffer(size: number): Buffer {
  if (size > SCRATCH_MAX) return Buffer.allocUnsafe(size);
  if (scratch === null || scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, 1 << 20));
  return scratch.subarray(0, size);
}

/**
 * One partition's records as a record batch: the library's createRecordsBatch, byte for byte,
 * as one Buffer (or a promise of it: gzip compresses off the thread, as the library does).
 */
export function encodeRecordBatch(lib: KafkaLibrary, source: RecordSource, topic: string, partition: number, options: Partial<CreateRecordsBatchOptions>): Buffer | Promise<Buffer> {
  const count = source.count;
  const first = source.timestampMs(0);
  let max = first;
  const deltas = new Float64Array(count);
  const bodies = new Int32Array(count);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const ts = source.timestampMs(i);
    if (ts > max) max = ts;
    const delta = ts - first;
    deltas[i] = delta;
    const body = 1 + uvarintSize(zigzag(delta)) + uvarintSize(zigzag(i)) + source.bodySize(i);
    bodies[i] = body;
    total += uvarintSize(zigzag(body)) + body;
  }
  let attributes = options.transactionalId ? IS_TRANSACTIONAL : 0;
  const compression = options.compression ?? 'none';
  const algorithm = compression === 'none' ? null : lib.compressionsAlgorithms[compression];
  if (algorithm === undefined) throw new lib.UnsupportedCompressionError(`Unsupported compression algorithm ${compression}`);
  // Uncompressed, the records are written in the batch's place: no copy. Compressed at once
  // (all but gzip), they are written into a scratch Buffer kept for the next batch.
  const at = algorithm === null ? BATCH_HEADER : 0;
  const records = algorithm !== null && !('compress' in algorithm) ? scratchBuffer(total) : Buffer.allocUnsafe(at + total);
  let pos = at;
  for (let i = 0; i < count; i++) {
    pos = writeUvarint(records, pos, zigzag(bodies[i]!));
    const end = pos + bodies[i]!;
    records[pos++] = 0; // attributes: none are defined for a record
    pos = writeUvarint(records, pos, zigzag(deltas[i]!));
    pos = writeUvarint(records, pos, zigzag(i));
    pos = source.writeBody(i, records, pos);
    // A source that wrote other than it sized would shift every record after it.
    if (pos !== end) throw new Error(`kafka: record ${i} of ${count} was written ${pos - end} bytes off its size`);
  }
  /** The batch's fixed part, before its records (at BATCH_HEADER), then its CRC. */
  const finish = (batch: Buffer): Buffer => {
    batch.writeBigInt64BE(0n, 0); // baseOffset: the broker assigns it
    batch.writeInt32BE(batch.length - 12, 8);
    batch.writeInt32BE(options.partitionLeaderEpoch ?? 0, 12);
    batch[16] = 2; // magic
    batch.writeInt16BE(attributes, ATTRIBUTES_AT);
    batch.writeInt32BE(count - 1, 23); // lastOffsetDelta
    batch.writeBigInt64BE(BigInt(first), 27);
    batch.writeBigInt64BE(BigInt(max), 35);
    batch.writeBigInt64BE(options.producerId ?? -1n, 43);
    batch.writeInt16BE(options.producerEpoch ?? 0, 51);
    batch.writeInt32BE(options.sequences ? options.sequences.getWithDefault(`${topic}:${partition}`, 0) : 0, 53);
    batch.writeInt32BE(count, 57);
    // Given a DynamicBuffer (as the library's own createRecordsBatch does), its crc32c reads the
    // bytes where they are; given a Buffer, it copies them first (new Uint8Array(data)): a copy
    // of the whole batch per request uncompressed, 0.8 ms of CPU per MB against 0.2 (Node 24).
    batch.writeUInt32BE(lib.crc32c(lib.Writer.create().append(batch.subarray(ATTRIBUTES_AT)).dynamicBuffer), CRC_AT);
    return batch;
  };
  const compressed = (body: Buffer): Buffer => {
    const batch = Buffer.allocUnsafe(BATCH_HEADER + body.length);
    body.copy(batch, BATCH_HEADER);
    return finish(batch);
  };
  if (algorithm === null) return finish(records);
  attributes |= algorithm.bitmask;
  if ('compress' in algorithm) return algorithm.compress(records).then(compressed);
  return compressed(algorithm.compressSync(records));
}

/**
 * The Produce request of `version` (3 to 11, as the library has them) around one partition's
 * record batch: the library's createRequest byte for byte.
 */
export function encodeProduceRequest(lib: KafkaLibrary, version: number, acks: number, timeout: number, topic: string, partition: number, batch: Buffer, transactionalId?: string | null): Writer {
  const flexible = version >= 9;
  const w = lib.Writer.create().appendString(transactionalId, flexible).appendInt16(acks).appendInt32(timeout);
  // One topic of one partition: the arrays' lengths as the library writes them.
  if (flexible) w.appendUnsignedVarInt(2);
  else w.appendInt32(1);
  w.appendString(topic, flexible);
  if (flexible) w.appendUnsignedVarInt(2);
  else w.appendInt32(1);
  w.appendInt32(partition);
  if (flexible) w.appendUnsignedVarInt(batch.length + 1);
  else w.appendInt32(batch.length);
  w.append(batch);
  if (flexible) w.appendTaggedFields().appendTaggedFields().appendTaggedFields();
  if (acks === lib.ProduceAcks.NO_RESPONSE) w.context.noResponse = true;
  return w;
}

/** The record source each placeholder message stands for (prepareMessages). */
const prepared = new WeakMap<object, RecordSource>();

/**
 * What to give the producer's send() for the records of `source`, all to `partition` of
 * `topic`: one message per record (the library counts sequence numbers by them), the same
 * placeholder each time, naming the source the request's bytes are written from.
 */
export function prepareMessages(source: RecordSource, topic: string, partition: number): MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] {
  const placeholder = { topic, partition, value: Buffer.alloc(0) };
  prepared.set(placeholder.value, source);
  return new Array(source.count).fill(placeholder);
}

/** The Produce request for messages of prepareMessages, as the library's createRequest takes its arguments. */
function produceRequest(lib: KafkaLibrary, version: number, ...[acks = 1, timeout = 0, messages, options = {}]: ProduceArgs): Writer | Promise<Writer> {
  const m = messages[0];
  const source = m === undefined ? undefined : prepared.get(m.value);
  // Every message its source's, one per record, all to one partition: else the library's
  // sequence numbers would not be the batch's.
  if (!source || messages.length !== source.count || messages.some((x) => x.value !== m!.value || x.partition !== m!.partition)) {
    throw new Error('kafka: a produce request of messages not from prepareMessages, or split across partitions');
  }
  const { topic } = m!;
  const partition = m!.partition ?? 0;
  const request = (batch: Buffer): Writer => encodeProduceRequest(lib, version, acks, timeout, topic, partition, batch, options.transactionalId);
  const batch = encodeRecordBatch(lib, source, topic, partition, options);
  return batch instanceof Promise ? batch.then(request) : request(batch);
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

/** The Produce API of `version` with requests written here, or null for a version this file does not know. */
function produceApi(lib: KafkaLibrary, version: number): ProduceApi | null {
  const module = (produceModules(lib) as ProduceVersions)[version];
  if (!module) return null;
  let known = apis.get(lib);
  if (!known) apis.set(lib, (known = new Map()));
  let api = known.get(version);
  if (!api) {
    const flexible = version >= 9;
    api = lib.createAPI(0, version, (...args: ProduceArgs) => produceRequest(lib, version, ...args), module.parseResponse, flexible, flexible) as ProduceApi;
    known.set(version, api);
  }
  return api;
}

/** The library's Producer, its Produce requests (of the version the broker speaks) written here: send it messages of prepareMessages. */
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
