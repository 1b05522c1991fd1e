// Reassembles lines the daemon split into 16 KiB chunks (partial=true, same id, ordinals
// 1..n, last=true on the final chunk) into whole lines for the stages that ship lines.
// The local store keeps chunks as the daemon sent them: json-file counts them apart for
// --tail, and `docker logs` joins them because only the last chunk ends with '\n'.
//
// A group ends at its last chunk, at a chunk of another id on the same stream, or at
// flush() (EOF: a final line without '\n' never gets a last chunk). A group that grows
// past the cap is emitted in pieces of at most the cap rather than held without bound.
//
// Chunks must come with consecutive ordinals. One can be missing: dropped with garbage on
// the FIFO, or damaged or evicted in the store before it was shipped (each counted where it
// was lost). The line can then never be whole: what came before the hole is emitted as a
// piece, the rest as the next pieces, and the hole takes a piece number of its own, so a
// receiver that joins pieces by ordinal sees it.
//
// Each group remembers a caller's mark (a store position) of its first chunk, so a
// delivery cursor never passes the start of a line that is not yet whole.
import type { LogEntry, PartialMetadata, Source } from '../codec/log-entry.ts';

export interface Line<M = void> {
  source: Source;
  /** The first chunk's time, as the daemon stamps every chunk of a line. */
  timeNano: bigint;
  line: Buffer;
  /** Not a whole line: the cap cut it, a chunk of it is missing, or the stream ended before its last chunk. */
  incomplete: boolean;
  /**
   * For an incomplete line: the daemon's partial id, the piece's number from 1, and whether
   * it ends the daemon's group (the last piece of a line the cap cut).
   */
  fragment: PartialMetadata | null;
  /** The caller's mark of the line's first chunk. */
  mark: M;
}

interface Group<M> {
  id: string;
  timeNano: bigint;
  chunks: Buffer[];
  bytes: number;
  /** Pieces of this daemon group already emitted or missing. */
  pieces: number;
  /** The daemon's ordinal the next chunk must have; 0 when it sends none. */
  next: number;
  mark: M;
}

export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

export class PartialAssembler<M = void> {
  private readonly groups = new Map<Source, Group<M>>();
  private readonly maxLineBytes: number;

  constructor(maxLineBytes = DEFAULT_MAX_LINE_BYTES) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Lines completed by this entry, in order (usually zero or one). `mark` tags a group it starts (optional when M is void). */
  push(entry: LogEntry, mark: M): Line<M>[] {
    const out: Line<M>[] = [];
    const group = this.groups.get(entry.source);
    const meta = entry.partialMetadata;
    if (!entry.partial) {
      if (group) out.push(this.take(entry.source, 'cut'));
      out.push({ source: entry.source, timeNano: entry.timeNano, line: entry.line, incomplete: false, fragment: null, mark });
      return out;
    }
    const id = meta?.id ?? '';
    const ordinal = meta?.ordinal ?? 0;
    let current = group;
    if (current && current.id !== id) {
      out.push(this.take(entry.source, 'cut'));
      current = undefined;
    }
    if (current && ordinal > 0 && current.next > 0 && ordinal !== current.next) {
      const pieces = current.pieces + 2; // the hole is a piece too
      if (current.bytes > 0) out.push(this.take(entry.source, 'cut'));
      current = this.open(entry, id, pieces, mark);
    }
    // A line whose first chunks are missing starts at piece 2.
    current ??= this.open(entry, id, ordinal > 1 ? 1 : 0, mark);
    let line = entry.line;
    while (current.bytes + line.length > this.maxLineBytes) {
      const room = this.maxLineBytes - current.bytes;
      current.chunks.push(line.subarray(0, room));
      current.bytes += room;
      line = line.subarray(room);
      out.push(this.take(entry.source, 'cut'));
      current = this.open(entry, id, current.pieces + 1, mark);
    }
    current.chunks.push(line);
    current.bytes += line.length;
    current.next = ordinal > 0 ? ordinal + 1 : 0;
    if (meta?.last) out.push(this.take(entry.source, 'last'));
    return out;
  }

  private open(entry: LogEntry, id: string, pieces: number, mark: M): Group<M> {
    const group = { id, timeNano: entry.timeNano, chunks: [], bytes: 0, pieces, next: 0, mark };
    this.groups.set(entry.source, group);
    return group;
  }

  /** Emits every group still open, as incomplete lines: the stream has ended. */
  flush(): Line<M>[] {
    return [...this.groups.keys()].map((source) => this.take(source, 'cut'));
  }

  /** How many groups are open (one per stream at most). */
  get openGroups(): number {
    return this.groups.size;
  }

  /** The marks of the groups still open: the chunks they hold are not yet in any line. */
  openMarks(): M[] {
    return [...this.groups.values()].map((g) => g.mark);
  }

  /** `bound`, or the earliest open mark if one is `earlier`. */
  earliestOpen(bound: M, earlier: (a: M, b: M) => boolean): M {
    for (const g of this.groups.values()) if (earlier(g.mark, bound)) bound = g.mark;
    return bound;
  }

  /** `last`: the daemon's last chunk ended the group; `cut`: the cap, a hole or another line did. */
  private take(source: Source, end: 'cut' | 'last'): Line<M> {
    const group = this.groups.get(source)!;
    this.groups.delete(source);
    const line = Buffer.concat(group.chunks, group.bytes);
    // A line the daemon ended, with no piece emitted or missing before, is whole.
    if (end === 'last' && group.pieces === 0) return { source, timeNano: group.timeNano, line, incomplete: false, fragment: null, mark: group.mark };
    const fragment = { id: group.id, ordinal: group.pieces + 1, last: end === 'last' };
    return { source, timeNano: group.timeNano, line, incomplete: true, fragment, mark: group.mark };
  }
}
