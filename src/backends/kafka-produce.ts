// The produce request's record batch written into one Buffer, from the engine's lines as they
// are, in place of the library's own encoder, which builds every field of every record as a
// Buffer of its own (a varint is a 1-byte Buffer: some twenty per record with logship's
// headers) and then concatenates them, twice. Measured (bench/kafka.ts, 300,000 short lines,
// json, no compression, to the mock): that encoding was 60% of the process's CPU time while
// shipping (Buffer.concat 22%, DynamicBuffer.appendFrom 15%, garbage collection 11%), and
// shipping ran at 61k lines/s against 464k for the floor.
//
// The library sees one placeholder message per request, naming the RecordSource the records'
// bytes come from (prepareMessages): no key, value or header Maps per line for it to copy and
// re-serialize, and no record object or value Buffer per line of ours. Measured
// (bench/kafka.ts, 300,000 lines, lz4, minutes apart on a shared machine): 160k lines/s (0.38
// of the engine's floor) with a message of the library's per record, 320k (0.59) with the
// same placeholder per record; one per request then took the library's own per-message work
// (RecordSequences numbers the records, as its counter numbered messages).
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
 * `size` bytes to write records into, reused from batch to batch: records to compress at once
 * (the compressor copies them out), and an uncompressed batch, which the library's connection
 * copies into the request it writes as soon as produceRequest returns it (its payload is our
 * Writer's parts concatenated, before any other request is made: test/unit/kafka-produce.test.ts
 * checks the bytes a broker receives when the scratch is overwritten right after). A new Buffer
 * of a MB per request, outside V8's heap, is fresh memory to fault in and external memory
 * that brings on garbage collections: encoding 3,000 short json lines a batch took 540 ns of CPU
 * a line with lz4 or zstd against 370 with this one; uncompressed, 1,000,000 lines in sends of
 * 20,000 (bench/kafka-encode.ts), 530-570 ns a line against 180-210.
 */
function scratchBuffer(size: number): Buffer {
  if (size > SCRATCH_MAX) return Buffer.allocUnsafe(size);
  if (scratch === null || scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, 1 << 20));
  return scratch.subarray(0, size);
}

/**
 * One partition's records as a record batch: the library's createRecordsBatch, byte for byte,
 * as one Buffer (or a promise of it: gzip compresses off the thread, as the library does).
 * Uncompressed and up to SCRATCH_MAX bytes, it is the scratch Buffer's: valid until the next call.
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
  // Uncompressed, the records are written in the batch's place: no copy. Uncompressed or
  // compressed at once (all but gzip), into the scratch Buffer kept for the next batch: an
  // uncompressed batch is valid until the next call (the connection copies it at once).
  const at = algorithm === null ? BATCH_HEADER : 0;
  const records = algorithm === null || !('compress' in algorithm) ? scratchBuffer(at + total) : Buffer.allocUnsafe(at + total);
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
 * `topic`: one placeholder message for the whole request, naming the source its bytes are
 * written from. The library's send() costs per message it is given (it validates each, makes
 * two header Maps, a record object and a `topic:partition` string for each, and counts each
 * into its sequence numbers): with one message per record that was some 6% of the process's
 * CPU time shipping short lines, and most of the garbage kafka made. Its sequence numbers
 * then count requests, not records: RecordSequences gives each request its records' own.
 */
export function prepareMessages(source: RecordSource, topic: string, partition: number): MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] {
  const placeholder = { topic, partition, value: Buffer.alloc(0) };
  prepared.set(placeholder.value, source);
  return [placeholder];
}

/** Kafka's sequence numbers are int32 and wrap to 0 past the largest (its DefaultRecordBatch.incrementSequence). */
const SEQUENCE_SPAN = 2 ** 31;

/**
 * One producer's idempotent sequence numbers in records, from the library's in requests.
 * The library hands each Produce request the number its counter gave the request's messages
 * (one per request: prepareMessages), per producer id and epoch and partition: 0 for the first
 * request after InitProducerId (it clears its counter then, and only then), one more for each
 * next request, the same number again when it retries a request (its retries within a send,
 * a stale leader). The broker wants the first record's sequence: 0 for the first request,
 * then the previous request's plus its records. A producer has one request in flight (the
 * engine sends a batch at a time, KafkaBackend its requests in turn), so the last request of
 * each partition is kept: its number again is its retry (the same records, the same sequence),
 * one more is the next.
 * Anything else cannot be told and fails the request; a failed send makes the library take
 * a new producer id, whose numbers start at 0.
 */
export class RecordSequences {
  private readonly last = new Map<string, { producerId: bigint; producerEpoch: number; request: number; first: number; count: number }>();

  /** The first record's sequence for request number `request` (the library's) of `count` records to `partition` (`topic:index`). */
  first(partition: string, producerId: bigint, producerEpoch: number, request: number, count: number): number {
    const last = this.last.get(partition);
    const same = last !== undefined && last.producerId === producerId && last.producerEpoch === producerEpoch;
    let first: number;
    if (request === 0) first = 0;
    else if (same && request === last.request) first = last.first;
    else if (same && request === last.request + 1) first = (last.first + last.count) % SEQUENCE_SPAN;
    else throw new Error(`kafka: Produce request ${request} of producer ${producerId} (epoch ${producerEpoch}) to ${partition} does not follow ${same ? `request ${last.request}` : 'any request sent'}: its sequence number cannot be known`);
    if (same && request === last.request && count !== last.count) throw new Error(`kafka: Produce request ${request} to ${partition} retried with ${count} records, sent with ${last.count}`);
    this.last.set(partition, { producerId, producerEpoch, request, first, count });
    return first;
  }
}

/** The Produce request for a message of prepareMessages, as the library's createRequest takes its arguments. */
function produceRequest(lib: KafkaLibrary, version: number, sequences: RecordSequences, ...[acks = 1, timeout = 0, messages, options = {}]: ProduceArgs): Writer | Promise<Writer> {
  const m = messages[0];
  const source = m === undefined ? undefined : prepared.get(m.value);
  // One message, standing for its source's records: else the library's sequence numbers
  // would not be the request's.
  if (!source || messages.length !== 1) throw new Error('kafka: a produce request of messages not from prepareMessages, or of more than one');
  const { topic } = m!;
  const partition = m!.partition ?? 0;
  let batchOptions = options;
  if (options.sequences) {
    const key = `${topic}:${partition}`;
    const first = sequences.first(key, options.producerId ?? -1n, options.producerEpoch ?? 0, options.sequences.getWithDefault(key, 0), source.count);
    batchOptions = { ...options, sequences: new lib.NumericMap([[key, first]]) };
  }
  const request = (batch: Buffer): Writer => encodeProduceRequest(lib, version, acks, timeout, topic, partition, batch, options.transactionalId);
  const batch = encodeRecordBatch(lib, source, topic, partition, batchOptions);
  return batch instanceof Promise ? batch.then(request) : request(batch);
}

type ProduceApi = KafkaLibrary['produceV7']['api'];
type ProduceVersions = Record<number, { parseResponse: KafkaLibrary['produceV7']['parseResponse'] }>;
export type RecordProducer = import('@platformatic/kafka').Producer<Buffer, Buffer, Buffer, Buffer>;

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

/** The Produce API of `version` with requests written here (their sequences from `sequences`), or null for a version this file does not know. */
function produceApi(lib: KafkaLibrary, version: number, sequences: RecordSequences): ProduceApi | null {
  const module = (produceModules(lib) as ProduceVersions)[version];
  if (!module) return null;
  const flexible = version >= 9;
  return lib.createAPI(0, version, (...args: ProduceArgs) => produceRequest(lib, version, sequences, ...args), module.parseResponse, flexible, flexible) as ProduceApi;
}

/**
 * The library's Producer, its Produce requests (of the version the broker speaks) written
 * here: send it messages of prepareMessages. Its sequence numbers in records are its own
 * (RecordSequences), as the library's counter is.
 */
export function createProducer(lib: KafkaLibrary, options: ProducerOptions<Buffer, Buffer, Buffer, Buffer>): RecordProducer {
  const producer = new lib.Producer<Buffer, Buffer, Buffer, Buffer>(options);
  const sequences = new RecordSequences();
  const apis = new Map<number, ProduceApi | null>();
  const getApi = producer[lib.kGetApi].bind(producer);
  producer[lib.kGetApi] = <A extends unknown[], R>(name: string, callback: Callback<API<A, R>>): void => {
    getApi<A, R>(name, (error, api) => {
      let ours: ProduceApi | null = null;
      if (!error && name === 'Produce') {
        const version = (api as API<A, R>).version;
        if (!apis.has(version)) apis.set(version, produceApi(lib, version, sequences));
        ours = apis.get(version)!;
      }
      if (ours) callback(null, ours as unknown as API<A, R>);
      else callback(error, api);
    });
  };
  return producer;
}
