// Multiline events: consecutive lines of one stream joined into one event (a stack trace
// arrives as one event, not forty), for what is shipped to backends only; the local copy
// and `docker logs` keep every line as the daemon sent it.
import { compileGoRegexp } from './attributes.ts';

/** How a line is told to start a new event or to continue the open one. */
export type MultilineMatcher =
  /** A line matching `pattern` starts an event; any other line continues the open one. */
  | { kind: 'first-line'; pattern: RegExp }
  /** Built-in rules for the traces of a language runtime. */
  | { kind: 'preset'; preset: MultilinePreset };

export const MULTILINE_PRESETS = ['java', 'python', 'go'] as const;
export type MultilinePreset = (typeof MULTILINE_PRESETS)[number];

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
export function datetimeFormatPattern(format: string): RegExp {
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
