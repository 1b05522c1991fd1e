// LogEntry, the daemon's protobuf message on the FIFO and in ReadLogs replies.
// The schema lives in proto/entry.proto; protobufjs compiles a codec from it at start-up.
// An entry with only the fields every line has (source, time, line, partial) is read by the
// allocation-free scan (entry-scan.ts) instead: protobufjs made a message object, a Long and a
// source string per line, the largest part of the delivery engine's decoding in its profile.
// protobufjs still decodes every other entry (partial metadata, attrs, anything unusual).
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { EntryScan, scanEntry } from './entry-scan.ts';

const schemaPath = fileURLToPath(new URL('../../proto/entry.proto', import.meta.url));
const LogEntryType = protobuf.loadSync(schemaPath).lookupType('logdriver.LogEntry');

export type Source = 'stdout' | 'stderr';

export interface PartialMetadata {
  id: string;
  ordinal: number;
  last: boolean;
}

export interface LogEntry {
  source: Source;
  /** Unix nanoseconds; exceeds 2^53, so never a Number. */
  timeNano: bigint;
  /** The line without its newline; raw bytes, not necessarily UTF-8. */
  line: Buffer;
  partial: boolean;
  partialMetadata: PartialMetadata | null;
}

interface Int64 {
  low: number;
  high: number;
}

// The daemon omits proto3 zero values (gogo "faster"): an empty line has no field 3, and
// protobufjs then gives its default, an empty plain array, not a Buffer.
interface DecodedMessage {
  source: string;
  timeNano: Int64 | number;
  line: Uint8Array | undefined; // or [] when absent: only its length is read then
  partial: boolean;
  partialLogMetadata: { id: string; ordinal: number; last: boolean } | null;
}

export class InvalidEntryError extends Error {}

const EMPTY = Buffer.alloc(0);

function asBuffer(bytes: Uint8Array | undefined): Buffer {
  if (!bytes || bytes.length === 0) return EMPTY;
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function toBigInt(value: Int64 | number): bigint {
  if (typeof value === 'number') return BigInt(value);
  return (BigInt(value.high) << 32n) | BigInt(value.low >>> 0);
}

const scan = new EntryScan();
/** The BigInt of the latest time_nano's upper half, which changes every 4.3 s: one BigInt less per line. */
let upperHalf = 0;
let upperBits = 0n;

function timeOf(found: EntryScan): bigint {
  if (found.timeHi !== upperHalf) {
    upperHalf = found.timeHi;
    upperBits = BigInt(upperHalf | 0) << 32n;
  }
  return upperBits | BigInt(found.timeLo >>> 0);
}

/** Decodes one frame payload; throws InvalidEntryError for bytes that are not a daemon LogEntry. */
export function decodeLogEntry(payload: Uint8Array): LogEntry {
  if (scanEntry(payload, 0, payload.length, scan) && !scan.unusual) {
    const { lineStart, lineEnd } = scan;
    let line: Buffer = EMPTY;
    if (lineEnd > lineStart) {
      line = Buffer.isBuffer(payload) ? payload.subarray(lineStart, lineEnd) : Buffer.from(payload.buffer, payload.byteOffset + lineStart, lineEnd - lineStart);
    }
    return { source: scan.stderr ? 'stderr' : 'stdout', timeNano: timeOf(scan), line, partial: scan.partial, partialMetadata: null };
  }
  let message: DecodedMessage;
  try {
    message = LogEntryType.decode(payload) as unknown as DecodedMessage;
  } catch (err) {
    throw new InvalidEntryError(`undecodable LogEntry: ${(err as Error).message}`);
  }
  const { source } = message;
  if (source !== 'stdout' && source !== 'stderr') {
    throw new InvalidEntryError(`LogEntry with source '${source.slice(0, 32)}'`);
  }
  const meta = message.partialLogMetadata;
  return {
    source,
    timeNano: toBigInt(message.timeNano),
    line: asBuffer(message.line),
    partial: message.partial,
    partialMetadata: meta ? { id: meta.id, ordinal: meta.ordinal, last: meta.last } : null,
  };
}
