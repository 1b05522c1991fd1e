// Splits the daemon's byte stream into frames: [uint32 big-endian length][LogEntry payload].
// The daemon writes one frame per write(), but reads see arbitrary cuts, so a frame may
// span any number of chunks.

/** The local driver's and the reference plugin's cap: no daemon frame comes near it. */
export const MAX_FRAME_BYTES = 1 << 20;

const HEADER = 4;
// Every daemon frame starts its payload with field 1 (source): 0x0a 0x06 "stdout"|"stderr".
const SOURCE_PREFIX = Buffer.from([0x0a, 0x06, 0x73, 0x74, 0x64]); // \n \x06 s t d
/** No LogEntry the daemon sends is shorter: its source field alone takes 8 bytes. */
export const MIN_FRAME_PAYLOAD = 8;

export interface DeframeResult {
  /** The bytes the frames are in: the chunk, or the bytes held back joined with it. */
  buf: Buffer;
  /** Complete frame i, with its 4-byte header, is buf[starts[i], ends[i]). */
  starts: Int32Array;
  ends: Int32Array;
  /** Bytes discarded to find a frame boundary again after an impossible length. */
  skippedBytes: number;
}

/**
 * Where push() notes the frames it finds, shared by every Deframer: a push and the use of its
 * result run together on the one JS thread, and an idle container holds no offsets. Arrays
 * grown frame by frame on every read showed in the plugin's profile.
 */
let frameStarts = new Int32Array(1024);
let frameEnds = new Int32Array(1024);

function noteFrame(count: number, start: number, end: number): void {
  if (count === frameStarts.length) {
    const starts = new Int32Array(count * 2);
    const ends = new Int32Array(count * 2);
    starts.set(frameStarts);
    ends.set(frameEnds);
    frameStarts = starts;
    frameEnds = ends;
  }
  frameStarts[count] = start;
  frameEnds[count] = end;
}

export class Deframer {
  private pending: Buffer = Buffer.alloc(0);
  /** Where held-back bytes and the next chunk are joined; kept while a frame is split. */
  private joined: Buffer | null = null;
  /** Out of step: the next frame start must show the source field, not just a length. */
  private resyncing = false;
  private readonly maxFrame: number;

  constructor(maxFrame = MAX_FRAME_BYTES) {
    this.maxFrame = maxFrame;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  /**
   * Continues a stream that another reader (a previous plugin process) was reading:
   * `pending` is what it read and did not store. The stream may still start mid-frame (that
   * reader may have died before it could say), so the first frame must show the source
   * field, not just a length.
   */
  resume(pending: Buffer): void {
    this.pending = Buffer.from(pending);
    this.resyncing = true;
  }

  /** The bytes held back: the start of a frame not yet complete. */
  heldBack(): Buffer {
    return this.pending;
  }

  /**
   * The result's buf may be the chunk or a buffer reused by the next push, and its offsets
   * are overwritten by the next push of any Deframer: use them before then.
   */
  push(chunk: Buffer): DeframeResult {
    const buf = this.pending.length === 0 ? chunk : this.join(chunk);
    let count = 0;
    let skippedBytes = 0;
    let pos = 0;
    while (buf.length - pos >= HEADER) {
      if (this.resyncing) {
        const start = this.findFrameStart(buf, pos);
        skippedBytes += start - pos;
        pos = start;
        if (buf.length - pos < HEADER + SOURCE_PREFIX.length) break; // wait for more bytes
        this.resyncing = false;
      }
      const length = buf.readUInt32BE(pos);
      if (length < MIN_FRAME_PAYLOAD || length > this.maxFrame) {
        // A length no daemon writes: never allocate it; find the next frame start instead.
        this.resyncing = true;
        skippedBytes += 1;
        pos += 1;
        continue;
      }
      if (buf.length - pos < HEADER + length) break;
      noteFrame(count++, pos, pos + HEADER + length);
      pos += HEADER + length;
    }
    // Copy the remainder: the chunk's buffer is reused by the FIFO reader.
    this.pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    if (this.pending.length === 0) this.joined = null; // an idle container holds no buffer
    return { buf, starts: frameStarts.subarray(0, count), ends: frameEnds.subarray(0, count), skippedBytes };
  }

  private join(chunk: Buffer): Buffer {
    const size = this.pending.length + chunk.length;
    if (!this.joined || this.joined.length < size) this.joined = Buffer.allocUnsafe(size);
    this.pending.copy(this.joined, 0);
    chunk.copy(this.joined, this.pending.length);
    return this.joined.subarray(0, size);
  }

  /**
   * The first offset >= from that holds a plausible length followed by the source field,
   * or, if there is none, the offset of the shortest tail that could still begin one.
   */
  private findFrameStart(buf: Buffer, from: number): number {
    let at = from + HEADER;
    for (;;) {
      const hit = buf.indexOf(SOURCE_PREFIX, at);
      if (hit < 0) break;
      const length = buf.readUInt32BE(hit - HEADER);
      if (length >= MIN_FRAME_PAYLOAD && length <= this.maxFrame) return hit - HEADER;
      at = hit + 1;
    }
    return Math.max(from, buf.length - (HEADER + SOURCE_PREFIX.length - 1));
  }
}
