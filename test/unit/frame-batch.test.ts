import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryScan, scanEntry } from '../../src/codec/entry-scan.ts';
import { FrameBatch } from '../../src/ingest/frame-batch.ts';
import { frame } from './frames.ts';

describe('FrameBatch', () => {
  it('finds the exact earliest and latest time of any range, negative and beyond 2^53 included', () => {
    const times = [5n, -1n, 2n ** 63n - 1n, 2n ** 53n + 1n, 2n ** 53n, -(2n ** 63n), 0n, 2n ** 32n, 2n ** 32n - 1n, 1_795_000_000_123_456_789n];
    const frames = times.map((t) => frame({ line: 'x', timeNano: t }));
    const batch = new FrameBatch(Buffer.concat(frames));
    const scan = new EntryScan();
    let pos = 0;
    for (const f of frames) {
      assert.ok(scanEntry(batch.buf, pos + 4, pos + f.length, scan));
      batch.add(pos, pos + f.length, scan.timeHi, scan.timeLo);
      pos += f.length;
    }
    for (let from = 0; from < times.length; from++) {
      for (let to = from + 1; to <= times.length; to++) {
        const range = times.slice(from, to);
        const min = range.reduce((a, b) => (b < a ? b : a));
        const max = range.reduce((a, b) => (b > a ? b : a));
        assert.deepEqual(batch.timeRange(from, to), { min, max }, `frames ${from}..${to}`);
      }
    }
  });
});
