// The `multiline-preset` rules: which lines continue an event in the traces that the Java,
// Python and Go runtimes print. Each preset looks at a line's start only and at the time
// since the previous line of its stream; none needs a pattern from the operator. Their
// patterns run on the engine operators' patterns run on (go-regexp.ts), in linear time;
// the other tests are fixed strings.
import type { EventRules } from './event-rules.ts';
import { compileGoRegexp } from './go-regexp.ts';

export const MULTILINE_PRESETS = ['java', 'python', 'go'] as const;
export type MultilinePreset = (typeof MULTILINE_PRESETS)[number];

/**
 * Lines written in the same write (a logger's message and the trace it prints with it)
 * reach the daemon together and are stamped microseconds apart. A header line (Python's
 * `Traceback`, a Java exception) joins the line before it only within this gap, so an
 * unrelated line printed earlier does not become a trace's message.
 */
export const SAME_WRITE_GAP_NANO = 10_000_000n;

// `\tat com.example.App.run(App.java:12)`, `\t... 12 more`, `... 3 common frames omitted`
// (logback), `Caused by: ...` (nested under `Suppressed:` it is indented), `\tSuppressed: ...`.
const JAVA_FRAME = compileGoRegexp(String.raw`^(?:\s+at \S|\s*\.\.\. \d+ (?:more|common frames omitted)$|\s*Caused by: \S|\s+Suppressed: \S)`);
// `java.lang.IllegalStateException: boom` as loggers print it under their message line.
const JAVA_EXCEPTION = compileGoRegexp(String.raw`^(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)`);

const DOT = 0x2e;
const C = 0x43;

/**
 * Whether JAVA_FRAME could match: a frame starts with white space (Go's \s is ASCII), '.' or
 * 'C'. Most lines of a Java service are none of these, and the regexp engine cost more per
 * line than the rest of the shipping loop (bench/delivery.ts --shaping).
 */
function mayBeFrame(text: string): boolean {
  const c = text.charCodeAt(0); // NaN for '': no match, as the pattern's
  return c <= 0x20 || c === DOT || c === C;
}

/** Whether JAVA_EXCEPTION could match: it needs one of its three words. */
function mayBeException(text: string): boolean {
  return text.includes('Exception') || text.includes('Error') || text.includes('Throwable');
}

/** Java: frames and causes join the line before them, whatever it is (`Exception in thread ...`, a log line). */
class JavaRules implements EventRules {
  starts(): boolean {
    return true;
  }

  continues(text: string, gapNano: bigint): boolean {
    return (mayBeFrame(text) && JAVA_FRAME.test(text)) || (gapNano <= SAME_WRITE_GAP_NANO && mayBeException(text) && JAVA_EXCEPTION.test(text));
  }
}

const PY_TRACEBACK = 'Traceback (most recent call last):';
const PY_CHAINS = [
  'During handling of the above exception, another exception occurred:',
  'The above exception was the direct cause of the following exception:',
];

/** Where a Python event is: before, inside or after a traceback, or between chained ones. */
type PythonState = 'message' | 'frames' | 'raised' | 'blank' | 'chained' | 'chained-blank';

/**
 * Python: `Traceback (most recent call last):` joins the line just before it (logging's
 * message), then its indented `File ...` and source lines, then the unindented
 * `XxxError: msg` that ends it. A chained traceback follows after a blank line, Python's
 * `During handling ...` or `The above exception ...`, and another blank line.
 */
class PythonRules implements EventRules {
  private state: PythonState = 'message';

  starts(text: string): boolean {
    this.state = text === PY_TRACEBACK ? 'frames' : 'message';
    return true;
  }

  continues(text: string, gapNano: bigint): boolean {
    switch (this.state) {
      case 'message':
      case 'chained-blank':
        if (text !== PY_TRACEBACK || (this.state === 'message' && gapNano > SAME_WRITE_GAP_NANO)) return false;
        this.state = 'frames';
        return true;
      case 'frames':
        // Frames and source lines are indented; the first line that is not is the exception.
        if (text[0] !== ' ' && text[0] !== '\t') this.state = 'raised';
        return true;
      case 'raised':
        if (text !== '' || gapNano > SAME_WRITE_GAP_NANO) return false;
        this.state = 'blank';
        return true;
      case 'blank':
        if (!PY_CHAINS.includes(text)) return false;
        this.state = 'chained';
        return true;
      case 'chained':
        if (text !== '') return false;
        this.state = 'chained-blank';
        return true;
    }
  }
}

const GO_STARTS = ['panic: ', 'fatal error: '];
// Blank lines between goroutines, `goroutine 1 [running]:`, `main.main()` and
// `main.(*T).Run(0xc000012345, {0x4b2c3e, 0x5})`, `\t/src/main.go:12 +0x1d`, `created by ...`,
// `[signal SIGSEGV: ...]`, `runtime stack:`, `...additional frames elided...`, and
// `exit status 2` from `go run`, which ends the trace.
const GO_TRACE = compileGoRegexp(
  String.raw`^(?:$|goroutine \d+ .*\]:$|[\t ]|created by \S|\[signal |runtime stack:$|\.\.\.additional frames elided\.\.\.$|[^\s(][^\s]*\(.*\)$)`,
);
const GO_EXIT = compileGoRegexp(String.raw`^exit status \d+$`);

/** Go: `panic:` or `fatal error:` through its goroutine dumps; other lines ship alone at once. */
class GoRules implements EventRules {
  private inTrace = false;

  starts(text: string): boolean {
    this.inTrace = GO_STARTS.some((start) => text.startsWith(start));
    return this.inTrace;
  }

  continues(text: string): boolean {
    if (!this.inTrace) return false;
    if (GO_EXIT.test(text)) {
      this.inTrace = false;
      return true;
    }
    return GO_TRACE.test(text);
  }
}

export function presetRules(preset: MultilinePreset): EventRules {
  switch (preset) {
    case 'java':
      return new JavaRules();
    case 'python':
      return new PythonRules();
    case 'go':
      return new GoRules();
  }
}

/** The presets' patterns, for bench/patterns.ts. */
export const PRESET_PATTERNS = {
  JAVA_FRAME: JAVA_FRAME.pattern(),
  JAVA_EXCEPTION: JAVA_EXCEPTION.pattern(),
  GO_TRACE: GO_TRACE.pattern(),
  GO_EXIT: GO_EXIT.pattern(),
};
