// Reassembles lines the daemon split into 16 KiB chunks (partial=true, same id, ordinals
// 1..n, last=true on the final chunk) into whole lines for the stages that ship lines.
// The local store keeps chunks as the daemon sent them: json-file counts them apart for
// --tail, and `docker logs` joins them because only the last chunk ends with '\n'.
//
// A group ends at its last chunk, at a chunk of another id on the same stream, or at
// flush() (EOF: a final line without '\n' never gets a last chunk). A group that grows
// past the cap is emitted in pieces of at most the cap rather than held without bound.
import type { LogEntry, Source } from '../fifo/log-entry.ts';

export interface Line {
  source: Source;
  /** The first chunk's time, as the daemon stamps every chunk of a line. */
  timeNano: bigint;
  line: Buffer;
  /** Not a whole line: the cap cut it, or the stream ended before its last chunk. */
  incomplete: boolean;
}

interface Group {
  id: string;
  timeNano: bigint;
  chunks: Buffer[];
  bytes: number;
}

export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

export class PartialAssembler {
  private readonly groups = new Map<Source, Group>();
  private readonly maxLineBytes: number;

  constructor(maxLineBytes = DEFAULT_MAX_LINE_BYTES) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Lines completed by this entry, in order (usually zero or one). */
  push(entry: LogEntry): Line[] {
    const out: Line[] = [];
    const group = this.groups.get(entry.source);
    const meta = entry.partialMetadata;
    if (!entry.partial) {
      if (group) out.push(this.take(entry.source, true));
      out.push({ source: entry.source, timeNano: entry.timeNano, line: entry.line, incomplete: false });
      return out;
    }
    const id = meta?.id ?? '';
    let current = group;
    if (current && current.id !== id) {
      out.push(this.take(entry.source, true));
      current = undefined;
    }
    if (!current) {
      current = { id, timeNano: entry.timeNano, chunks: [], bytes: 0 };
      this.groups.set(entry.source, current);
    }
    let line = entry.line;
    while (current.bytes + line.length > this.maxLineBytes) {
      const room = this.maxLineBytes - current.bytes;
      current.chunks.push(line.subarray(0, room));
      current.bytes += room;
      line = line.subarray(room);
      out.push(this.take(entry.source, true));
      current = { id, timeNano: entry.timeNano, chunks: [], bytes: 0 };
      this.groups.set(entry.source, current);
    }
    current.chunks.push(line);
    current.bytes += line.length;
    if (meta?.last) out.push(this.take(entry.source, false));
    return out;
  }

  /** Emits every group still open, as incomplete lines: the stream has ended. */
  flush(): Line[] {
    return [...this.groups.keys()].map((source) => this.take(source, true));
  }

  private take(source: Source, incomplete: boolean): Line {
    const group = this.groups.get(source)!;
    this.groups.delete(source);
    return { source, timeNano: group.timeNano, line: Buffer.concat(group.chunks, group.bytes), incomplete };
  }
}
