// A store file is a sequence of records:
//
//   [uint32 BE n][n bytes: the LogEntry payload exactly as the daemon sent it][uint32 BE n]
//
// The leading length lets a reader walk forward; the trailing copy lets `--tail` walk
// backward from the end of a file without reading the rest of it. Payloads are kept
// verbatim, so nothing the daemon sent (raw bytes, partial metadata, exact time_nano) is lost.
// The layout is the one of moby's `local` driver.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { MIN_FRAME_PAYLOAD } from '../ingest/deframer.ts';
import type { FrameBatch } from '../ingest/frame-batch.ts';

export const RECORD_OVERHEAD = 8;

/** The bytes frames [from, to) of a batch take as store records. */
export function recordsBytes(batch: FrameBatch, from: number, to: number): number {
  let total = 0;
  for (let i = from; i < to; i++) total += batch.ends[i]! - batch.starts[i]! + 4;
  return total;
}

/**
 * Frames up to this size are copied byte by byte: most lines are short, and for them a call
 * into Buffer.copy's native code cost more than the copy (with `seq` lines it was the largest
 * part of a store write's CPU).
 */
const SHORT_COPY_BYTES = 64;

/**
 * Writes frames [from, to) of a batch ([n][payload] each) as store records into `out`, which
 * must hold recordsBytes(); returns the bytes written.
 */
export function encodeRecords(batch: FrameBatch, from: number, to: number, out: Buffer): number {
  const { buf, starts, ends } = batch;
  let pos = 0;
  for (let i = from; i < to; i++) {
    const start = starts[i]!;
    const end = ends[i]!;
    if (end - start <= SHORT_COPY_BYTES) {
      for (let j = start; j < end; j++) out[pos++] = buf[j]!;
    } else {
      pos += buf.copy(out, pos, start, end);
    }
    const n = end - start - 4;
    out[pos++] = n >>> 24;
    out[pos++] = (n >>> 16) & 0xff;
    out[pos++] = (n >>> 8) & 0xff;
    out[pos++] = n & 0xff;
  }
  return pos;
}

export class CorruptRecordError extends Error {}

/**
 * No stored payload is shorter: the FIFO reader stores only frames of at least this size (a
 * LogEntry's source field alone takes 8 bytes). Checking it makes the zeros a power cut can
 * leave at the end of a file read as damage, not as empty records.
 */
const MIN_PAYLOAD = MIN_FRAME_PAYLOAD;

/** buf.readUInt32BE without its bounds checks (callers check), twice per record read. */
function uint32At(buf: Buffer, pos: number): number {
  return ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!) >>> 0;
}

/**
 * Forward parser over a stream of store bytes cut anywhere. `push` returns the payloads
 * of the records completed by a chunk, as views of it where possible. Where the bytes stop
 * being records, it returns every whole record before that point and sets `damage`; it
 * returns nothing after.
 */
export class RecordParser {
  private pending: Buffer = Buffer.alloc(0);
  private readonly maxPayload: number;
  /** Set once the input stopped being whole records. */
  damage: CorruptRecordError | null = null;
  /** The bytes of every record returned so far (where the next one starts, from the first). */
  recordBytes = 0;

  constructor(maxPayload: number) {
    this.maxPayload = maxPayload;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.damage) return [];
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const payloads: Buffer[] = [];
    let pos = 0;
    while (buf.length - pos >= 4) {
      const n = uint32At(buf, pos);
      if (n < MIN_PAYLOAD || n > this.maxPayload) {
        this.damage = new CorruptRecordError(`record length ${n} is outside ${MIN_PAYLOAD}..${this.maxPayload}`);
        break;
      }
      if (buf.length - pos < n + RECORD_OVERHEAD) break;
      if (uint32At(buf, pos + 4 + n) !== n) {
        this.damage = new CorruptRecordError('record trailer does not match its header');
        break;
      }
      payloads.push(buf.subarray(pos + 4, pos + 4 + n));
      pos += n + RECORD_OVERHEAD;
    }
    // The pending bytes start at a record's start, so the records returned span buf[0, pos).
    this.recordBytes += pos;
    this.pending = this.damage || pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return payloads;
  }
}

/** Where the whole records at the start of a file end, and what ended them. */
export interface ForwardScan {
  /** The byte after the last record counted. */
  end: number;
  count: number;
  /** Null when the records run to `size` (or the limit), or only the last one is cut short there. */
  damage: CorruptRecordError | null;
}

const FORWARD_CHUNK = 1 << 20;

/** Counts the records of a plain segment's bytes as they are read from its start. */
class ForwardCount {
  end = 0;
  count = 0;
  private readonly parser: RecordParser;
  private readonly limit: number;
  private readonly visit: (payload: Buffer, offset: number) => void;

  constructor(maxPayload: number, limit: number, visit: (payload: Buffer, offset: number) => void) {
    this.parser = new RecordParser(maxPayload);
    this.limit = limit;
    this.visit = visit;
  }

  get done(): boolean {
    return this.count >= this.limit || this.parser.damage !== null;
  }

  feed(chunk: Buffer): void {
    for (const payload of this.parser.push(chunk)) {
      if (this.count >= this.limit) return;
      this.visit(payload, this.end);
      this.end += payload.length + RECORD_OVERHEAD;
      this.count++;
    }
  }

  result(): ForwardScan {
    return { end: this.end, count: this.count, damage: this.count >= this.limit ? null : this.parser.damage };
  }
}

/**
 * Reads a plain segment's records forward from its start up to `size` (or `limit` records),
 * handing each payload to `visit`, and stops at the first damaged one: everything before it
 * is whole.
 */
export async function scanForward(
  file: FileHandle,
  size: number,
  maxPayload: number,
  visit: (payload: Buffer, offset: number) => void = () => {},
  limit = Infinity,
): Promise<ForwardScan> {
  const counted = new ForwardCount(maxPayload, limit, visit);
  const chunk = Buffer.allocUnsafe(Math.min(FORWARD_CHUNK, size));
  for (let pos = 0; pos < size && !counted.done; ) {
    const { bytesRead } = await file.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    counted.feed(chunk.subarray(0, bytesRead));
  }
  return counted.result();
}

/** scanForward without visits, blocking: for a check that must see the file as it is now. */
export function scanForwardSync(fd: number, size: number, maxPayload: number, limit = Infinity): ForwardScan {
  const counted = new ForwardCount(maxPayload, limit, () => {});
  const chunk = Buffer.allocUnsafe(Math.min(FORWARD_CHUNK, size));
  for (let pos = 0; pos < size && !counted.done; ) {
    const bytesRead = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    counted.feed(chunk.subarray(0, bytesRead));
  }
  return counted.result();
}

/** Whether a whole record ends at `offset` of a plain segment: the trailer there and its header agree. */
export function recordEndsAt(fd: number, offset: number, maxPayload: number): boolean {
  if (offset === 0) return true;
  const word = Buffer.alloc(4);
  if (offset < RECORD_OVERHEAD + MIN_PAYLOAD || fs.readSync(fd, word, 0, 4, offset - 4) !== 4) return false;
  const n = word.readUInt32BE(0);
  const start = offset - n - RECORD_OVERHEAD;
  if (n < MIN_PAYLOAD || n > maxPayload || start < 0) return false;
  return fs.readSync(fd, word, 0, 4, start) === 4 && word.readUInt32BE(0) === n;
}

const SCAN_BLOCK = 64 * 1024;

/**
 * Walks back from `end` over at most `limit` records using their trailing lengths and
 * returns where the earliest of them starts. Each record's header must repeat its trailer,
 * so a torn or garbage tail is found, not walked into. Reads only the blocks holding those
 * trailers and headers.
 */
export async function scanBackward(
  file: FileHandle,
  end: number,
  limit: number,
  maxPayload: number,
): Promise<{ offset: number; count: number }> {
  let block = Buffer.alloc(0);
  let blockStart = end; // file offset of block[0]
  /** Makes the block hold [from, from + 4) and returns the uint32 there. */
  const uint32At = async (from: number): Promise<number> => {
    if (from < blockStart || from + 4 > blockStart + block.length) {
      const stop = from + 4;
      const start = Math.max(0, stop - SCAN_BLOCK);
      block = Buffer.allocUnsafe(stop - start);
      const { bytesRead } = await file.read(block, 0, block.length, start);
      if (bytesRead !== block.length) throw new CorruptRecordError('file shrank while scanning');
      blockStart = start;
    }
    return block.readUInt32BE(from - blockStart);
  };
  let pos = end;
  let count = 0;
  while (count < limit && pos > 0) {
    if (pos < RECORD_OVERHEAD + MIN_PAYLOAD) throw new CorruptRecordError('stray bytes at the start of the file');
    const n = await uint32At(pos - 4);
    if (n < MIN_PAYLOAD || n > maxPayload) throw new CorruptRecordError(`record length ${n} is outside ${MIN_PAYLOAD}..${maxPayload}`);
    const recordStart = pos - n - RECORD_OVERHEAD;
    if (recordStart < 0) throw new CorruptRecordError('record trailer points before the start of the file');
    // Read with the trailer before it, which the next step needs.
    if ((await uint32At(recordStart)) !== n) throw new CorruptRecordError('record header does not match its trailer');
    pos = recordStart;
    count++;
  }
  return { offset: pos, count };
}
