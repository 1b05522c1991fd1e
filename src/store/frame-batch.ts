// The frames of one FIFO read on their way to the store: where each lies in the read's bytes
// and its time, in flat arrays instead of an object, a Buffer view and a BigInt per line. With
// decoding gone from the profile of a 1,000,000-line run, garbage collection of those per-line
// objects was the plugin's largest remaining cost (bench/pipeline.ts).

export class FrameBatch {
  /** The bytes the frames are in. */
  readonly buf: Buffer;
  /** Frame i is buf[starts[i], ends[i]): [uint32 BE n][n bytes of LogEntry], as the daemon sent it. */
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** Frame i's time_nano as two's-complement 32-bit halves: exact, and no BigInt per line. */
  private readonly timeHi: number[] = [];
  private readonly timeLo: number[] = [];

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  get length(): number {
    return this.starts.length;
  }

  add(start: number, end: number, timeHi: number, timeLo: number): void {
    this.starts.push(start);
    this.ends.push(end);
    this.timeHi.push(timeHi | 0);
    this.timeLo.push(timeLo >>> 0);
  }

  /** A batch with the same frames in bytes of its own (this one's bytes are about to be reused). */
  copy(): FrameBatch {
    const first = this.starts[0] ?? 0;
    const copy = new FrameBatch(Buffer.from(this.buf.subarray(first, this.ends.at(-1) ?? first)));
    for (let i = 0; i < this.length; i++) {
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
