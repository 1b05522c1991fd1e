// Multiline events: consecutive lines of one stream joined into one event (a stack trace
// arrives as one event, not forty), for what is shipped to backends only; the local copy
// and `docker logs` keep every line as the daemon sent it.
import type { PartialMetadata, Source } from '../codec/log-entry.ts';
import type { EventRules } from './event-rules.ts';
import { type GoRegexp, compileGoRegexp } from './go-regexp.ts';
import { type MultilinePreset, presetRules } from './multiline-presets.ts';

/** How a line is told to start a new event or to continue the open one. */
export type MultilineMatcher =
  /** A line matching `pattern` starts an event; any other line continues the open one. */
  | { kind: 'first-line'; pattern: GoRegexp }
  /** Built-in rules for the traces of a language runtime. */
  | { kind: 'preset'; preset: MultilinePreset };

export interface MultilineOptions {
  matcher: MultilineMatcher;
  /** An open event with no new line for this long is shipped as it is. */
  flushTimeoutMs: number;
  /** An event is shipped once it has this many lines, and the next line starts another. */
  maxLines: number;
  /** Nor does an event grow past this many bytes (its lines and the '\n's that join them). */
  maxBytes: number;
}

// The strftime directives Docker's awslogs driver converts for awslogs-datetime-format
// (moby daemon/logger/awslogs), with the same regular expressions, so a format picks the
// same lines here as there.
const STRFTIME: Record<string, string> = {
  '%a': '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)',
  '%A': '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)',
  '%w': '[0-6]',
  '%d': '(?:0[1-9]|[1,2][0-9]|3[0,1])',
  '%b': '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)',
  '%B': '(?:January|February|March|April|May|June|July|August|September|October|November|December)',
  '%m': '(?:0[1-9]|1[0-2])',
  '%Y': '\\d{4}',
  '%y': '\\d{2}',
  '%H': '(?:[0,1][0-9]|2[0-3])',
  '%I': '(?:0[0-9]|1[0-2])',
  '%p': '[A,P]M',
  '%M': '[0-5][0-9]',
  '%S': '[0-5][0-9]',
  '%f': '\\d{6}',
  '%z': '[+-]\\d{4}',
  '%Z': '[A-Z]{1,4}T',
  '%j': '(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])',
  '%L': '\\.\\d{3}',
};

export const STRFTIME_DIRECTIVES = Object.keys(STRFTIME);

/**
 * The first-line pattern of a datetime format, as Docker builds it: each directive replaced
 * by its expression and the rest left as regexp text, unanchored. Docker silently drops a
 * directive it does not know; here it is an error (a SyntaxError naming it), since a
 * dropped directive makes a pattern that matches lines it should not.
 */
export function datetimeFormatPattern(format: string): GoRegexp {
  const source = format.replace(/%./g, (directive) => {
    const re = STRFTIME[directive];
    if (re === undefined) {
      throw new SyntaxError(`'${directive}' is not a supported directive (supported: ${STRFTIME_DIRECTIVES.join(' ')})`);
    }
    return re;
  });
  if (/%$/.test(source)) throw new SyntaxError(`a lone '%' ends the format`);
  return compileGoRegexp(source);
}

/** A pattern's rules: a match starts an event; lines before the stream's first match go alone. */
class FirstLineRules implements EventRules {
  private readonly pattern: GoRegexp;
  private matchedOnce = false;
  /** The last line tested: starts() follows continues() on the same line when it does not continue. */
  private lastText: string | null = null;
  private lastMatch = false;

  constructor(pattern: GoRegexp) {
    this.pattern = pattern;
  }

  private matches(text: string): boolean {
    if (text !== this.lastText) {
      this.lastText = text;
      this.lastMatch = this.pattern.test(text);
    }
    return this.lastMatch;
  }

  starts(text: string): boolean {
    if (this.matches(text)) this.matchedOnce = true;
    return this.matchedOnce;
  }

  continues(text: string): boolean {
    return !this.matches(text);
  }
}

/** A line as the grouper takes and gives it: one whole line, or a fragment that passes through. */
export interface GroupedLine<M> {
  source: Source;
  timeNano: bigint;
  line: Buffer;
  /** A piece of a line the partial assembler could not make whole: never joined. */
  fragment: PartialMetadata | null;
  /** The caller's mark (a store position) of the first record of the line or event. */
  mark: M;
}

interface OpenEvent<M> {
  first: GroupedLine<M>;
  /** The lines so far, with the '\n's that join them; null while it is its first line alone (most events). */
  parts: Buffer[] | null;
  bytes: number;
  lines: number;
  /** When its last line reached the grouper (the flush timeout counts from it). */
  lastAtMs: number;
}

interface StreamState<M> {
  rules: EventRules;
  open: OpenEvent<M> | null;
  /** The last event was closed by a cap or the timeout: a continuing line opens the next. */
  carry: boolean;
  /** The time of the stream's last line: presets look at the gap before the next. */
  lastNano: bigint;
}

const NEWLINE = Buffer.from('\n');
/** Presets look at the start of a line only, so a long line costs no more than a short one. */
const PRESET_PREFIX_BYTES = 512;
/**
 * What a first-line pattern sees of a line. Docker's awslogs driver matches its pattern
 * against each message the daemon hands it, and the daemon splits a longer line into 16 KiB
 * partial messages: a pattern there never sees more than 16 KiB at once, and a long line's
 * first message is its first 16 KiB. Lines here are made whole first (up to 1 MiB), so a
 * pattern sees the same start and a line costs no more than 16 KiB of matching.
 */
const FIRST_LINE_PREFIX_BYTES = 16 * 1024;

/**
 * Joins the consecutive lines of one stream that form one event, as `options` say, and
 * hands back each event once it is closed: by a line that does not continue it, a cap, the
 * flush timeout (flushIdle) or the end of the stream (flush). An event's time and mark are
 * its first line's, so a delivery cursor bounded by openMarks() never passes the start of
 * an event still open.
 */
export class MultilineGrouper<M> {
  private readonly options: MultilineOptions;
  /**
   * Each stream's state in the order they first came, and each by name: the shipper asks for
   * the open marks after every line, and iterating a Map made an iterator each time.
   */
  private readonly streams: StreamState<M>[] = [];
  private stdout: StreamState<M> | null = null;
  private stderr: StreamState<M> | null = null;
  private readonly prefixBytes: number;
  private readonly onJoined: () => void;

  /** `onJoined` is told of each event of two lines or more (a metric). */
  constructor(options: MultilineOptions, onJoined: () => void = () => {}) {
    this.options = options;
    this.onJoined = onJoined;
    this.prefixBytes = options.matcher.kind === 'preset' ? PRESET_PREFIX_BYTES : FIRST_LINE_PREFIX_BYTES;
  }

  /** Events closed by this line, in order, and the line itself if it ships alone. */
  push(line: GroupedLine<M>, nowMs: number): GroupedLine<M>[] {
    const out: GroupedLine<M>[] = [];
    const s = this.stream(line.source);
    const gap = line.timeNano - s.lastNano;
    s.lastNano = line.timeNano;
    if (line.fragment) {
      if (s.open) out.push(this.take(s));
      s.carry = false;
      out.push(line);
      return out;
    }
    // Each invalid UTF-8 sequence reads as one U+FFFD; Go's regexp, on the bytes Docker gives
    // it, reads one per invalid byte: the same outcome unless a pattern counts characters there.
    const text = line.line.toString('utf8', 0, Math.min(line.line.length, this.prefixBytes));
    if ((s.open || s.carry) && s.rules.continues(text, gap)) {
      if (s.open && s.open.bytes + NEWLINE.length + line.line.length > this.options.maxBytes) out.push(this.take(s));
      if (s.open) this.append(s.open, line, nowMs);
      else s.open = this.begin(line, nowMs);
      s.carry = false;
      if (s.open.lines >= this.options.maxLines) out.push(this.take(s));
      return out;
    }
    if (s.open) out.push(this.take(s));
    s.carry = false;
    if (!s.rules.starts(text)) {
      out.push(line);
      return out;
    }
    s.open = this.begin(line, nowMs);
    if (s.open.lines >= this.options.maxLines) out.push(this.take(s));
    return out;
  }

  /** Events with no new line for the flush timeout. */
  flushIdle(nowMs: number): GroupedLine<M>[] {
    const out: GroupedLine<M>[] = [];
    for (const s of this.streams) {
      if (s.open && nowMs - s.open.lastAtMs >= this.options.flushTimeoutMs) out.push(this.take(s));
    }
    return out;
  }

  /** When flushIdle will next have an event to give, in Date.now() time; null if none is open. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const s of this.streams) {
      if (s.open) next = Math.min(next ?? Infinity, s.open.lastAtMs + this.options.flushTimeoutMs);
    }
    return next;
  }

  /** Every open event: the stream has ended. */
  flush(): GroupedLine<M>[] {
    const out: GroupedLine<M>[] = [];
    for (const s of this.streams) if (s.open) out.push(this.take(s));
    return out;
  }

  /** The first lines' marks of the events still open. */
  openMarks(): M[] {
    const marks: M[] = [];
    for (const s of this.streams) if (s.open) marks.push(s.open.first.mark);
    return marks;
  }

  /** `bound`, or the earliest open mark if one is `earlier`. */
  earliestOpen(bound: M, earlier: (a: M, b: M) => boolean): M {
    for (let i = 0; i < this.streams.length; i++) {
      const open = this.streams[i]!.open;
      if (open && earlier(open.first.mark, bound)) bound = open.first.mark;
    }
    return bound;
  }

  private stream(source: Source): StreamState<M> {
    let s = source === 'stdout' ? this.stdout : this.stderr;
    if (!s) {
      s = { rules: eventRules(this.options.matcher), open: null, carry: false, lastNano: 0n };
      this.streams.push(s);
      if (source === 'stdout') this.stdout = s;
      else this.stderr = s;
    }
    return s;
  }

  private begin(line: GroupedLine<M>, nowMs: number): OpenEvent<M> {
    return { first: line, parts: null, bytes: line.line.length, lines: 1, lastAtMs: nowMs };
  }

  private append(event: OpenEvent<M>, line: GroupedLine<M>, nowMs: number): void {
    if (event.parts === null) event.parts = [event.first.line, NEWLINE, line.line];
    else event.parts.push(NEWLINE, line.line);
    event.bytes += NEWLINE.length + line.line.length;
    event.lines++;
    event.lastAtMs = nowMs;
  }

  /** Closes the stream's open event; a line that continues it after this opens the next. */
  private take(s: StreamState<M>): GroupedLine<M> {
    const event = s.open!;
    s.open = null;
    s.carry = true;
    const { first } = event;
    if (event.lines === 1) return first;
    this.onJoined();
    return { source: first.source, timeNano: first.timeNano, line: Buffer.concat(event.parts!, event.bytes), fragment: null, mark: first.mark };
  }
}

function eventRules(matcher: MultilineMatcher): EventRules {
  return matcher.kind === 'first-line' ? new FirstLineRules(matcher.pattern) : presetRules(matcher.preset);
}
