// Reads a container's store forward from a delivery cursor, across rotations and
// compressed segments, with the store reader's own range code. It reads only what the
// store holds now and says when it is caught up; the shipper decides when to wait.
//
// Records the follower can no longer read are reported, not hidden: a gap between the
// cursor and the next record it finds was evicted (rotation, quota) or is damaged.
import { type LogEntry, InvalidEntryError, decodeLogEntry } from '../fifo/log-entry.ts';
import { log } from '../observability/log.ts';
import type { StorePosition } from '../store/container-store.ts';
import { type Position, type Range, type StoreView, endPosition, isDamage, rangeRecords, rangesBetween } from '../store/log-reader.ts';
import { RECORD_OVERHEAD } from '../store/record-format.ts';
import type { StoreSnapshot } from '../store/segments.ts';

export interface StoredEntry {
  entry: LogEntry;
  /** Where the record starts. */
  at: StorePosition;
}

export interface FollowerRead {
  entries: StoredEntry[];
  /** Records between the previous read and these that are gone. */
  lost: { count: number; reason: 'evicted' | 'damaged' } | null;
}

export class StoreFollower {
  private readonly view: StoreView;
  /** The next record to read. */
  private pos: StorePosition;
  private active: AsyncGenerator<FollowerRead> | null = null;
  /** The store's end in the latest snapshot, when known. */
  private knownEnd: number | null = null;

  constructor(view: StoreView, from: StorePosition) {
    this.view = view;
    this.pos = from;
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

  private async *readSnapshot(snap: StoreSnapshot): AsyncGenerator<FollowerRead> {
    this.knownEnd = snap.endIndex;
    const segments = [...snap.closed.map((s) => ({ seq: s.seq, firstIndex: s.firstIndex }))];
    if (snap.current) segments.push({ seq: snap.current.seq, firstIndex: snap.current.firstIndex });
    const oldest = segments[0];
    if (!oldest) return;
    let from: Position;
    const hinted = segments.find((s) => s.seq === this.pos.seq);
    if (this.pos.index < oldest.firstIndex) {
      yield { entries: [], lost: { count: oldest.firstIndex - this.pos.index, reason: 'evicted' } };
      this.pos = { index: oldest.firstIndex, seq: oldest.seq, offset: 0 };
      from = { seq: oldest.seq, offset: 0, skipRecords: 0 };
    } else if (hinted && hinted.firstIndex <= this.pos.index) {
      from = { seq: this.pos.seq, offset: this.pos.offset, skipRecords: 0 };
    } else {
      // No usable byte hint: count records from the start of the segment holding the index.
      const seg = segments.findLast((s) => s.firstIndex <= this.pos.index)!;
      from = { seq: seg.seq, offset: 0, skipRecords: this.pos.index - seg.firstIndex };
      this.pos = { index: this.pos.index, seq: seg.seq, offset: 0 };
    }
    for (const range of rangesBetween(snap, from, endPosition(snap))) {
      if (range.seq !== this.pos.seq) {
        const firstIndex = segments.find((s) => s.seq === range.seq)!.firstIndex;
        const gap = firstIndex - this.pos.index;
        if (gap > 0) yield { entries: [], lost: { count: gap, reason: this.damaged ? 'damaged' : 'evicted' } };
        this.pos = { index: firstIndex, seq: range.seq, offset: 0 };
      }
      this.damaged = false;
      yield* this.readRange(range);
    }
  }

  /** Set when the rest of the last segment read was skipped as damaged. */
  private damaged = false;

  private async *readRange(range: Range): AsyncGenerator<FollowerRead> {
    try {
      for await (const { offset, payloads } of rangeRecords(this.view, range)) {
        const entries: StoredEntry[] = [];
        let at = offset;
        let index = this.pos.index;
        for (const payload of payloads) {
          const position = { index, seq: range.seq, offset: at };
          at += payload.length + RECORD_OVERHEAD;
          index++;
          try {
            entries.push({ entry: decodeLogEntry(payload), at: position });
          } catch (err) {
            // The FIFO reader stored only entries it could decode: this is damage on disk.
            if (!(err instanceof InvalidEntryError)) throw err;
          }
        }
        this.pos = { index, seq: range.seq, offset: at };
        yield { entries, lost: null };
      }
    } catch (err) {
      if (!isDamage(err)) throw err;
      log.warn('delivery: skipped the rest of a damaged segment', { dir: this.view.dir, seq: range.seq, error: String(err) });
      this.damaged = true;
    }
  }
}
