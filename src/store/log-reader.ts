// Reads a container's store for `docker logs`: history with tail/since/until, then, with
// follow, new records as they are written, across rotations, until logging ends.
//
// Semantics are json-file's (moby loggerutils): the tail window is cut first, `since` then
// drops entries until the first one at or after it, and the first entry after `until`
// ends the read. Tail counts records, so each 16 KiB chunk of a long line counts as one.
// Entries are handed on as stored (the daemon's payloads, views of the read buffers); only
// since/until look into them, and only at their time.
import fs from 'node:fs';
import { createGunzip } from 'node:zlib';
import { EntryScan, scanEntry } from '../codec/entry-scan.ts';
import { log } from '../observability/log.ts';
import { CorruptRecordError, RECORD_OVERHEAD, RecordParser, scanBackward, scanForward } from './record-format.ts';
import { type SegmentInfo, type StoreSnapshot, segmentPath } from './segments.ts';

export interface ReadRequest {
  /** Entries before it are skipped; null = no bound. */
  sinceNano: bigint | null;
  /** The first entry after it ends the read; null = no bound. */
  untilNano: bigint | null;
  /** < 0: all history; 0: none; n: the last n records. */
  tail: number;
  follow: boolean;
}

/** What the reader needs from the live store. */
export interface StoreView {
  readonly dir: string;
  readonly maxPayload: number;
  snapshot(): StoreSnapshot;
  /** True while a producer may still append. */
  isLive(): boolean;
  /** Counts appends and producer exits; a follower notes it before reading. */
  changeCount(): number;
  /** Resolves once changeCount() differs from `seen`, or when `signal` aborts. */
  nextChange(seen: number, signal: AbortSignal): Promise<void>;
}

/** A place in the store: byte offset in segment seq, or a count of records to skip there. */
export interface Position {
  seq: number;
  offset: number;
  skipRecords: number;
}

// 64 KiB, not more: each chunk's entries are alive across the reply's write, and with 256 KiB
// 50 docker logs (4 at a time) left the plugin 30 MB bigger instead of 7-15 MB, for no
// measurable gain in speed (bench/pipeline.ts: 1M lines read in 0.3-0.5 s either way).
const READ_CHUNK = 64 * 1024;

export async function* readStore(view: StoreView, req: ReadRequest, signal: AbortSignal): AsyncGenerator<Buffer[]> {
  const filter = new TimeFilter(req.sinceNano, req.untilNano);
  let seen = view.changeCount();
  let live = view.isLive();
  let snap = view.snapshot();
  let from = await startPosition(view, snap, req);
  for (;;) {
    const to = endPosition(snap);
    for (const range of rangesBetween(snap, from, to)) {
      for await (const batch of readRange(view, range)) {
        const out = filter.apply(batch);
        if (out.length > 0) yield out;
        if (filter.done || signal.aborted) return;
      }
    }
    if (!req.follow || !live || signal.aborted) return;
    // Follow: wait for what was written since `seen`, then read from where we stopped.
    await view.nextChange(seen, signal);
    seen = view.changeCount();
    live = view.isLive();
    snap = view.snapshot();
    from = to;
  }
}

/** json-file's since/until rules, kept across batches. */
class TimeFilter {
  private sincePassed: boolean;
  done = false;
  private readonly since: bigint | null;
  private readonly until: bigint | null;

  constructor(since: bigint | null, until: bigint | null) {
    this.since = since;
    this.until = until;
    this.sincePassed = since === null;
  }

  private readonly scan = new EntryScan();

  apply(batch: Buffer[]): Buffer[] {
    if (this.sincePassed && this.until === null) return batch;
    const out: Buffer[] = [];
    for (const entry of batch) {
      if (!scanEntry(entry, 0, entry.length, this.scan)) continue;
      const timeNano = this.scan.timeNano();
      if (!this.sincePassed) {
        if (timeNano < this.since!) continue;
        this.sincePassed = true; // later entries are not filtered again: times are not monotonic
      }
      if (this.until !== null && timeNano > this.until) {
        this.done = true;
        break;
      }
      out.push(entry);
    }
    return out;
  }
}

export function endPosition(snap: StoreSnapshot): Position {
  if (snap.current) return { seq: snap.current.seq, offset: snap.current.size, skipRecords: 0 };
  const last = snap.closed.at(-1);
  return last ? { seq: last.seq + 1, offset: 0, skipRecords: 0 } : { seq: 0, offset: 0, skipRecords: 0 };
}

async function startPosition(view: StoreView, snap: StoreSnapshot, req: ReadRequest): Promise<Position> {
  if (req.tail === 0) return endPosition(snap);
  const first = snap.closed[0]?.seq ?? snap.current?.seq ?? 0;
  let pos: Position = { seq: first, offset: 0, skipRecords: 0 };
  if (req.tail > 0) pos = await tailPosition(view, snap, req.tail);
  if (req.sinceNano !== null) {
    // Segments whose newest entry is before `since` hold nothing to send.
    const firstUseful = snap.closed.find((s) => s.seq >= pos.seq && s.maxNano >= req.sinceNano!);
    const sinceSeq = firstUseful?.seq ?? snap.current?.seq ?? endPosition(snap).seq;
    if (sinceSeq > pos.seq) pos = { seq: sinceSeq, offset: 0, skipRecords: 0 };
  }
  return pos;
}

async function tailPosition(view: StoreView, snap: StoreSnapshot, tail: number): Promise<Position> {
  let remaining = tail;
  if (snap.current && snap.current.size > 0) {
    const file = await fs.promises.open(segmentPath(view.dir, snap.current.seq, false), 'r');
    try {
      const { offset, count } = await tailOfSegment(file, snap.current.size, remaining, view);
      if (count === remaining) return { seq: snap.current.seq, offset, skipRecords: 0 };
      remaining -= count;
    } finally {
      await file.close();
    }
  }
  for (let i = snap.closed.length - 1; i >= 0; i--) {
    const seg = snap.closed[i]!;
    if (seg.count >= remaining) return { seq: seg.seq, offset: 0, skipRecords: seg.count - remaining };
    remaining -= seg.count;
  }
  return { seq: snap.closed[0]?.seq ?? snap.current?.seq ?? 0, offset: 0, skipRecords: 0 };
}

/**
 * Where the last `limit` records of a plain segment start. A segment no writer has open may
 * end in a torn record (a crash in the middle of a write, a power cut): the walk back from
 * its end finds that, and the whole records before the tear are found by reading forward.
 */
async function tailOfSegment(
  file: fs.promises.FileHandle,
  size: number,
  limit: number,
  view: Pick<StoreView, 'dir' | 'maxPayload'>,
): Promise<{ offset: number; count: number }> {
  try {
    return await scanBackward(file, size, limit, view.maxPayload);
  } catch (err) {
    if (!isDamage(err)) throw err;
  }
  const { end } = await scanForward(file, size, view.maxPayload);
  log.warn('store: a segment ends in a torn record; reading the whole records before it', { dir: view.dir, bytes: size - end });
  return scanBackward(file, end, limit, view.maxPayload);
}

export interface Range {
  seq: number;
  compressed: boolean;
  fromByte: number;
  skipRecords: number;
  /** Uncompressed end; a closed segment is read to its end. */
  toByte: number;
}

/** The pieces of segments between two positions, oldest first; evicted segments are gone. */
export function rangesBetween(snap: StoreSnapshot, from: Position, to: Position): Range[] {
  const ranges: Range[] = [];
  const segments: (SegmentInfo | { seq: number; compressed: false; bytes: number })[] = [...snap.closed];
  if (snap.current) segments.push({ seq: snap.current.seq, compressed: false, bytes: snap.current.size });
  for (const seg of segments) {
    if (seg.seq < from.seq || seg.seq > to.seq) continue;
    const fromByte = seg.seq === from.seq ? from.offset : 0;
    const skipRecords = seg.seq === from.seq ? from.skipRecords : 0;
    const toByte = seg.seq === to.seq ? to.offset : seg.bytes;
    if (toByte > fromByte) ranges.push({ seq: seg.seq, compressed: seg.compressed, fromByte, skipRecords, toByte });
  }
  return ranges;
}

async function* readRange(view: StoreView, range: Range): AsyncGenerator<Buffer[]> {
  try {
    for await (const { payloads } of rangeRecords(view, range)) yield payloads;
  } catch (err) {
    // One damaged segment must not cost the reader the segments after it.
    if (!isDamage(err)) throw err;
    log.warn('store: skipped the rest of a damaged segment', { dir: view.dir, seq: range.seq, error: String(err) });
  }
}

/** An error that means the segment's bytes are damaged, not that reading failed. */
export function isDamage(err: unknown): boolean {
  return err instanceof CorruptRecordError || (err as NodeJS.ErrnoException).code === 'Z_DATA_ERROR';
}

/**
 * The record payloads of a range, after its skipRecords, in batches; `offset` is where the
 * batch's first record starts in the segment's uncompressed bytes.
 */
export async function* rangeRecords(
  view: Pick<StoreView, 'dir' | 'maxPayload'>,
  range: Range,
): AsyncGenerator<{ offset: number; payloads: Buffer[] }> {
  const parser = new RecordParser(view.maxPayload);
  let toSkip = range.skipRecords;
  for await (const chunk of rangeBytes(view.dir, range)) {
    // Where this push's first record starts; counted by the parser, not per record here.
    let offset = range.fromByte + parser.recordBytes;
    let payloads = parser.push(chunk);
    if (toSkip > 0) {
      const skipped = payloads.slice(0, toSkip);
      for (const p of skipped) offset += p.length + RECORD_OVERHEAD;
      toSkip -= skipped.length;
      payloads = payloads.slice(skipped.length);
    }
    if (payloads.length > 0) yield { offset, payloads };
    // The whole records before the damage were handed on first.
    if (parser.damage) throw parser.damage;
  }
}

/** Uncompressed bytes [fromByte, toByte) of a segment, from whichever file holds it now. */
async function* rangeBytes(dir: string, range: Range): AsyncGenerator<Buffer> {
  // A plain segment may be compressed (and its plain file removed) at any moment.
  const order = range.compressed ? [true, false] : [false, true];
  for (const compressed of order) {
    let file: fs.promises.FileHandle;
    try {
      file = await fs.promises.open(segmentPath(dir, range.seq, compressed), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    try {
      yield* compressed ? gunzipRange(file, range) : plainRange(file, range);
    } finally {
      await file.close();
    }
    return;
  }
  // Neither file exists: the segment was evicted by max-file while we were behind.
}

async function* plainRange(file: fs.promises.FileHandle, range: Range): AsyncGenerator<Buffer> {
  for (let pos = range.fromByte; pos < range.toByte; ) {
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, range.toByte - pos));
    const { bytesRead } = await file.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

async function* gunzipRange(file: fs.promises.FileHandle, range: Range): AsyncGenerator<Buffer> {
  let pos = 0;
  const gunzip = file.createReadStream({ autoClose: false, highWaterMark: READ_CHUNK }).pipe(createGunzip({ chunkSize: READ_CHUNK }));
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    const start = Math.max(0, range.fromByte - pos);
    const stop = Math.min(chunk.length, range.toByte - pos);
    pos += chunk.length;
    if (stop > start) yield chunk.subarray(start, stop);
    if (pos >= range.toByte) break;
  }
  gunzip.destroy();
}
