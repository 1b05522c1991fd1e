import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogEntry } from '../../src/codec/log-entry.ts';
import { LineShaper } from '../../src/shaping/line-shaper.ts';
import { PartialAssembler } from '../../src/shaping/partial.ts';

function chunk(source: 'stdout' | 'stderr', line: string, id: string, ordinal: number, last: boolean, timeNano = 1n): LogEntry {
  return { source, timeNano, line: Buffer.from(line), partial: true, partialMetadata: { id, ordinal, last } };
}

function whole(source: 'stdout' | 'stderr', line: string, timeNano = 1n): LogEntry {
  return { source, timeNano, line: Buffer.from(line), partial: false, partialMetadata: null };
}

const text = (lines: { line: Buffer }[]) => lines.map((l) => l.line.toString());

describe('PartialAssembler', () => {
  it('joins chunks up to the last one, with the first chunk time', () => {
    const a = new PartialAssembler();
    assert.deepEqual(a.push(chunk('stdout', 'ab', 'x', 1, false, 5n)), []);
    assert.deepEqual(a.push(chunk('stdout', 'cd', 'x', 2, false, 6n)), []);
    const [line, ...rest] = a.push(chunk('stdout', 'ef', 'x', 3, true, 7n));
    assert.equal(rest.length, 0);
    assert.equal(line!.line.toString(), 'abcdef');
    assert.equal(line!.timeNano, 5n);
    assert.equal(line!.incomplete, false);
  });

  it('keeps stdout and stderr groups apart', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'out1', 'o', 1, false));
    a.push(chunk('stderr', 'err1', 'e', 1, false));
    assert.deepEqual(text(a.push(chunk('stdout', 'out2', 'o', 2, true))), ['out1out2']);
    assert.deepEqual(text(a.push(chunk('stderr', 'err2', 'e', 2, true))), ['err1err2']);
  });

  it('passes whole lines through and ends a group whose last chunk never came', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'dangling', 'x', 1, false));
    const out = a.push(whole('stdout', 'next'));
    assert.deepEqual(text(out), ['dangling', 'next']);
    assert.deepEqual(out.map((l) => l.incomplete), [true, false]);
  });

  it('ends a group when another id starts on the same stream', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'one', 'x', 1, false));
    assert.deepEqual(text(a.push(chunk('stdout', 'two', 'y', 1, false))), ['one']);
    assert.deepEqual(text(a.flush()), ['two']);
  });

  it('emits a trailing line without newline at flush', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'no-newline', 'x', 1, false));
    const [line] = a.flush();
    assert.equal(line!.line.toString(), 'no-newline');
    assert.equal(line!.incomplete, true);
    assert.deepEqual(a.flush(), []);
  });

  it('cuts a group at the cap without losing bytes', () => {
    const a = new PartialAssembler(10);
    const out = [...a.push(chunk('stdout', 'abcdefgh', 'x', 1, false)), ...a.push(chunk('stdout', 'ijklmnopqrstuvw', 'x', 2, true))];
    assert.deepEqual(text(out), ['abcdefghij', 'klmnopqrst', 'uvw']);
    // Every piece of a cut line is a fragment; the last one ends the daemon's group.
    assert.deepEqual(out.map((l) => l.fragment), [
      { id: 'x', ordinal: 1, last: false },
      { id: 'x', ordinal: 2, last: false },
      { id: 'x', ordinal: 3, last: true },
    ]);
  });

  it('describes a group ended without its last chunk as a fragment', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'ab', 'x', 1, false));
    const [line] = a.push(whole('stdout', 'next'));
    assert.deepEqual(line!.fragment, { id: 'x', ordinal: 1, last: false });
    assert.equal(a.push(chunk('stdout', 'c', 'y', 1, true))[0]!.fragment, null);
  });

  it('keeps the mark of each open group\'s first chunk', () => {
    const a = new PartialAssembler<number>();
    a.push(chunk('stdout', 'a', 'x', 1, false), 10);
    a.push(chunk('stderr', 'b', 'y', 1, false), 11);
    a.push(chunk('stdout', 'c', 'x', 2, false), 12);
    assert.deepEqual(a.openMarks().sort(), [10, 11]);
    a.push(chunk('stdout', 'd', 'x', 3, true), 13);
    assert.deepEqual(a.openMarks(), [11]);
  });
});

describe('PartialAssembler: a chunk missing (finding 12: ordinals are checked)', () => {
  it('ships the pieces around a hole as fragments, the hole taking a piece number of its own', () => {
    const a = new PartialAssembler();
    assert.deepEqual(a.push(chunk('stdout', 'ab', 'x', 1, false)), []);
    assert.deepEqual(a.push(chunk('stdout', 'cd', 'x', 2, false)), []);
    // Chunk 3 was dropped (resynchronisation on the FIFO, a damaged record).
    const before = a.push(chunk('stdout', 'gh', 'x', 4, false));
    assert.deepEqual(text(before), ['abcd']);
    assert.deepEqual(before[0]!.fragment, { id: 'x', ordinal: 1, last: false });
    assert.equal(before[0]!.incomplete, true);
    const after = a.push(chunk('stdout', 'ij', 'x', 5, true));
    assert.deepEqual(text(after), ['ghij']);
    assert.deepEqual(after[0]!.fragment, { id: 'x', ordinal: 3, last: true });
  });

  it('a line whose first chunks are missing is a fragment from piece 2', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'cd', 'x', 3, false));
    const [line] = a.push(chunk('stdout', 'ef', 'x', 4, true));
    assert.equal(line!.line.toString(), 'cdef');
    assert.deepEqual(line!.fragment, { id: 'x', ordinal: 2, last: true });
  });

  it('a chunk repeated or out of order breaks the line too', () => {
    const a = new PartialAssembler();
    a.push(chunk('stdout', 'ab', 'x', 1, false));
    assert.deepEqual(text(a.push(chunk('stdout', 'ab', 'x', 1, false))), ['ab']);
    const [rest] = a.push(chunk('stdout', 'cd', 'x', 2, true));
    assert.deepEqual(rest!.fragment, { id: 'x', ordinal: 3, last: true });
  });

  it('reaches the backends marked partial (LineShaper)', () => {
    const shaper = new LineShaper<number>({ multiline: null, parseJson: true });
    shaper.push(chunk('stdout', '{"a":', 'x', 1, false), 1, 0);
    const out = [...shaper.push(chunk('stdout', '1}', 'x', 3, true), 3, 0)];
    assert.deepEqual(out.map((l) => [l.line.toString(), l.partial, l.fields]), [
      ['{"a":', { id: 'x', ordinal: 1, last: false }, undefined],
      ['1}', { id: 'x', ordinal: 3, last: true }, undefined],
    ]);
  });

  it('chunks without ordinals (daemons that send none) are joined as before', () => {
    const a = new PartialAssembler();
    a.push({ ...chunk('stdout', 'ab', 'x', 0, false) });
    const [line] = a.push(chunk('stdout', 'cd', 'x', 0, true));
    assert.equal(line!.line.toString(), 'abcd');
    assert.equal(line!.incomplete, false);
  });
});
