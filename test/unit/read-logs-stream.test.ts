import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { encodeReadLogsBatch } from '../../src/protocol/read-logs-stream.ts';
import { T0, payload } from './frames.ts';

/** The reply as the daemon reads it: source, time and line of each frame. */
function replyEntries(reply: Buffer): { source: string; timeNano: bigint; line: string }[] {
  const out = [];
  for (let pos = 0; pos < reply.length; ) {
    const n = reply.readUInt32BE(pos);
    assert.ok(pos + 4 + n <= reply.length, 'a frame runs past the end of the reply');
    const e = decodeLogEntry(reply.subarray(pos + 4, pos + 4 + n));
    out.push({ source: e.source, timeNano: e.timeNano, line: e.line.toString('latin1') });
    pos += 4 + n;
  }
  return out;
}

describe('ReadLogs reply', () => {
  it('gives complete lines their newline back, chunks of a longer line none, and keeps time exact', () => {
    const long = 'x'.repeat(16_384);
    const stored = [
      payload({ line: 'hello', timeNano: T0 }),
      payload({ source: 'stderr', line: '', timeNano: T0 + 1n }),
      payload({ line: long, partial: true, partialLogMetadata: { id: 'p', ordinal: 1, last: false }, timeNano: 2n ** 63n - 1n }),
      payload({ line: 'tail', partial: true, partialLogMetadata: { id: 'p', ordinal: 2, last: true }, timeNano: -5n }),
      payload({ line: '', partial: true, partialLogMetadata: { id: 'q', ordinal: 1, last: false }, timeNano: 0n }),
      payload({ line: 'y'.repeat(127), timeNano: 1n }), // the line's length varint grows to 2 bytes
    ];
    assert.deepEqual(replyEntries(encodeReadLogsBatch(stored)), [
      { source: 'stdout', timeNano: T0, line: 'hello\n' },
      { source: 'stderr', timeNano: T0 + 1n, line: '\n' },
      { source: 'stdout', timeNano: 2n ** 63n - 1n, line: long },
      { source: 'stdout', timeNano: -5n, line: 'tail\n' },
      { source: 'stdout', timeNano: 0n, line: '' },
      { source: 'stdout', timeNano: 1n, line: `${'y'.repeat(127)}\n` },
    ]);
  });

  it('replies in full to a batch of empty lines only (each grows by its line field)', () => {
    const stored = Array.from({ length: 50 }, (_, i) => payload({ line: '', timeNano: T0 + BigInt(i) }));
    const reply = replyEntries(encodeReadLogsBatch(stored));
    assert.equal(reply.length, 50);
    assert.ok(reply.every((e) => e.line === '\n'));
  });

  it('skips stored payloads that are not daemon entries', () => {
    const stored = [payload({ line: 'a' }), Buffer.from([0x0a, 0x50, 0x01]), payload({ source: 'stdin', line: 'b' }), payload({ line: 'c' })];
    assert.deepEqual(
      replyEntries(encodeReadLogsBatch(stored)).map((e) => e.line),
      ['a\n', 'c\n'],
    );
  });

  it('replies to an empty batch with nothing', () => {
    assert.equal(encodeReadLogsBatch([]).length, 0);
  });
});
