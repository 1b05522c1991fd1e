// The dead-letter file: what a record holds, readable by root only, bounded with the oldest
// records dropped first (and counted), and never bringing back a store folder removed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DeadLetterFile, type DeadLetterRecord } from '../../src/delivery/dead-letters.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-dead-letters-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const T = 1_795_000_000_123_456_789n;
const lineOf = (text: string | Buffer, extra: Partial<OutgoingLine> = {}): OutgoingLine => ({
  source: 'stdout',
  timeNano: T,
  line: typeof text === 'string' ? Buffer.from(text) : text,
  ...extra,
});
const records = (file: DeadLetterFile): DeadLetterRecord[] =>
  fs.readFileSync(file.path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DeadLetterRecord);

describe('dead-letter file', () => {
  it("keeps the line, its time and stream, partial metadata, the backend's code and reason, and when", () => {
    const file = new DeadLetterFile(dir, 'elasticsearch');
    const at = new Date('2026-12-01T10:00:00.000Z');
    file.append(
      [
        { line: lineOf('a "quoted" line\twith a tab'), code: 'invalid', reason: '400 mapper_parsing_exception' },
        { line: lineOf(Buffer.from([0x61, 0xff, 0x00]), { source: 'stderr', partial: { id: 'p1', ordinal: 2, last: false } }), code: 'too_large', reason: 'EMSGSIZE' },
      ],
      at,
    );
    assert.equal(file.path, path.join(dir, 'dead-letters', 'elasticsearch.jsonl'));
    assert.deepEqual(records(file), [
      {
        time: '2026-11-18T11:06:40.123456789Z',
        stream: 'stdout',
        line: 'a "quoted" line\twith a tab',
        backend: 'elasticsearch',
        code: 'invalid',
        reason: '400 mapper_parsing_exception',
        rejectedAt: '2026-12-01T10:00:00.000Z',
      },
      {
        time: '2026-11-18T11:06:40.123456789Z',
        stream: 'stderr',
        line: Buffer.from([0x61, 0xff, 0x00]).toString('base64'),
        encoding: 'base64',
        partial: { id: 'p1', ordinal: 2, last: false },
        backend: 'elasticsearch',
        code: 'too_large',
        reason: 'EMSGSIZE',
        rejectedAt: '2026-12-01T10:00:00.000Z',
      },
    ]);
    assert.equal(fs.statSync(file.path).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file.path)).mode & 0o777, 0o700);
  });

  it('writes every record of one send in one append, after those already there (across a restart too)', () => {
    new DeadLetterFile(dir, 'fluentd').append([{ line: lineOf('first'), code: 'failed', reason: 'x' }]);
    const reopened = new DeadLetterFile(dir, 'fluentd');
    assert.equal(reopened.append([{ line: lineOf('second'), code: 'failed', reason: 'x' }, { line: lineOf('third'), code: 'failed', reason: 'x' }]), 0);
    assert.deepEqual(records(reopened).map((r) => r.line), ['first', 'second', 'third']);
  });

  it('past its cap drops the oldest records first, whole, and says how many', () => {
    const file = new DeadLetterFile(dir, 'syslog', 4000);
    let dropped = 0;
    for (let i = 0; i < 60; i++) dropped += file.append([{ line: lineOf(`line ${String(i).padStart(3, '0')} ${'x'.repeat(100)}`), code: 'failed', reason: 'r' }]);
    const kept = records(file);
    assert.ok(fs.statSync(file.path).size <= 4000, `${fs.statSync(file.path).size} bytes`);
    assert.equal(kept.length + dropped, 60, 'every record kept or counted');
    assert.ok(dropped > 0);
    // The newest are kept, in order.
    assert.deepEqual(kept.map((r) => Number(r.line.slice(5, 8))), Array.from({ length: kept.length }, (_, i) => 60 - kept.length + i));
  });

  it('does not bring back a store folder that was removed (retention)', () => {
    const gone = path.join(dir, 'gone');
    assert.throws(() => new DeadLetterFile(gone, 'journald').append([{ line: lineOf('x'), code: 'failed', reason: 'r' }]), /ENOENT/);
    assert.equal(fs.existsSync(gone), false);
  });
});
