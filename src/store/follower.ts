// Reads a container's store forward from a delivery cursor, across rotations and
// compressed segments, with the store reader's own range code. It reads only what the
// store holds now and says when it is caught up; the shipper decides when to wait.
//
// Records the follower can no longer read are reported, not hidden: a gap between the
// cursor and the next record it finds was evicted (rotation, quota) or is damaged.
//
// A saved cursor is checked against the files before it is trusted. Its byte offset is only
// a hint for its record index, and after a power cut it can point past what reached the
// disk, or into bytes the writer has since cut off and written again. So the offset must lie
// within its segment, at the end of a whole record, and agree with the segment's counts;
// when it does not, the record is found by its index. An index past the end of the store
// means a power cut lost records the backend had shipped; the store gives their indexes to
// new lines, so the cursor is brought back to the end, or it would skip those.
import fs from 'node:fs';
import { type LogEntry, InvalidEntryError, decodeLogEntry } from '../codec/log-entry.ts';
import { log } from '../observability/log.ts';
import type { StorePosition } from './container-store.ts';
import { type Position, type Range, type StoreView, endPosition, isDamage, rangeRecords, rangesBetween } from './log-reader.ts';
import { RECORD_OVERHEAD, recordEndsAt, scanForwardSync } from './record-format.ts';
import { type StoreSnapshot, segmentPath } from './segments.ts';

export interface FollowerRead {
  entries: LogEntry[];
  /** Where each entry's record starts (two arrays rather than an object per entry). */
  at: StorePosition[];
  /** Records between the previous read and these that are gone. */
  lost: { count: number; reason: 'evicted' | 'damaged' } | null;
}

/** A segment as a cursor is checked against it; `count` is null where the store does not know it. */
interface SegmentBounds {
  seq: number;
  firstIndex: number;
  bytes: number;
  count: number | null;
  compressed: boolean;
  current: boolean;
}

function segmentBounds(snap: StoreSnapshot): SegmentBounds[] {
  const out: SegmentBounds[] = snap.closed.map((s) => ({ ...s, current: false }));
  if (snap.current) {
    const { seq, firstIndex, size } = snap.current;
    const count = snap.endIndex === null ? null : snap.endIndex - firstIndex;
    out.push({ seq, firstIndex, bytes: size, count, compressed: false, current: true });
  }
  return out;
}

/** Where a follower starts to ship everything the store still holds. */
export function oldestHeld(view: StoreView): StorePosition {
  let snap: StoreSnapshot;
  try {
    snap = view.snapshot();
  } catch {
    return { index: 0, seq: 0, offset: 0 }; // the follower's first read meets the same trouble, and retries
  }
  const first = snap.closed[0] ?? snap.current;
  if (first) return { index: first.firstIndex, seq: first.seq, offset: 0 };
  return { index: snap.endIndex ?? 0, seq: endPosition(snap).seq, offset: 0 };
}

export class StoreFollower {
  private readonly view: StoreView;
  /** The next record to read. */
  private pos: StorePosition;
  /**
   * Set while the cursor's record is known only by its index: `pos` is then the start of the
   * segment holding it, and the records before this index are skipped, not shipped.
   */
  private skipUntil: number | null = null;
  private active: AsyncGenerator<FollowerRead> | null = null;
  /** The store's end in the latest snapshot, when known. */
  private knownEnd: number | null = null;

  /** `from` is checked against the store here, before this process appends anything more. */
  constructor(view: StoreView, from: StorePosition) {
    this.view = view;
    this.pos = from;
    try {
      this.checkCursor(view.snapshot());
    } catch (err) {
      // The first read meets the same trouble and retries.
      log.warn('delivery: cannot check a cursor against the store', { dir: view.dir, error: String(err) });
    }
  }

  get position(): StorePosition {
    return this.pos;
  }

  /** The store's end index in the latest snapshot; null when unknown. */
  get end(): number | null {
    return this.knownEnd;
  }

  /**
   * The next records, or null once everything the store held when this call began has been
   * read: a caller that noted changeCount() before calling may wait for the next change.
   */
  async read(): Promise<FollowerRead | null> {
    for (;;) {
      const fresh = this.active === null;
      this.active ??= this.readSnapshot(this.view.snapshot());
      let next: IteratorResult<FollowerRead>;
      try {
        next = await this.active.next();
      } catch (err) {
        this.active = null;
        throw err;
      }
      if (!next.done) return next.value;
      this.active = null;
      // A generator made before the caller's changeCount() may have missed later appends.
      if (fresh) return null;
    }
  }

  /** Abandons a read in progress (its open file is closed). */
  async close(): Promise<void> {
    await this.active?.return(undefined);
    this.active = null;
  }

  /**
   * Keeps the cursor's offset if it holds; otherwise finds its record by index. In the
   * current segment that is done at once, reading the file as it is now: once this process
   * appends, records lost in a power cut and new lines would share indexes. (A full read of
   * the current segment, only for a cursor whose offset does not hold.)
   */
  private checkCursor(snap: StoreSnapshot): void {
    const segments = segmentBounds(snap);
    const oldest = segments[0];
    const { index } = this.pos;
    if (!oldest || index < oldest.firstIndex) return; // evicted: the first read counts the gap
    const named = segments.find((s) => s.seq === this.pos.seq);
    if (named) {
      if (this.offsetHolds(named)) return;
      log.warn('delivery: a cursor\'s byte offset does not match the store; finding its record by index', {
        dir: this.view.dir,
        ...this.pos,
      });
    }
    // (A segment that is gone was evicted: the next holds the index.)
    const seg = segments.findLast((s) => s.firstIndex <= index)!;
    if (!seg.current) {
      this.pos = { index: seg.firstIndex, seq: seg.seq, offset: 0 };
      this.skipUntil = index;
      return;
    }
    const fd = fs.openSync(segmentPath(this.view.dir, seg.seq, false), 'r');
    try {
      const { end, count } = scanForwardSync(fd, seg.bytes, this.view.maxPayload, index - seg.firstIndex);
      this.pos = { index: seg.firstIndex + count, seq: seg.seq, offset: end };
    } finally {
      fs.closeSync(fd);
    }
    if (this.pos.index < index) this.pastTheEnd(index);
  }

  /** Whether the cursor's offset lies in `seg` at the end of a whole record, as its index says. */
  private offsetHolds(seg: SegmentBounds): boolean {
    const { index, offset } = this.pos;
    if (index < seg.firstIndex || offset > seg.bytes) return false;
    if (seg.count !== null) {
      const last = seg.firstIndex + seg.count;
      if (index > last || (offset === seg.bytes) !== (index === last)) return false;
    }
    if (offset === 0) return index === seg.firstIndex;
    if (seg.compressed) return true; // no cheap way into a gzip stream: its bounds are what can be checked
    let fd: number;
    try {
      fd = fs.openSync(segmentPath(this.view.dir, seg.seq, false), 'r');
    } catch (err) {
      // Compressed meanwhile: the bounds above held.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw err;
    }
    try {
      return recordEndsAt(fd, offset, this.view.maxPayload);
    } finally {
      fs.closeSync(fd);
    }
  }

  private pastTheEnd(cursorIndex: number): void {
    log.warn('delivery: a cursor was past the end of the store (a crash lost records it had shipped); shipping from the end', {
      dir: this.view.dir,
      cursor: cursorIndex,
      end: this.pos.index,
    });
  }

  private async *readSnapshot(snap: StoreSnapshot): AsyncGenerator<FollowerRead> {
    this.knownEnd = snap.endIndex;
    const segments = [...snap.closed.map((s) => ({ seq: s.seq, firstIndex: s.firstIndex }))];
    if (snap.current) segments.push({ seq: snap.current.seq, firstIndex: snap.current.firstIndex });
    const oldest = segments[0];
    if (!oldest) return;
    const cursorIndex = this.skipUntil ?? this.pos.index;
    if (snap.endIndex !== null && cursorIndex > snap.endIndex) {
      const end = endPosition(snap);
      this.pos = { index: snap.endIndex, seq: end.seq, offset: end.offset };
      this.skipUntil = null;
      this.pastTheEnd(cursorIndex);
    }
    if (this.pos.index < oldest.firstIndex) {
      const cursor = this.skipUntil ?? this.pos.index;
      if (cursor < oldest.firstIndex) yield { entries: [], at: [], lost: { count: oldest.firstIndex - cursor, reason: 'evicted' } };
      if (this.skipUntil !== null && this.skipUntil <= oldest.firstIndex) this.skipUntil = null;
      this.pos = { index: oldest.firstIndex, seq: oldest.seq, offset: 0 };
    }
    if (!segments.some((s) => s.seq === this.pos.seq)) {
      // Its segment is gone (evicted after the cursor's last record in it): go on from the next.
      const seg = segments.findLast((s) => s.firstIndex <= this.pos.index)!;
      if (seg.firstIndex < this.pos.index) this.skipUntil = Math.max(this.skipUntil ?? 0, this.pos.index);
      this.pos = { index: seg.firstIndex, seq: seg.seq, offset: 0 };
    }
    const from: Position = { seq: this.pos.seq, offset: this.pos.offset, skipRecords: 0 };
    for (const range of rangesBetween(snap, from, endPosition(snap))) {
      if (range.seq !== this.pos.seq) {
        const firstIndex = segments.find((s) => s.seq === range.seq)!.firstIndex;
        const gap = firstIndex - (this.skipUntil ?? this.pos.index);
        if (gap > 0) yield { entries: [], at: [], lost: { count: gap, reason: this.damaged ? 'damaged' : 'evicted' } };
        if (this.skipUntil !== null && this.skipUntil <= firstIndex) this.skipUntil = null;
        this.pos = { index: firstIndex, seq: range.seq, offset: 0 };
      }
      this.damaged = false;
      yield* this.readRange(range);
    }
    // Records counted by index ran out: the cursor was beyond every record held.
    if (this.skipUntil !== null && this.skipUntil > this.pos.index) {
      const cursorIndex = this.skipUntil;
      this.skipUntil = null;
      this.pastTheEnd(cursorIndex);
    }
  }

  /** Set when the rest of the last segment read was skipped as damaged. */
  private damaged = false;

  private async *readRange(range: Range): AsyncGenerator<FollowerRead> {
    try {
      for await (const { offset, payloads } of rangeRecords(this.view, range)) {
        const entries: LogEntry[] = [];
        const starts: StorePosition[] = [];
        let at = offset;
        let index = this.pos.index;
        for (const payload of payloads) {
          const position = { index, seq: range.seq, offset: at };
          at += payload.length + RECORD_OVERHEAD;
          index++;
          // Before the cursor's record (found by index): shipped already.
          if (this.skipUntil !== null && position.index < this.skipUntil) continue;
          try {
            entries.push(decodeLogEntry(payload));
            starts.push(position);
          } catch (err) {
            // The FIFO reader stored only entries it could decode: this is damage on disk.
            if (!(err instanceof InvalidEntryError)) throw err;
          }
        }
        this.pos = { index, seq: range.seq, offset: at };
        if (this.skipUntil !== null && index >= this.skipUntil) this.skipUntil = null;
        yield { entries, at: starts, lost: null };
      }
    } catch (err) {
      if (!isDamage(err)) throw err;
      log.warn('delivery: skipped the rest of a damaged segment', { dir: this.view.dir, seq: range.seq, error: String(err) });
      this.damaged = true;
    }
  }
}
