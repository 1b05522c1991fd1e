// What a backend's shipping loop does to stored entries before batching them: partial
// chunks reassembled into lines, then (with the multiline log-opts) lines joined into
// events per stream, then (with parse-json) JSON objects parsed into fields. Fragments the
// assembler could not make whole pass through untouched. Each stage keeps the mark of the
// first record it still holds, so the delivery cursor never passes anything not yet shipped.
import type { LogEntry } from '../codec/log-entry.ts';
import { TOO_DEEP, jsonObjectFields } from './json-fields.ts';
import { type GroupedLine, type MultilineOptions, MultilineGrouper } from './multiline.ts';
import { PartialAssembler } from './partial.ts';
import type { OutgoingLine } from './line.ts';

export interface LineShaping {
  /** Null: every line is its own event. */
  multiline: MultilineOptions | null;
  parseJson: boolean;
}

/** What the shaper tells as it goes, for counting. */
export interface ShapingEvents {
  /** A multiline event of two lines or more was formed. */
  joined?(): void;
  /** A parse-json line nested too deep for the backends ships as plain text. */
  tooDeep?(): void;
}

export class LineShaper<M> {
  private readonly assembler = new PartialAssembler<M>();
  private readonly grouper: MultilineGrouper<M> | null;
  private readonly parseJson: boolean;
  private readonly events: ShapingEvents;

  constructor(shaping: LineShaping, events: ShapingEvents = {}) {
    this.events = events;
    this.grouper = shaping.multiline ? new MultilineGrouper<M>(shaping.multiline, () => events.joined?.()) : null;
    this.parseJson = shaping.parseJson;
  }

  /** The lines or events this entry completes, in order. `mark` is the entry's position. */
  push(entry: LogEntry, mark: M, nowMs: number): OutgoingLine[] {
    const lines = this.assembler.push(entry, mark);
    if (this.grouper === null) {
      // In place: the plain path allocates nothing more than the assembler did.
      const out = lines as unknown as OutgoingLine[];
      for (let i = 0; i < lines.length; i++) out[i] = this.parseJson ? this.shaped(lines[i]!) : outgoing(lines[i]!);
      return out;
    }
    const out: OutgoingLine[] = [];
    for (const line of lines) for (const event of this.grouper.push(line, nowMs)) out.push(this.shaped(event));
    return out;
  }

  /** Events the flush timeout closed by `nowMs`. */
  flushIdle(nowMs: number): OutgoingLine[] {
    return this.grouper ? this.grouper.flushIdle(nowMs).map((e) => this.shaped(e)) : [];
  }

  /** When flushIdle will next close an event (Date.now() time); null if none waits. */
  nextDeadline(): number | null {
    return this.grouper?.nextDeadline() ?? null;
  }

  /** Everything still held, as final: the stream has ended. */
  flush(): OutgoingLine[] {
    const lines = this.assembler.flush();
    if (this.grouper === null) return lines.map((l) => this.shaped(l));
    const out: OutgoingLine[] = [];
    for (const line of lines) for (const event of this.grouper.push(line, Date.now())) out.push(this.shaped(event));
    for (const event of this.grouper.flush()) out.push(this.shaped(event));
    return out;
  }

  /** Marks of the first records of lines and events still open. */
  openMarks(): M[] {
    const marks = this.assembler.openMarks();
    if (this.grouper) marks.push(...this.grouper.openMarks());
    return marks;
  }

  private shaped(line: GroupedLine<M>): OutgoingLine {
    const out = outgoing(line);
    if (this.parseJson && !line.fragment) {
      const fields = jsonObjectFields(line.line);
      if (fields === TOO_DEEP) this.events.tooDeep?.();
      else if (fields) out.fields = fields;
    }
    return out;
  }
}

function outgoing(line: GroupedLine<unknown>): OutgoingLine {
  const out: OutgoingLine = { source: line.source, timeNano: line.timeNano, line: line.line };
  if (line.fragment) out.partial = line.fragment;
  return out;
}
