// The frames of one FIFO read on their way to the store: where each lies in the read's bytes
// and its time, in flat arrays instead of an object, a Buffer view and a BigInt per line. With
// decoding gone from the profile of a 1,000,000-line run, garbage collection of those per-line
// objects was the plugin's largest remaining cost (bench/pipeline.ts). The arrays are typed and
// kept from one read to the next (see reset): JS arrays grown line by line on every read, and
// time halves above 2^31 turning one into an array of doubles, showed in the plugin's profile.

/** Frames a new batch has room for before its arrays grow. */
const INITIAL_CAPACITY = 1024;

export class FrameBatch {
  /** The bytes the frames are in. */
  buf: Buffer;
  /** Frame i < length is buf[starts[i], ends[i]): [uint32 BE n][n bytes of LogEntry], as the daemon sent it. */
  starts: Int32Array;
  ends: Int32Array;
  /** Frame i's time_nano as two's-complement 32-bit halves: exact, and no BigInt per line. */
  private timeHi: Int32Array;
  private timeLo: Uint32Array;
  private count = 0;

  constructor(buf: Buffer, capacity = INITIAL_CAPACITY) {
    this.buf = buf;
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
    this.timeHi = new Int32Array(capacity);
    this.timeLo = new Uint32Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Empties the batch for the frames of another read, keeping its arrays. */
  reset(buf: Buffer): void {
    this.buf = buf;
    this.count = 0;
  }

  add(start: number, end: number, timeHi: number, timeLo: number): void {
    if (this.count === this.starts.length) this.grow();
    const i = this.count++;
    this.starts[i] = start;
    this.ends[i] = end;
    this.timeHi[i] = timeHi;
    this.timeLo[i] = timeLo;
  }

  private grow(): void {
    const capacity = this.starts.length * 2;
    const starts = new Int32Array(capacity);
    const ends = new Int32Array(capacity);
    const timeHi = new Int32Array(capacity);
    const timeLo = new Uint32Array(capacity);
    starts.set(this.starts);
    ends.set(this.ends);
    timeHi.set(this.timeHi);
    timeLo.set(this.timeLo);
    this.starts = starts;
    this.ends = ends;
    this.timeHi = timeHi;
    this.timeLo = timeLo;
  }

  /** A batch with the same frames in bytes of its own (this one's bytes are about to be reused). */
  copy(): FrameBatch {
    const first = this.count > 0 ? this.starts[0]! : 0;
    const last = this.count > 0 ? this.ends[this.count - 1]! : first;
    const copy = new FrameBatch(Buffer.from(this.buf.subarray(first, last)), Math.max(1, this.count));
    for (let i = 0; i < this.count; i++) {
      copy.add(this.starts[i]! - first, this.ends[i]! - first, this.timeHi[i]!, this.timeLo[i]!);
    }
    return copy;
  }

  /** The earliest and latest time_nano of frames [from, to), which must not be empty. */
  timeRange(from: number, to: number): { min: bigint; max: bigint } {
    let min = from;
    let max = from;
    for (let i = from + 1; i < to; i++) {
      if (this.before(i, min)) min = i;
      if (this.before(max, i)) max = i;
    }
    return { min: this.timeNano(min), max: this.timeNano(max) };
  }

  private before(i: number, j: number): boolean {
    const hi = this.timeHi[i]!;
    const otherHi = this.timeHi[j]!;
    return hi < otherHi || (hi === otherHi && this.timeLo[i]! < this.timeLo[j]!);
  }

  private timeNano(i: number): bigint {
    return (BigInt(this.timeHi[i]!) << 32n) | BigInt(this.timeLo[i]!);
  }
}
