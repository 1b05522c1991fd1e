// The multiline grouper and the parse-json stage on their own: each matcher, the presets on
// real traces (Python's printed by python3; Java and Go written as their runtimes print
// them), the caps, the flush timeout, streams apart, fragments untouched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import type { Source } from '../../src/codec/log-entry.ts';
import { jsonObjectFields } from '../../src/shaping/json-fields.ts';
import { LineShaper } from '../../src/shaping/line-shaper.ts';
import { type GroupedLine, type MultilineMatcher, type MultilineOptions, MultilineGrouper, datetimeFormatPattern } from '../../src/shaping/multiline.ts';
import { type GoRegexp, compileGoRegexp } from '../../src/shaping/go-regexp.ts';
import { SAME_WRITE_GAP_NANO } from '../../src/shaping/multiline-presets.ts';

const trace = (name: string): string[] =>
  fs.readFileSync(new URL(`../fixtures/traces/${name}.txt`, import.meta.url), 'utf8').replace(/\n$/, '').split('\n');

function options(matcher: MultilineMatcher, overrides: Partial<MultilineOptions> = {}): MultilineOptions {
  return { matcher, flushTimeoutMs: 1000, maxLines: 1000, maxBytes: 1 << 20, ...overrides };
}

const preset = (name: 'java' | 'python' | 'go'): MultilineMatcher => ({ kind: 'preset', preset: name });
const pattern = (re: string | GoRegexp): MultilineMatcher => ({ kind: 'first-line', pattern: typeof re === 'string' ? compileGoRegexp(re) : re });

/** Feeds lines 1 µs apart (after the first, `firstGapNano` later) and ends the stream; the events' texts. */
function group(opts: MultilineOptions, lines: string[], { source = 'stdout' as Source, firstGapNano = 1000n } = {}): string[] {
  const grouper = new MultilineGrouper<number>(opts);
  const out: GroupedLine<number>[] = [];
  lines.forEach((text, i) => out.push(...grouper.push(entry(text, i, source, i === 0 ? 0n : firstGapNano + BigInt(i) * 1000n), 0)));
  out.push(...grouper.flush());
  return out.map((e) => e.line.toString());
}

function entry(text: string, mark: number, source: Source = 'stdout', timeNano = BigInt(mark) * 1000n): GroupedLine<number> {
  return { source, timeNano, line: Buffer.from(text), fragment: null, mark };
}

describe('multiline presets on real traces', () => {
  const cases: { preset: 'java' | 'python' | 'go'; file: string; before: string; after: string }[] = [
    { preset: 'java', file: 'java-uncaught', before: 'starting orders', after: 'shutting down' },
    { preset: 'java', file: 'java-logback', before: '2026-12-01 19:40:12.300 INFO 1 --- [nio-8080-exec-3] c.e.orders.OrderController : POST /orders', after: '2026-12-01 19:40:12.400 INFO 1 --- [nio-8080-exec-4] c.e.orders.OrderController : GET /orders' },
    { preset: 'python', file: 'python-logging', before: '2026-12-01 19:32:47,429 INFO orders: order received', after: '2026-12-01 19:32:47,431 INFO orders: next' },
    { preset: 'python', file: 'python-uncaught', before: 'worker started', after: 'worker restarted' },
    { preset: 'go', file: 'go-panic', before: 'listening on :8080', after: 'restarting' },
    { preset: 'go', file: 'go-recovered', before: '2026/12/01 19:40:12 pool started', after: 'restarting' },
  ];
  for (const c of cases) {
    it(`${c.preset}: ${c.file} between ordinary lines is one event with the exact text`, () => {
      const lines = trace(c.file);
      // The logback and logging traces start with their message line, printed with the trace;
      // the ordinary line before an uncaught trace was printed a second earlier.
      const joinsMessage = c.file === 'java-logback' || c.file === 'python-logging';
      const events = group(options(preset(c.preset)), [c.before, ...lines, c.after], { firstGapNano: joinsMessage ? 1000n : 1_000_000_000n });
      assert.deepEqual(events, [c.before, lines.join('\n'), c.after]);
    });
  }

  it('python: a traceback joins the line before it only when written with it', () => {
    const lines = trace('python-uncaught');
    const grouper = new MultilineGrouper<number>(options(preset('python')));
    const out = [...grouper.push(entry('earlier line', 0, 'stderr', 0n), 0)];
    let t = SAME_WRITE_GAP_NANO * 100n;
    lines.forEach((text, i) => out.push(...grouper.push(entry(text, i + 1, 'stderr', (t += 1000n)), 0)));
    out.push(...grouper.flush());
    assert.deepEqual(out.map((e) => e.line.toString()), ['earlier line', lines.join('\n')]);
  });

  it('python: a blank line printed later after a traceback is not part of it', () => {
    const lines = trace('python-uncaught').slice(0, 7); // the first traceback alone
    const grouper = new MultilineGrouper<number>(options(preset('python')));
    const out: GroupedLine<number>[] = [];
    lines.forEach((text, i) => out.push(...grouper.push(entry(text, i, 'stderr', BigInt(i)), 0)));
    out.push(...grouper.push(entry('', 99, 'stderr', SAME_WRITE_GAP_NANO * 10n), 0), ...grouper.flush());
    assert.deepEqual(out.map((e) => e.line.toString()), [lines.join('\n'), '']);
  });

  it('java: a frame joins whatever line precedes it; ordinary lines stay apart', () => {
    assert.deepEqual(group(options(preset('java')), ['a', 'b', '\tat x.Y.z(Y.java:1)', 'c']), ['a', 'b\n\tat x.Y.z(Y.java:1)', 'c']);
  });

  it('go: lines that merely look like frames outside a panic ship alone at once', () => {
    const grouper = new MultilineGrouper<number>(options(preset('go')));
    assert.deepEqual(grouper.push(entry('main.main()', 0), 0).map((e) => e.line.toString()), ['main.main()']);
    assert.deepEqual(grouper.push(entry('\t/src/app/main.go:22 +0x1d', 1), 0).map((e) => e.line.toString()), ['\t/src/app/main.go:22 +0x1d']);
    assert.deepEqual(grouper.openMarks(), []);
  });

  it('two traces in a row are two events', () => {
    const a = trace('go-panic');
    const b = trace('go-recovered');
    assert.deepEqual(group(options(preset('go')), [...a, ...b]), [a.join('\n'), b.join('\n')]);
    const j = trace('java-uncaught');
    assert.deepEqual(group(options(preset('java')), [...j, ...j]), [j.join('\n'), j.join('\n')]);
  });
});

describe('multiline first-line patterns', () => {
  it('a matching line starts an event, others continue it; lines before the first match go alone', () => {
    const events = group(options(pattern(String.raw`^\d{4}-\d\d-\d\d `)), ['banner', '  more banner', '2026-12-01 a', '  a.1', '  a.2', '2026-12-01 b', '2026-12-01 c', '  c.1']);
    assert.deepEqual(events, ['banner', '  more banner', '2026-12-01 a\n  a.1\n  a.2', '2026-12-01 b', '2026-12-01 c\n  c.1']);
  });

  it('is unanchored: the pattern may match anywhere in the line, as awslogs\' does', () => {
    assert.deepEqual(group(options(pattern('INFO|ERROR')), ['x ERROR y', 'cont', 'z INFO']), ['x ERROR y\ncont', 'z INFO']);
  });

  it('datetime-format builds awslogs\' pattern', () => {
    // The rest of the format is regexp text, as in Docker.
    const re = datetimeFormatPattern('^%b %d, %Y %H:%M:%S');
    const events = group(options(pattern(re)), ['Dec 01, 2026 19:40:12 start', 'detail: Dec 01, 2026 19:40:12', 'Dec 01, 2026 19:40:13 next']);
    assert.deepEqual(events, ['Dec 01, 2026 19:40:12 start\ndetail: Dec 01, 2026 19:40:12', 'Dec 01, 2026 19:40:13 next']);
  });

  it("sees a line's first 16 KiB, what Docker's awslogs matches of a longer line (its first partial message)", () => {
    const within = 'x'.repeat(16 * 1024 - 'START'.length) + 'START';
    const beyond = 'x'.repeat(16 * 1024) + 'START';
    assert.deepEqual(group(options(pattern('START')), ['START', within, beyond]), ['START', `${within}\n${beyond}`]);
  });

  it('reads invalid UTF-8 as U+FFFD, as Go reads the bytes Docker matches', () => {
    const grouper = new MultilineGrouper<number>(options(pattern(String.raw`^A\x{FFFD}B$`)));
    const bad = { ...entry('', 0), line: Buffer.from([0x41, 0xff, 0x42]) };
    assert.deepEqual(grouper.push(bad, 0), []);
    assert.deepEqual(grouper.push(entry('more', 1), 0), []);
    assert.deepEqual(grouper.flush().map((e) => e.line), [Buffer.from([0x41, 0xff, 0x42, 0x0a, 0x6d, 0x6f, 0x72, 0x65])]);
  });
});

describe('multiline caps and timeout', () => {
  it('max-lines closes an event; the next continuing line starts another', () => {
    const lines = ['S', 'c1', 'c2', 'c3', 'c4', 'S'];
    assert.deepEqual(group(options(pattern('^S'), { maxLines: 2 }), lines), ['S\nc1', 'c2\nc3', 'c4', 'S']);
    assert.deepEqual(group(options(pattern('^S'), { maxLines: 1 }), lines), lines);
  });

  it('max-bytes, counting the joining newlines, closes an event before it would grow past', () => {
    // 'S123' + '\n' + 'c1234' = 10 bytes: fits; another '\n' + 'c1234' would be 16.
    assert.deepEqual(group(options(pattern('^S'), { maxBytes: 11 }), ['S123', 'c1234', 'c1234', 'c1234']), ['S123\nc1234', 'c1234\nc1234']);
    // A line longer than the cap is an event on its own, whole.
    assert.deepEqual(group(options(pattern('^S'), { maxBytes: 4 }), ['S', 'c'.repeat(10), 'c']), ['S', 'c'.repeat(10), 'c']);
  });

  it('caps keep a preset\'s place in the trace', () => {
    const lines = trace('java-uncaught');
    const events = group(options(preset('java'), { maxLines: 5 }), [...lines, 'after']);
    assert.equal(events.length, Math.ceil(lines.length / 5) + 1);
    assert.equal(events.slice(0, -1).join('\n'), lines.join('\n'));
    assert.equal(events.at(-1), 'after');
  });

  it('the flush timeout ships an event with no new line for that long, and says when it is due', () => {
    const grouper = new MultilineGrouper<number>(options(pattern('^S'), { flushTimeoutMs: 500 }));
    assert.equal(grouper.nextDeadline(), null);
    grouper.push(entry('S', 0), 1000);
    grouper.push(entry('c', 1), 1200);
    assert.equal(grouper.nextDeadline(), 1700);
    assert.deepEqual(grouper.flushIdle(1699), []);
    assert.deepEqual(grouper.flushIdle(1700).map((e) => e.line.toString()), ['S\nc']);
    assert.equal(grouper.nextDeadline(), null);
    // What continues after the timeout is the next event, not a lone line each.
    grouper.push(entry('c2', 2), 3000);
    grouper.push(entry('c3', 3), 3001);
    assert.deepEqual(grouper.flush().map((e) => e.line.toString()), ['c2\nc3']);
  });
});

describe('multiline streams, fragments and marks', () => {
  it('groups stdout and stderr apart, each event with its first line\'s time and mark', () => {
    const grouper = new MultilineGrouper<number>(options(pattern('^S')));
    const out = [
      ...grouper.push(entry('S out', 0, 'stdout', 10n), 0),
      ...grouper.push(entry('S err', 1, 'stderr', 11n), 0),
      ...grouper.push(entry('out 2', 2, 'stdout', 12n), 0),
      ...grouper.push(entry('err 2', 3, 'stderr', 13n), 0),
    ];
    assert.deepEqual(out, []);
    assert.deepEqual(grouper.openMarks().sort(), [0, 1]);
    const events = [...grouper.push(entry('S next', 4, 'stdout', 14n), 0), ...grouper.flush()];
    assert.deepEqual(
      events.map((e) => [e.source, e.line.toString(), e.timeNano, e.mark]),
      [['stdout', 'S out\nout 2', 10n, 0], ['stdout', 'S next', 14n, 4], ['stderr', 'S err\nerr 2', 11n, 1]],
    );
  });

  it('passes a fragment through alone, after closing the open event of its stream', () => {
    const grouper = new MultilineGrouper<number>(options(pattern('^S')));
    grouper.push(entry('S', 0), 0);
    grouper.push(entry('c', 1), 0);
    const fragment = { ...entry('c'.repeat(20), 2), fragment: { id: 'p', ordinal: 1, last: false } };
    const out = [...grouper.push(fragment, 0), ...grouper.push(entry('c', 3), 0), ...grouper.flush()];
    assert.deepEqual(out.map((e) => [e.line.toString(), e.fragment]), [['S\nc', null], ['c'.repeat(20), fragment.fragment], ['c', null]]);
  });
});

describe('parse-json', () => {
  it('takes a JSON object, with blanks around it, and nothing else', () => {
    assert.deepEqual(jsonObjectFields(Buffer.from(' \t{"a":1,"b":{"c":[true,null]}} \r')), { a: 1, b: { c: [true, null] } });
    for (const text of ['[1,2]', '"x"', '42', 'null', '{"a":', '{a:1}', 'plain {"a":1}', '', '   ']) {
      assert.equal(jsonObjectFields(Buffer.from(text)), null, text);
    }
    assert.equal(jsonObjectFields(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), null, 'not UTF-8');
  });

  it('parses events after multiline, and never a fragment', () => {
    const shaper = new LineShaper<number>({ multiline: options(pattern(String.raw`^\{`)), parseJson: true });
    const stored = (line: string, partial = false) => ({
      source: 'stdout' as const,
      timeNano: 1n,
      line: Buffer.from(line),
      partial,
      partialMetadata: partial ? { id: 'p', ordinal: 1, last: false } : null,
    });
    const out = [
      ...shaper.push(stored('{"a":'), 0, 0),
      ...shaper.push(stored('1}'), 1, 0),
      ...shaper.push(stored('{"b":2}'), 2, 0),
      ...shaper.push(stored('{"c":3}', true), 3, 0),
      ...shaper.flush(),
    ];
    assert.deepEqual(
      out.map((l) => [l.line.toString(), l.fields, l.partial]),
      [['{"a":\n1}', { a: 1 }, undefined], ['{"b":2}', { b: 2 }, undefined], ['{"c":3}', undefined, { id: 'p', ordinal: 1, last: false }]],
    );
  });

  it('leaves lines alone when the options are off', () => {
    const shaper = new LineShaper<number>({ multiline: null, parseJson: false });
    const out = shaper.push({ source: 'stderr', timeNano: 5n, line: Buffer.from('{"a":1}'), partial: false, partialMetadata: null }, 0, 0);
    assert.deepEqual(out, [{ source: 'stderr', timeNano: 5n, line: Buffer.from('{"a":1}') }]);
  });
});
