// The few LogEntry fields the hot paths need (source, time, line, partial, last), found by
// walking the protobuf wire format in place. protobufjs stays the schema and the full decoder
// (log-entry.ts); this scan exists because decoding every line into an object (a Long for
// time_nano, a Buffer view for the line, a metadata object) was the largest cost of a
// 1,000,000-line `docker logs` in the profile (bench/pipeline.ts). It agrees with protobufjs
// on every daemon entry (test/unit/entry-scan.test.ts); it allocates nothing.

/** Where one entry's fields are, as offsets into the scanned buffer. Reused between scans. */
export class EntryScan {
  stderr = false;
  /** time_nano as two's-complement 32-bit halves (0 when absent). */
  timeHi = 0;
  timeLo = 0;
  /** The time_nano varint's bytes, without its tag; empty when absent. */
  timeStart = 0;
  timeEnd = 0;
  lineStart = 0;
  lineEnd = 0;
  partial = false;
  /** partial_log_metadata.last of the (last) metadata field. */
  partialLast = false;
  /**
   * The entry has fields the scan skips without looking inside (partial metadata beyond
   * `last`, attrs, unknown fields, a known field with another wire type): only protobufjs
   * can say whether those are well formed, so a caller that must be sure asks it.
   */
  unusual = false;

  /** time_nano, exact (it exceeds 2^53). */
  timeNano(): bigint {
    return (BigInt(this.timeHi | 0) << 32n) | BigInt(this.timeLo >>> 0);
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

// Byte offsets returned by the readers below; -1 means malformed. Module state instead of
// returned objects keeps the scan allocation-free.
let varintLo = 0;
let varintHi = 0;

/** Reads a varint at `pos` into varintLo/varintHi; returns the offset after it, or -1. */
function readVarint(buf: Uint8Array, pos: number, end: number): number {
  let lo = 0;
  let hi = 0;
  let b = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) return -1;
    b = buf[pos++]!;
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) return done(lo, hi, pos);
  }
  if (pos >= end) return -1;
  b = buf[pos++]!;
  lo |= (b & 0x0f) << 28;
  hi = (b & 0x7f) >> 4;
  if (b < 0x80) return done(lo, hi, pos);
  for (let shift = 3; shift < 38; shift += 7) {
    if (pos >= end) return -1;
    b = buf[pos++]!;
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) return done(lo, hi, pos);
  }
  return -1;
}

function done(lo: number, hi: number, pos: number): number {
  varintLo = lo;
  varintHi = hi;
  return pos;
}

const S = 0x73;
const T = 0x74;
const D = 0x64;
const O = 0x6f;
const U = 0x75;
const E = 0x65;
const R = 0x72;

/** 'stdout' -> 0, 'stderr' -> 1, anything else -> -1. */
function sourceAt(buf: Uint8Array, start: number, end: number): number {
  if (end - start !== 6 || buf[start] !== S || buf[start + 1] !== T || buf[start + 2] !== D) return -1;
  const a = buf[start + 3];
  const b = buf[start + 4];
  const c = buf[start + 5];
  if (a === O && b === U && c === T) return 0;
  if (a === E && b === R && c === R) return 1;
  return -1;
}

/** Skips a field of `wire` type at `pos`; returns the offset after it, or -1. */
function skipField(buf: Uint8Array, wire: number, pos: number, end: number): number {
  switch (wire) {
    case WIRE_VARINT:
      return readVarint(buf, pos, end);
    case WIRE_FIXED64:
      return pos + 8 <= end ? pos + 8 : -1;
    case WIRE_LEN: {
      const at = readVarint(buf, pos, end);
      if (at < 0 || varintHi !== 0 || varintLo < 0 || at + varintLo > end) return -1;
      return at + varintLo;
    }
    case WIRE_FIXED32:
      return pos + 4 <= end ? pos + 4 : -1;
    default:
      return -1; // groups: never in a LogEntry
  }
}

/** Reads `last` (field 1) of a PartialLogEntryMetadata in [pos, end); -1 if malformed. */
function scanMetadataLast(buf: Uint8Array, pos: number, end: number): number {
  let last = 0;
  while (pos < end) {
    pos = readVarint(buf, pos, end);
    if (pos < 0) return -1;
    const field = (varintLo >>> 3) | (varintHi << 29);
    const wire = varintLo & 7;
    if (field === 1 && wire === WIRE_VARINT) {
      pos = readVarint(buf, pos, end);
      if (pos < 0) return -1;
      last = varintLo !== 0 || varintHi !== 0 ? 1 : 0;
    } else {
      pos = skipField(buf, wire, pos, end);
      if (pos < 0) return -1;
    }
  }
  return last;
}

/**
 * Scans the LogEntry payload in buf[start, end) into `out`. Returns false for bytes that are
 * not a daemon entry (malformed, or a source other than stdout/stderr), as decodeLogEntry
 * would throw for them.
 */
export function scanEntry(buf: Uint8Array, start: number, end: number, out: EntryScan): boolean {
  let source = -1;
  out.timeHi = out.timeLo = out.timeStart = out.timeEnd = 0;
  out.lineStart = out.lineEnd = start;
  out.partial = out.partialLast = out.unusual = false;
  let pos = start;
  while (pos < end) {
    pos = readVarint(buf, pos, end);
    if (pos < 0) return false;
    const field = (varintLo >>> 3) | (varintHi << 29);
    const wire = varintLo & 7;
    if (wire === WIRE_LEN && (field === 1 || field === 3 || field === 5)) {
      const at = readVarint(buf, pos, end);
      if (at < 0 || varintHi !== 0 || varintLo < 0 || at + varintLo > end) return false;
      pos = at + varintLo;
      if (field === 1) source = sourceAt(buf, at, pos);
      else if (field === 3) {
        out.lineStart = at;
        out.lineEnd = pos;
      } else {
        const last = scanMetadataLast(buf, at, pos);
        if (last < 0) return false;
        out.partialLast = last === 1;
        out.unusual = true;
      }
    } else if (wire === WIRE_VARINT && (field === 2 || field === 4)) {
      const at = pos;
      pos = readVarint(buf, pos, end);
      if (pos < 0) return false;
      if (field === 2) {
        out.timeLo = varintLo;
        out.timeHi = varintHi;
        out.timeStart = at;
        out.timeEnd = pos;
      } else {
        // As protobufjs reads a bool: the varint's low 32 bits.
        out.partial = varintLo !== 0;
      }
    } else {
      pos = skipField(buf, wire, pos, end);
      if (pos < 0) return false;
      out.unusual = true;
    }
  }
  if (source < 0) return false;
  out.stderr = source === 1;
  return true;
}
