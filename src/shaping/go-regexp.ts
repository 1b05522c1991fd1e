// The regexp engine for every pattern an operator gives (multiline-pattern, datetime-format,
// labels-regex, env-regex, awslogs-multiline-pattern, awslogs-datetime-format) and for the
// presets' own. Container output is untrusted: a backtracking engine (JavaScript's RegExp)
// takes exponential time on `^(\w+\s?)+:` and a 29-byte line, and stops the event loop
// that serves every container. re2js is a port of Go's regexp, which Docker compiles these
// options with: it accepts and refuses the same patterns, with Go's messages, and matches
// the same lines, in time linear in the text (an automaton, no backtracking).
//
// Chosen by measurement (bench/patterns.ts). re2js takes 25-650 ns on a typical line (a
// backend's encoding takes 0.3-5 µs) and 6-8 ms on a crafted 1 MiB one, of which a
// first-line pattern sees 16 KiB (multiline.ts); loading it adds ~4 MiB. A native binding
// to C++ RE2 (re2) is up to 10x faster on a typical line (slower where re2js's scan for a
// required literal rejects it) and 4x on a crafted one, and adds ~2 MiB; but it is C++
// RE2's syntax, not Go's (it takes \C and \u0041, which Go refuses; on bytes an invalid
// UTF-8 sequence matches no `.`, where Go reads U+FFFD), and a node-gyp build of over two
// minutes for each Node it runs under. re2-wasm (C++ RE2 too) is slower than re2js and
// adds 7-10 MiB.
import { RE2JS, RE2JSException } from 're2js';
import { InvalidOptionError } from '../options/values.ts';

/** A compiled Go regexp; `test` finds a match anywhere in the text (unanchored), as Go's MatchString. */
export type GoRegexp = RE2JS;

// What Perl and JavaScript have and RE2 does not, as Go's parser reports it.
const BACKTRACKING_SYNTAX = /unsupported Perl syntax: `\(\?[=!]|invalid named capture: `\(\?<[=!]|invalid escape sequence: `\\[1-9]/;

/** Compiles a pattern as Go's regexp.Compile does; throws a SyntaxError with Go's message. */
export function compileGoRegexp(pattern: string): GoRegexp {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    if (!(err instanceof RE2JSException)) throw err;
    const why = BACKTRACKING_SYNTAX.test(err.message)
      ? ' (lookarounds and backreferences are not RE2 syntax: Docker, as Go, refuses them, since they need backtracking, whose time can grow exponentially with the line)'
      : '';
    throw new SyntaxError(err.message + why);
  }
}

/** A log-opt's RE2 pattern (a schema's custom parser): the error names the option. */
export function parseGoRegexpOption(value: string, key: string): GoRegexp {
  try {
    return compileGoRegexp(value);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': ${err.message}; expected a Go regular expression (RE2 syntax)`);
  }
}
