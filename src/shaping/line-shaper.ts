// What a backend's shipping loop does to stored entries before batching them: partial
// chunks reassembled into lines, then (with the multiline log-opts) lines joined into
// events per stream, then the filters (a line dropped goes no further), then redaction, then
// (with parse-json) JSON objects parsed into fields, so fields never hold what was masked. Fragments the
// assembler could not make whole pass through untouched. Each stage keeps the mark of the
// first record it still holds, so the delivery cursor never passes anything not yet shipped.
import type { LogEntry } from '../codec/log-entry.ts';
import { type LineFilter, passes } from './filter.ts';
import { TOO_DEEP, jsonObjectFields } from './json-fields.ts';
import { type GroupedLine, type MultilineOptions, MultilineGrouper } from './multiline.ts';
import { PartialAssembler } from './partial.ts';
import type { OutgoingLine } from './line.ts';
import type { Redactor } from './redact.ts';

export interface LineShaping {
  /** Null: every line is its own event. */
  multiline: MultilineOptions | null;
  parseJson: boolean;
  /** Null: every line ships. */
  filter?: LineFilter | null;
}

/** What the shaper tells as it goes, for counting. */
export interface ShapingEvents {
  /** A multiline event of two lines or more was formed. */
  joined?(): void;
  /** A parse-json line nested too deep for the backends ships as plain text. */
  tooDeep?(): void;
  /** A line or event was filtered out. */
  filtered?(): void;
}

export class LineShaper<M> {
  private readonly assembler = new PartialAssembler<M>();
  private readonly grouper: MultilineGrouper<M> | null;
  private readonly parseJson: boolean;
  private readonly filter: LineFilter | null;
  private readonly redactor: Redactor | null;
  private readonly events: ShapingEvents;

  /** `redactor`: the container's (its env values bound in), null when nothing is masked. */
  constructor(shaping: LineShaping, events: ShapingEvents = {}, redactor: Redactor | null = null) {
    this.events = events;
    this.grouper = shaping.multiline ? new MultilineGrouper<M>(shaping.multiline, () => events.joined?.()) : null;
    this.parseJson = shaping.parseJson;
    this.filter = shaping.filter ?? null;
    this.redactor = redactor;
  }

  /** The lines or events this entry completes, in order. `mark` is the entry's position. */
  push(entry: LogEntry, mark: M, nowMs: number): OutgoingLine[] {
    const out: OutgoingLine[] = [];
    this.pushTo(entry, mark, nowMs, out);
    return out;
  }

  /** push(), appending to `out`: the shipper passes its queue, so no array is made per entry. */
  pushTo(entry: LogEntry, mark: M, nowMs: number, out: OutgoingLine[]): void {
    // A whole line with no chunks held is its own line: no assembler's array or Line for it.
    const whole = !entry.partial && this.assembler.openGroups === 0;
    if (this.grouper === null && this.filter === null && this.redactor === null) {
      if (whole) {
        const line: OutgoingLine = { source: entry.source, timeNano: entry.timeNano, line: entry.line };
        out.push(this.parseJson ? this.withFields(line) : line);
        return;
      }
      for (const line of this.assembler.push(entry, mark)) out.push(this.parseJson ? this.shaped(line) : outgoing(line));
      return;
    }
    if (whole) {
      this.group({ source: entry.source, timeNano: entry.timeNano, line: entry.line, fragment: null, mark }, nowMs, out);
      return;
    }
    for (const line of this.assembler.push(entry, mark)) this.group(line, nowMs, out);
  }

  /** The line through the grouper (if any), and what it gives through the filter to `out`. */
  private group(line: GroupedLine<M>, nowMs: number, out: OutgoingLine[]): void {
    if (this.grouper === null) {
      this.emit(line, out);
      return;
    }
    const events = this.grouper.push(line, nowMs);
    for (let i = 0; i < events.length; i++) this.emit(events[i]!, out);
  }

  /** Events the flush timeout closed by `nowMs`. */
  flushIdle(nowMs: number): OutgoingLine[] {
    const out: OutgoingLine[] = [];
    if (this.grouper) for (const event of this.grouper.flushIdle(nowMs)) this.emit(event, out);
    return out;
  }

  /** When flushIdle will next close an event (Date.now() time); null if none waits. */
  nextDeadline(): number | null {
    return this.grouper?.nextDeadline() ?? null;
  }

  /** Everything still held, as final: the stream has ended. */
  flush(): OutgoingLine[] {
    const lines = this.assembler.flush();
    const out: OutgoingLine[] = [];
    if (this.grouper === null) {
      for (const line of lines) this.emit(line, out);
      return out;
    }
    for (const line of lines) for (const event of this.grouper.push(line, Date.now())) this.emit(event, out);
    for (const event of this.grouper.flush()) this.emit(event, out);
    return out;
  }

  /**
   * `bound`, or the earliest mark of a line or event still open if one is `earlier`: asked by
   * the shipper after every entry that completed a line, so it makes no array.
   */
  earliestOpen(bound: M, earlier: (a: M, b: M) => boolean): M {
    if (this.assembler.openGroups > 0) bound = this.assembler.earliestOpen(bound, earlier);
    return this.grouper === null ? bound : this.grouper.earliestOpen(bound, earlier);
  }

  /** Appends the line to `out` unless a filter drops it. */
  private emit(line: GroupedLine<M>, out: OutgoingLine[]): void {
    if (this.filter !== null && !passes(this.filter, line.source, line.line)) {
      this.events.filtered?.();
      return;
    }
    out.push(this.shaped(line));
  }

  private shaped(line: GroupedLine<M>): OutgoingLine {
    const out = outgoing(line);
    if (this.redactor !== null) out.line = this.redactor.redact(out.line);
    return this.parseJson && !line.fragment ? this.withFields(out) : out;
  }

  /** `out` with its fields, if it is a JSON object (parse-json). */
  private withFields(out: OutgoingLine): OutgoingLine {
    const fields = jsonObjectFields(out.line);
    if (fields === TOO_DEEP) this.events.tooDeep?.();
    else if (fields) out.fields = fields;
    return out;
  }
}

function outgoing(line: GroupedLine<unknown>): OutgoingLine {
  const out: OutgoingLine = { source: line.source, timeNano: line.timeNano, line: line.line };
  if (line.fragment) out.partial = line.fragment;
  return out;
}
