import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deframer, MAX_FRAME_BYTES } from '../../src/ingest/deframer.ts';
import { frame, lines } from './frames.ts';

function deframeAll(chunks: Buffer[], deframer = new Deframer()): { frames: Buffer[]; skipped: number } {
  const frames: Buffer[] = [];
  let skipped = 0;
  for (const chunk of chunks) {
    const r = deframer.push(chunk);
    frames.push(...Array.from(r.starts, (start, i) => Buffer.from(r.buf.subarray(start, r.ends[i]))));
    skipped += r.skippedBytes;
  }
  return { frames, skipped };
}

describe('Deframer', () => {
  const frames = [frame({ line: 'a' }), frame({ line: '' }), frame({ line: Buffer.alloc(300, 0xff) }), frame({ source: 'stderr', line: 'z' })];
  const stream = Buffer.concat(frames);

  it('returns whole frames from one chunk', () => {
    assert.deepEqual(deframeAll([stream]).frames, frames);
  });

  it('reassembles frames cut at every byte offset, in two pieces', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const { frames: got, skipped } = deframeAll([stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(got, frames, `cut at ${cut}`);
      assert.equal(skipped, 0);
    }
  });

  it('reassembles a stream fed one byte at a time', () => {
    const bytes = [...stream].map((b) => Buffer.from([b]));
    assert.deepEqual(deframeAll(bytes).frames, frames);
  });

  it('holds an incomplete frame until the rest arrives', () => {
    const d = new Deframer();
    assert.equal(d.push(stream.subarray(0, 6)).starts.length, 0);
    assert.equal(d.bufferedBytes, 6);
  });

  it('never allocates an impossible length and resynchronises on the next frame', () => {
    const good = lines(3).map(frame);
    const bogus = Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3, 4, 5, 6, 7]); // a 4 GiB "length" and junk
    const input = Buffer.concat([good[0]!, bogus, good[1]!, good[2]!]);
    for (let cut = 0; cut <= input.length; cut++) {
      const { frames: got, skipped } = deframeAll([input.subarray(0, cut), input.subarray(cut)]);
      assert.deepEqual(got, good, `cut at ${cut}`);
      assert.equal(skipped, bogus.length, `cut at ${cut}`);
    }
  });

  it('treats a length over the cap as corruption', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1);
    const next = frame({ line: 'after' });
    const { frames: got, skipped } = deframeAll([Buffer.concat([header, Buffer.alloc(100), next])]);
    assert.deepEqual(got, [next]);
    assert.equal(skipped, 104);
  });

  it('accepts a frame at the cap', () => {
    const probe = frame({ line: Buffer.alloc(MAX_FRAME_BYTES - 100) });
    const overhead = probe.length - 4 - (MAX_FRAME_BYTES - 100);
    const big = frame({ line: Buffer.alloc(MAX_FRAME_BYTES - overhead, 0x61) });
    assert.equal(big.length - 4, MAX_FRAME_BYTES);
    assert.deepEqual(deframeAll([big.subarray(0, 1000), big.subarray(1000)]).frames, [big]);
  });
});
