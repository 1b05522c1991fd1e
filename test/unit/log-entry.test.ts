import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidEntryError, decodeLogEntry } from '../../src/codec/log-entry.ts';
import { T0, payload } from './frames.ts';

describe('LogEntry codec', () => {
  it('keeps time_nano exact beyond 2^53', () => {
    const e = decodeLogEntry(payload({ timeNano: T0, line: 'x' }));
    assert.equal(e.timeNano, T0);
    assert.notEqual(BigInt(Number(T0)), T0, 'the fixture must not fit a double');
  });

  it('defaults a missing line to empty bytes and keeps raw bytes', () => {
    assert.deepEqual(decodeLogEntry(payload({ line: '' })).line, Buffer.alloc(0));
    const raw = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    assert.deepEqual(decodeLogEntry(payload({ line: raw })).line, raw);
  });

  it('reads partial metadata', () => {
    const e = decodeLogEntry(payload({ partial: true, partialLogMetadata: { id: 'abc', ordinal: 2, last: true }, line: 'x' }));
    assert.equal(e.partial, true);
    assert.deepEqual(e.partialMetadata, { id: 'abc', ordinal: 2, last: true });
  });

  it('rejects bytes that are not a daemon LogEntry', () => {
    assert.throws(() => decodeLogEntry(Buffer.from([0x0a, 0x50, 0x01])), InvalidEntryError); // truncated field
    assert.throws(() => decodeLogEntry(payload({ source: 'stdin' })), InvalidEntryError);
    assert.throws(() => decodeLogEntry(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])), InvalidEntryError);
  });
});
