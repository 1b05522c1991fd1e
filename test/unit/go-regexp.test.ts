// The patterns operators give run on Go's regexp, as in Docker: its syntax (cases from Go's
// regexp and regexp/syntax docs, chosen where JavaScript's RegExp would read them otherwise),
// its refusals, named by the option, and its linear time on lines crafted to make a
// backtracking engine take exponential or quadratic time.
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { } from '../../src/backends/awslogs.ts';
import { awslogsFactory } from '../../src/backends/awslogs.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import { compileGoRegexp } from '../../src/shaping/go-regexp.ts';

describe("Go's regexp syntax", () => {
  const cases: [pattern: string, text: string, matches: boolean][] = [
    // regexp: Example, ExampleMatch, ExampleRegexp_MatchString
    [String.raw`^[a-z]+\[[0-9]+\]$`, 'adam[23]', true],
    [String.raw`^[a-z]+\[[0-9]+\]$`, 'Job[48]', false],
    ['foo.*', 'seafood', true],
    ['bar.*', 'seafood', false],
    ['(gopher){2}', 'gopher', false],
    ['(gopher){2}', 'gophergopher', true],
    // Flag groups, at the start, inside and scoped.
    ['(?i)error', 'An ERROR here', true],
    ['a(?i)b', 'aB', true],
    ['(?i:a)b', 'AB', false],
    ['(?s)a.b', 'a\nb', true],
    ['a.b', 'a\nb', false],
    ['(?m)^b$', 'a\nb\nc', true],
    ['^b$', 'a\nb\nc', false],
    ['(?U)a+b', 'aab', true],
    // Unicode classes, POSIX classes, text anchors.
    [String.raw`^\pL+$`, 'Grüße', true],
    [String.raw`^\p{Greek}+$`, 'λόγος', true],
    [String.raw`\PL`, 'abc', false],
    ['^[[:alpha:]]+$', 'abc', true],
    ['^[[:alpha:]]+$', 'abc1', false],
    ['[[:^digit:]]', '123', false],
    [String.raw`\Afoo\z`, 'foo', true],
    [String.raw`\Afoo\z`, 'Afooz', false],
    // Non-greedy and named groups are accepted (a match is a match).
    ['a+?b', 'aaab', true],
    ['^(?P<first>[a-zA-Z]+) (?P<last>[a-zA-Z]+)$', 'Alan Turing', true],
    ['^(?<year>[0-9]{4})-', '2026-12-01', true],
    // Go's classes are ASCII and its `.` takes a carriage return; JavaScript's differ on both.
    [String.raw`^\s$`, '\v', false],
    ['^a.b$', 'a\rb', true],
    [String.raw`\Q.*\E`, 'a.*b', true],
    [String.raw`\Q.*\E`, 'ab', false],
    [String.raw`^\x{263a}$`, '☺', true],
    [String.raw`\bword\b`, 'a word.', true],
  ];
  for (const [pattern, text, matches] of cases) {
    it(`${pattern} ${matches ? 'matches' : 'does not match'} ${JSON.stringify(text)}`, () => {
      assert.equal(compileGoRegexp(pattern).test(text), matches);
    });
  }

  it("refuses what Go's regexp refuses, with Go's message", () => {
    const refused: [string, string][] = [
      ['a(b', 'error parsing regexp: missing closing ): `a(b`'],
      ['a++', 'error parsing regexp: invalid nested repetition operator: `++`'],
      ['(?>a)', 'error parsing regexp: invalid or unsupported Perl syntax: `(?>`'],
      ['a{1001}', 'error parsing regexp: invalid repeat count: `{1001}`'],
      [String.raw`a\Z`, 'error parsing regexp: invalid escape sequence: `\\Z`'],
    ];
    for (const [pattern, message] of refused) {
      assert.throws(() => compileGoRegexp(pattern), (err: Error) => err instanceof SyntaxError && err.message === message, pattern);
    }
  });
});

describe('lookarounds and backreferences', () => {
  const backtrackingOnly = ['^(?=INFO)', 'ERROR(?!:)', '(?<=\\])x', '(?<!x)y', String.raw`^(\w+) \1`];

  it('fail docker run naming the option, with why', () => {
    for (const pattern of backtrackingOnly) {
      for (const key of ['multiline-pattern', 'labels-regex', 'env-regex']) {
        assert.throws(
          () => parseLogOptions({ [key]: pattern }, []),
          (err: Error) =>
            err instanceof InvalidOptionError &&
            err.message.startsWith(`invalid value '${pattern}' for log opt '${key}': error parsing regexp: `) &&
            err.message.includes('lookarounds and backreferences are not RE2 syntax'),
          `${key}=${pattern}`,
        );
      }
      assert.throws(
        () => configureBackend(awslogsFactory, { 'awslogs-group': 'g', 'awslogs-multiline-pattern': pattern }),
        (err: Error) => err instanceof InvalidOptionError && err.message.includes("log opt 'awslogs-multiline-pattern'") && err.message.includes('not RE2 syntax'),
      );
    }
  });

  it('in a datetime format too: the rest of the format is regexp text', () => {
    assert.throws(
      () => parseLogOptions({ 'datetime-format': '^(?=%Y)' }, []),
      (err: Error) => err instanceof InvalidOptionError && /^invalid value '\^\(\?=%Y\)' for log opt 'datetime-format': .*not RE2 syntax/.test(err.message),
    );
    assert.throws(
      () => configureBackend(awslogsFactory, { 'awslogs-group': 'g', 'awslogs-datetime-format': '(?!%H)' }),
      (err: Error) => err instanceof InvalidOptionError && err.message.includes("log opt 'awslogs-datetime-format'"),
    );
  });
});

// Run in a child process killed after a minute: a backtracking engine never returns from the
// first of these, and the test fails rather than hangs. It uses only what the options give
// the grouper (a pattern with test()) and the grouper itself.
const CHILD = `
import { parseLogOptions } from ${JSON.stringify(new URL('../../src/lifecycle/options.ts', import.meta.url).href)};
import { MultilineGrouper } from ${JSON.stringify(new URL('../../src/shaping/multiline.ts', import.meta.url).href)};
const MiB = 1 << 20;
const cases = [
  // Exponential for a backtracking engine: 1.4 s at 29 bytes, twice that for every byte more.
  { pattern: '^(\\\\w+\\\\s?)+:', line: (n) => 'a'.repeat(n - 2) + '!:' },
  // Quadratic: every '[ERROR]' starts a '.*' to the end of the line.
  { pattern: '\\\\[(ERROR|WARN)\\\\].*:', line: (n) => ':' + '[ERROR]'.repeat(Math.ceil(n / 7)).slice(0, n - 1) },
];
const out = [];
for (const { pattern, line } of cases) {
  const { shaping } = parseLogOptions({ 'multiline-pattern': pattern }, []);
  const grouper = new MultilineGrouper(shaping.multiline);
  const t0 = performance.now();
  grouper.push({ source: 'stdout', timeNano: 1n, line: Buffer.from(line(MiB)), fragment: null, mark: 0 }, 0);
  const pushMs = performance.now() - t0;
  // The pattern itself on a whole 512 KiB and 4 MiB line: the least of several tries of each.
  const re = shaping.multiline.matcher.pattern;
  const texts = [line(MiB / 2), line(4 * MiB)];
  const best = [Infinity, Infinity];
  for (let round = 0; round < 7; round++) {
    texts.forEach((text, i) => {
      const t = performance.now();
      if (re.test(text)) throw new Error('matched');
      best[i] = Math.min(best[i], performance.now() - t);
    });
  }
  out.push({ pattern, pushMs, halfMiBMs: best[0], fourMiBMs: best[1] });
}
console.log(JSON.stringify(out));
`;

describe('matching time', () => {
  it('is linear in the line, whatever the pattern: crafted lines for backtracking-prone patterns', () => {
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(child.signal, null, 'the match did not finish within a minute');
    assert.equal(child.status, 0, child.stderr);
    const results = JSON.parse(child.stdout) as { pattern: string; pushMs: number; halfMiBMs: number; fourMiBMs: number }[];
    for (const r of results) {
      const report = JSON.stringify(r);
      // A 1 MiB line through the grouper: its first 16 KiB are matched (~0.1 ms here).
      assert.ok(r.pushMs < 250, report);
      // The whole line: ~6 ms a MiB here; a backtracking engine takes minutes (or forever).
      assert.ok(r.halfMiBMs < 1000, report);
      // Eight times the text, about eight times the time; a quadratic engine takes 64. The
      // bound is 24: cache and a loaded machine made 4 MiB up to ~10x 1 MiB's time here.
      assert.ok(r.fourMiBMs < 24 * r.halfMiBMs, report);
    }
  });
});
