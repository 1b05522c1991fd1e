// What the shaping stage hands on: one line, whole, with what it knows of it.
import type { Source } from '../codec/log-entry.ts';

/** One line ready to ship: partial chunks already reassembled by the shaping stage. */
export interface OutgoingLine {
  source: Source;
  /** Unix nanoseconds of the line (its first chunk's time). */
  timeNano: bigint;
  /** The line without its trailing newline; raw bytes, not necessarily UTF-8. */
  line: Buffer;
  /**
   * Set only for a fragment the shaping stage could not make whole (the line-size cap cut
   * it, or the stream ended before its last chunk); backends whose built-in driver sends
   * partial metadata (fluentd, journald) send these fields.
   */
  partial?: { id: string; ordinal: number; last: boolean };
  /**
   * The line parsed as a JSON object: set only with the `parse-json` log-opt, and only for a
   * line that is one. A backend with structured records adds these keys beside its own (its
   * own keys win a clash: the line itself still goes as the message, so nothing is lost).
   */
  fields?: Readonly<Record<string, unknown>>;
}
