// Stored entries → the ReadLogs reply: the FIFO's framing, [uint32 BE length][LogEntry].
// The daemon reads only source, time_nano and line, and writes each line verbatim, so complete
// lines get back the '\n' the daemon stripped (json-file stores it); a chunk of a longer line
// does not. The reply is written straight from the stored payloads, one buffer per batch:
// source and time_nano are copied as stored, the line gets its newline, and partial metadata
// and attrs (which the daemon ignores) are left out. Re-encoding each entry with protobufjs
// cost more than everything else in `docker logs` (see entry-scan.ts).
import { EntryScan, scanEntry } from '../codec/entry-scan.ts';

const SOURCE_FIELD = [Buffer.from('\x0a\x06stdout', 'latin1'), Buffer.from('\x0a\x06stderr', 'latin1')] as const;
const TIME_TAG = 0x10;
const LINE_TAG = 0x1a;
const NEWLINE = 0x0a;
/** Most an entry can grow: a header, and for an empty line (stored without field 3) a tag, a length and the newline. */
const GROWTH = 4 + 1 + 5 + 1;

const scan = new EntryScan();

/**
 * Fields up to this size are copied byte by byte: a time is 10 bytes and most lines are short,
 * and three calls into Buffer.copy's native code per entry were a tenth of a read's CPU
 * (bench/read-path.ts with PROFILE=1), as on the write side (record-format.ts).
 */
const SHORT_COPY_BYTES = 64;

function copyBytes(from: Buffer, start: number, end: number, out: Buffer, pos: number): number {
  if (end - start > SHORT_COPY_BYTES) return pos + from.copy(out, pos, start, end);
  for (let i = start; i < end; i++) out[pos++] = from[i]!;
  return pos;
}

function writeVarint(out: Buffer, pos: number, value: number): number {
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return pos;
}

/** The reply bytes for stored payloads, in order; payloads that are not daemon entries are skipped. */
export function encodeReadLogsBatch(payloads: readonly Buffer[]): Buffer {
  let bound = 0;
  for (const p of payloads) bound += p.length + GROWTH;
  const out = Buffer.allocUnsafe(bound);
  let pos = 0;
  for (const p of payloads) {
    if (!scanEntry(p, 0, p.length, scan)) continue;
    const complete = !scan.partial || scan.partialLast;
    const lineBytes = scan.lineEnd - scan.lineStart + (complete ? 1 : 0);
    const start = pos;
    pos += 4;
    const source = SOURCE_FIELD[scan.stderr ? 1 : 0];
    pos = copyBytes(source, 0, source.length, out, pos);
    if (scan.timeEnd > scan.timeStart) {
      out[pos++] = TIME_TAG;
      pos = copyBytes(p, scan.timeStart, scan.timeEnd, out, pos);
    }
    if (lineBytes > 0) {
      out[pos++] = LINE_TAG;
      pos = writeVarint(out, pos, lineBytes);
      pos = copyBytes(p, scan.lineStart, scan.lineEnd, out, pos);
      if (complete) out[pos++] = NEWLINE;
    }
    const n = pos - start - 4;
    out[start] = n >>> 24;
    out[start + 1] = (n >>> 16) & 0xff;
    out[start + 2] = (n >>> 8) & 0xff;
    out[start + 3] = n & 0xff;
  }
  return out.subarray(0, pos);
}
