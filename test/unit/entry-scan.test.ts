// The allocation-free scan must agree with protobufjs (decodeLogEntry) on every entry.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { EntryScan, scanEntry } from '../../src/codec/entry-scan.ts';
import { InvalidEntryError, decodeLogEntry } from '../../src/codec/log-entry.ts';

const LogEntry = protobuf
  .loadSync(fileURLToPath(new URL('../../proto/entry.proto', import.meta.url)))
  .lookupType('logdriver.LogEntry');

/** A deterministic PRNG (mulberry32), so that a failure reproduces. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGE_TIMES = [0n, 1n, 127n, 128n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n,
  1_795_000_000_123_456_789n, 2n ** 63n - 1n, -1n, -(2n ** 63n), -1_000_000_000n];

function randomMessage(rand: () => number, i: number): Record<string, unknown> {
  const msg: Record<string, unknown> = {};
  if (rand() < 0.97) msg.source = rand() < 0.5 ? 'stdout' : 'stderr';
  else msg.source = ['stdin', '', 'stdoutx', 'stdou'][i % 4];
  if (rand() < 0.9) {
    const t = i < EDGE_TIMES.length ? EDGE_TIMES[i]! : BigInt(Math.floor(rand() * 2 ** 32)) * 2n ** 31n + BigInt(Math.floor(rand() * 2 ** 31));
    msg.timeNano = t.toString();
  }
  const r = rand();
  const len = r < 0.1 ? 0 : r < 0.8 ? Math.floor(rand() * 100) : Math.floor(rand() * 20_000);
  if (len > 0 || rand() < 0.5) msg.line = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
  if (rand() < 0.3) msg.partial = rand() < 0.8;
  if (rand() < 0.3) {
    const meta: Record<string, unknown> = {};
    if (rand() < 0.6) meta.last = rand() < 0.5;
    if (rand() < 0.6) meta.id = 'a'.repeat(Math.floor(rand() * 70));
    if (rand() < 0.6) meta.ordinal = Math.floor(rand() * 2 ** 31) * (rand() < 0.1 ? -1 : 1);
    msg.partialLogMetadata = meta;
  }
  if (rand() < 0.1) msg.attrs = [{ key: 'k', value: 'v'.repeat(Math.floor(rand() * 200)) }];
  return msg;
}

/** What scanEntry found, in decodeLogEntry's terms; null when it rejected the bytes. */
function scanned(bytes: Buffer, pad = 0): { source: string; timeNano: bigint; line: Buffer; partial: boolean; last: boolean } | null {
  // Scan a view inside a bigger buffer, as the hot paths do.
  const buf = Buffer.concat([Buffer.alloc(pad, 0xaa), bytes, Buffer.alloc(pad, 0xaa)]);
  const s = new EntryScan();
  if (!scanEntry(buf, pad, pad + bytes.length, s)) return null;
  return {
    source: s.stderr ? 'stderr' : 'stdout',
    timeNano: s.timeNano(),
    line: buf.subarray(s.lineStart, s.lineEnd),
    partial: s.partial,
    last: s.partialLast,
  };
}

interface Decoded {
  source: string;
  timeNano: { low: number; high: number } | number;
  line: Uint8Array;
  partial: boolean;
  partialLogMetadata: { id: string; ordinal: number; last: boolean } | null;
}

/**
 * protobufjs's own decoding, in decodeLogEntry's terms; null for bytes it rejects or a source
 * other than stdout/stderr. The reference for the scan and for decodeLogEntry, which uses the
 * scan itself for most entries.
 */
function reference(bytes: Buffer): LogEntryValue | null {
  let m: Decoded;
  try {
    m = LogEntry.decode(bytes) as unknown as Decoded;
  } catch {
    return null;
  }
  if (m.source !== 'stdout' && m.source !== 'stderr') return null;
  const t = m.timeNano;
  const timeNano = typeof t === 'number' ? BigInt(t) : (BigInt(t.high) << 32n) | BigInt(t.low >>> 0);
  const meta = m.partialLogMetadata;
  return {
    source: m.source,
    timeNano,
    line: Buffer.from(m.line ?? []),
    partial: m.partial,
    partialMetadata: meta ? { id: meta.id, ordinal: meta.ordinal, last: meta.last } : null,
  };
}

type LogEntryValue = ReturnType<typeof decodeLogEntry>;

function decoded(bytes: Buffer): ReturnType<typeof scanned> {
  const e = reference(bytes);
  return e && { source: e.source, timeNano: e.timeNano, line: e.line, partial: e.partial, last: e.partialMetadata?.last ?? false };
}

/** decodeLogEntry's answer, its line copied out; null where it throws InvalidEntryError. */
function ours(bytes: Buffer): LogEntryValue | null {
  try {
    const e = decodeLogEntry(bytes);
    return { ...e, line: Buffer.from(e.line) };
  } catch (err) {
    assert.ok(err instanceof InvalidEntryError, String(err));
    return null;
  }
}

describe('EntryScan', () => {
  it('agrees with protobufjs on random entries, edge times, absent fields and partial metadata', () => {
    const rand = prng(42);
    for (let i = 0; i < 3000; i++) {
      const msg = randomMessage(rand, i);
      const bytes = Buffer.from(LogEntry.encode(msg).finish());
      assert.deepEqual(scanned(bytes, i % 3), decoded(bytes), `entry ${i}: ${JSON.stringify(msg).slice(0, 200)}`);
    }
  });

  it('rejects what protobufjs rejects: truncated entries and garbage', () => {
    // Stricter is allowed: protobufjs takes a varint cut after its fourth byte as ended.
    const agreeOrStricter = (bytes: Buffer, what: string) => {
      const s = scanned(bytes, 1);
      const d = decoded(bytes);
      if (s !== null || d === null) assert.deepEqual(s, d, `${what}: ${bytes.toString('hex')}`);
    };
    const rand = prng(7);
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(LogEntry.encode(randomMessage(rand, i)).finish());
      const cut = bytes.subarray(0, Math.floor(rand() * bytes.length));
      agreeOrStricter(cut, `entry ${i} cut to ${cut.length} of ${bytes.length} bytes`);
      if (scanned(cut) === null) rejected++;
      agreeOrStricter(Buffer.from(Array.from({ length: Math.floor(rand() * 24) }, () => Math.floor(rand() * 256))), 'noise');
    }
    assert.ok(rejected > 500, `only ${rejected} cut entries rejected`);
  });

  it('keeps time_nano exact beyond 2^53 and negative', () => {
    for (const t of EDGE_TIMES) {
      const bytes = Buffer.from(LogEntry.encode({ source: 'stdout', timeNano: t.toString() }).finish());
      assert.equal(scanned(bytes)?.timeNano, t);
    }
  });
});

describe('decodeLogEntry (the scan for plain entries, protobufjs for the rest)', () => {
  it('decodes every entry as protobufjs does, and rejects what it rejects', () => {
    const rand = prng(99);
    let plain = 0;
    for (let i = 0; i < 3000; i++) {
      const msg = randomMessage(rand, i);
      const bytes = Buffer.from(LogEntry.encode(msg).finish());
      const s = new EntryScan();
      if (scanEntry(bytes, 0, bytes.length, s) && !s.unusual) plain++;
      assert.deepEqual(ours(bytes), reference(bytes), `entry ${i}: ${JSON.stringify(msg).slice(0, 200)}`);
      const cut = bytes.subarray(0, Math.floor(rand() * bytes.length));
      assert.deepEqual(ours(cut), reference(cut), `entry ${i} cut to ${cut.length} of ${bytes.length} bytes`);
    }
    assert.ok(plain > 1000, `only ${plain} entries took the scan's way`);
  });

  it('reads partial as protobufjs reads a bool: the low 32 bits of its varint', () => {
    // source "stdout", then field 4 (partial) as a varint of 2^32: protobufjs says false.
    const bytes = Buffer.from([0x0a, 6, ...Buffer.from('stdout'), 0x20, 0x80, 0x80, 0x80, 0x80, 0x10]);
    assert.equal(reference(bytes)?.partial, false);
    assert.equal(ours(bytes)?.partial, false);
  });

  it('reads a view inside a bigger buffer, as the follower hands it records', () => {
    const bytes = Buffer.from(LogEntry.encode({ source: 'stderr', timeNano: '1795000000123456789', line: Buffer.from('hello') }).finish());
    const inside = Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('yy')]).subarray(2, 2 + bytes.length);
    assert.deepEqual(ours(inside), { source: 'stderr', timeNano: 1795000000123456789n, line: Buffer.from('hello'), partial: false, partialMetadata: null });
    const plainArray = new Uint8Array(inside); // not a Buffer: the line still comes as one
    assert.ok(Buffer.isBuffer(decodeLogEntry(plainArray).line));
  });
});
