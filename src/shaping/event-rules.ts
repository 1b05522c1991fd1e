// What the multiline grouper asks of a way to tell events apart: a first-line pattern
// (multiline.ts) or a preset (multiline-presets.ts).

/**
 * How one stream's lines are told apart, with whatever memory the rules need (a preset's
 * place in a trace). One instance per stream: stdout and stderr are grouped separately.
 */
export interface EventRules {
  /** A line that no open event took: may later lines continue it (false: it ships alone)? */
  starts(text: string): boolean;
  /** Whether the line continues the open event; `gapNano` is the time since its last line. */
  continues(text: string, gapNano: bigint): boolean;
}
