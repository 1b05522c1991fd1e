// LogEntry, the daemon's protobuf message on the FIFO and in ReadLogs replies.
// The schema lives in proto/entry.proto; protobufjs compiles a codec from it at start-up.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

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

/** Decodes one frame payload; throws InvalidEntryError for bytes that are not a daemon LogEntry. */
export function decodeLogEntry(payload: Uint8Array): LogEntry {
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
