// A store file is a sequence of records:
//
//   [uint32 BE n][n bytes: the LogEntry payload exactly as the daemon sent it][uint32 BE n]
//
// The leading length lets a reader walk forward; the trailing copy lets `--tail` walk
// backward from the end of a file without reading the rest of it. Payloads are kept
// verbatim, so nothing the daemon sent (raw bytes, partial metadata, exact time_nano) is lost.
// The layout is the one of moby's `local` driver.
import type { FileHandle } from 'node:fs/promises';
import type { FrameBatch } from './frame-batch.ts';

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
 * Forward parser over a stream of store bytes cut anywhere. `push` returns the payloads
 * of the records completed by a chunk, as views of it where possible.
 */
export class RecordParser {
  private pending: Buffer = Buffer.alloc(0);
  private readonly maxPayload: number;

  constructor(maxPayload: number) {
    this.maxPayload = maxPayload;
  }

  push(chunk: Buffer): Buffer[] {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const payloads: Buffer[] = [];
    let pos = 0;
    while (buf.length - pos >= 4) {
      const n = buf.readUInt32BE(pos);
      if (n > this.maxPayload) throw new CorruptRecordError(`record length ${n} exceeds ${this.maxPayload}`);
      if (buf.length - pos < n + RECORD_OVERHEAD) break;
      if (buf.readUInt32BE(pos + 4 + n) !== n) throw new CorruptRecordError('record trailer does not match its header');
      payloads.push(buf.subarray(pos + 4, pos + 4 + n));
      pos += n + RECORD_OVERHEAD;
    }
    this.pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return payloads;
  }

  /** Bytes of an incomplete record left at the end of the input. */
  get leftoverBytes(): number {
    return this.pending.length;
  }
}

const SCAN_BLOCK = 64 * 1024;

/**
 * Walks back from `end` over at most `limit` records using their trailing lengths and
 * returns where the earliest of them starts. Reads only the blocks holding those trailers.
 */
export async function scanBackward(
  file: FileHandle,
  end: number,
  limit: number,
): Promise<{ offset: number; count: number }> {
  let pos = end;
  let count = 0;
  let block = Buffer.alloc(0);
  let blockStart = end; // file offset of block[0]
  while (count < limit && pos >= RECORD_OVERHEAD) {
    if (pos - 4 < blockStart) {
      const start = Math.max(0, pos - SCAN_BLOCK);
      block = Buffer.allocUnsafe(pos - start);
      const { bytesRead } = await file.read(block, 0, block.length, start);
      if (bytesRead !== block.length) throw new CorruptRecordError('file shrank while scanning');
      blockStart = start;
    }
    const n = block.readUInt32BE(pos - 4 - blockStart);
    const recordStart = pos - n - RECORD_OVERHEAD;
    if (recordStart < 0) throw new CorruptRecordError('record trailer points before the start of the file');
    pos = recordStart;
    count++;
  }
  if (count < limit && pos !== 0) throw new CorruptRecordError('stray bytes at the start of the file');
  return { offset: pos, count };
}
