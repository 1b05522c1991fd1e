// Hostile FIFO input through the real path (FIFO → reader → deframer → decoder → store →
// reader), for a bounded time (LOGSHIP_FUZZ_MS, default 3 s) from a seeded PRNG
// (LOGSHIP_FUZZ_SEED to replay; every failure message names the seed and the round).
//
// Two kinds of streams:
// - recoverable: valid frames mixed with garbage, frames over the cap and undecodable frames.
//   Every valid frame must come back, in order, and the damage must be counted.
// - mutated: valid streams with bits flipped, bytes cut or inserted, lengths rewritten. A length
//   that is plausible is trusted (the daemon's framing has no other boundary), so frames may be
//   lost; nothing may throw, memory stays bounded, and what is stored reads back.
//
// And the store after a crash or a power cut: real stores whose current segment is cut short
// or ends in garbage. The reopened store and a reader of the stopped container must see
// exactly the records before the damage, no fewer.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_FRAME_BYTES } from '../../src/ingest/deframer.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import { counterTotal, fifoBytesSkipped, linesDropped } from '../../src/observability/metrics.ts';
import { type EntryFields, batch, frame } from './frames.ts';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { setLevel } from '../../src/observability/log.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import type { ReadRequest } from '../../src/store/log-reader.ts';
import { readManifest, segmentPath } from '../../src/store/segments.ts';
import type { ContainerInfo } from '../../src/shaping/container.ts';

const BUDGET_MS = Number(process.env.LOGSHIP_FUZZ_MS ?? 3000);
const SEED = Number(process.env.LOGSHIP_FUZZ_SEED ?? Date.now() % 2 ** 32);

/** mulberry32: small, fast and good enough to drive a fuzzer reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

let root: string;
let registry: Registry;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-fuzz-'));
  fs.mkdirSync(path.join(root, 'fifo'));
  registry = new Registry(path.join(root, 'data'), path.join(root, 'fifo'), { requests: START_LOGGING });
});
after(async () => {
  await registry.shutdown();
  fs.rmSync(root, { recursive: true, force: true });
});

const info = (id: string): ContainerInfo => ({
  id, name: '/fuzz', config: {}, imageId: '', imageName: '', created: '', entrypoint: '', args: [], env: [], labels: {}, daemonName: '',
});

/** Sends a stream through a real FIFO, cut into random writes, and returns the lines stored. */
async function throughPlugin(stream: Buffer, rand: () => number): Promise<string[]> {
  const id = Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(rand() * 16)]).join('');
  const file = path.join(root, 'fifo', id);
  execFileSync('mkfifo', [file]);
  const daemonEnd = await fs.promises.open(file, fs.constants.O_RDWR);
  registry.start(file, { ...info(id), config: { 'max-size': '200000', 'max-file': '1000', compress: 'false' } });
  // Writes go through the thread pool: a full pipe blocks a pool thread, not the reader.
  for (let pos = 0; pos < stream.length; ) {
    const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 64 : 70_000));
    await daemonEnd.write(stream.subarray(pos, pos + n));
    pos += n;
  }
  await daemonEnd.close(); // EOF: the follow below ends when the logger has stored everything
  fs.rmSync(file);
  const out: string[] = [];
  for await (const batch of registry.read(id, { sinceNano: null, untilNano: null, tail: -1, follow: true }, new AbortController().signal)) {
    // Every stored entry must decode: ReadLogs, delivery and a reopened writer all read them.
    for (const payload of batch) out.push(decodeLogEntry(payload).line.toString('latin1'));
  }
  return out;
}

function randomBytes(rand: () => number, n: number, avoidNewline: boolean): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) {
    let v = Math.floor(rand() * 256);
    // Without 0x0a no source field can start here, so it cannot pass for a frame start.
    if (avoidNewline && v === 0x0a) v = 0x0b;
    b[i] = v;
  }
  return b;
}

function validFrame(rand: () => number, n: number): { bytes: Buffer; line: string } {
  const body = randomBytes(rand, Math.floor(rand() * (rand() < 0.1 ? 20_000 : 80)), false).toString('latin1');
  const line = `${n}:${body}`;
  return { bytes: frame({ source: rand() < 0.5 ? 'stdout' : 'stderr', line: Buffer.from(line, 'latin1'), timeNano: 1_795_000_000_000_000_000n + BigInt(n) }), line };
}

function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length >>> 0);
  return h;
}

/** Valid frames with recoverable damage between them; returns the stream and the lines to expect. */
function recoverableStream(rand: () => number): { stream: Buffer; lines: string[] } {
  const parts: Buffer[] = [];
  const lines: string[] = [];
  const count = 5 + Math.floor(rand() * 60);
  for (let n = 0; n < count; n++) {
    const r = rand();
    if (r < 0.15) {
      // Garbage whose first byte makes an impossible length (≥ 16 MiB).
      const g = randomBytes(rand, 1 + Math.floor(rand() * 3000), true);
      g[0] = 1 + Math.floor(rand() * 255);
      if (g[0] === 0x0a) g[0] = 0x0b;
      parts.push(g);
    } else if (r < 0.25) {
      // A frame over the cap: its length is never allocated, its bytes are skipped.
      const claimed = [MAX_FRAME_BYTES + 1, 0x7fffffff, 0xffffffff, 64 << 20][Math.floor(rand() * 4)]!;
      parts.push(header(claimed), randomBytes(rand, Math.floor(rand() * 2000), true));
    } else if (r < 0.3) {
      // A frame too short to be a LogEntry.
      parts.push(header(Math.floor(rand() * 8)), randomBytes(rand, 3, true));
      const next = validFrame(rand, n); // must still be found
      parts.push(next.bytes);
      lines.push(next.line);
    } else if (r < 0.4) {
      // A well-framed payload that is not a LogEntry: counted as corrupt, the next frame is intact.
      const payload = randomBytes(rand, 8 + Math.floor(rand() * 500), true);
      parts.push(header(payload.length), payload);
    } else {
      const f = validFrame(rand, n);
      parts.push(f.bytes);
      lines.push(f.line);
    }
  }
  return { stream: Buffer.concat(parts), lines };
}

function mutatedStream(rand: () => number): { stream: Buffer; frames: number } {
  const frames = Array.from({ length: 5 + Math.floor(rand() * 80) }, (_, n) => validFrame(rand, n).bytes);
  let stream = Buffer.concat(frames);
  const mutations = 1 + Math.floor(rand() * 8);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(rand() * stream.length);
    const r = rand();
    if (r < 0.3) {
      stream[at] = stream[at]! ^ (1 << Math.floor(rand() * 8));
    } else if (r < 0.5) {
      stream = Buffer.concat([stream.subarray(0, at), stream.subarray(at + 1 + Math.floor(rand() * 50))]);
    } else if (r < 0.7) {
      stream = Buffer.concat([stream.subarray(0, at), randomBytes(rand, 1 + Math.floor(rand() * 50), false), stream.subarray(at)]);
    } else if (at + 4 <= stream.length) {
      const length = [0, 7, 8, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, 0xffffffff, Math.floor(rand() * 2 ** 32)][Math.floor(rand() * 7)]!;
      stream.writeUInt32BE(length >>> 0, at);
    }
  }
  // May end mid-frame. Inserted bytes may form at most one frame per insertion.
  return { stream: stream.subarray(0, Math.floor(stream.length * (0.5 + rand() / 2))), frames: frames.length + mutations };
}

describe(`fuzz (seed ${SEED}, ${BUDGET_MS} ms; replay with LOGSHIP_FUZZ_SEED=${SEED})`, () => {
  it('recovers every valid frame from streams with garbage, oversized and undecodable frames', async (t) => {
    const rand = prng(SEED);
    const start = Date.now();
    const damageCounted = async () => (await counterTotal(linesDropped)) + (await counterTotal(fifoBytesSkipped));
    const corruptBefore = await damageCounted();
    let rounds = 0;
    let damaged = 0;
    while (Date.now() - start < BUDGET_MS / 2 || rounds < 5) {
      const { stream, lines } = recoverableStream(rand);
      const got = await throughPlugin(stream, rand);
      assert.deepEqual(got, lines, `seed ${SEED}, round ${rounds}: stored lines differ from the valid frames sent`);
      if (stream.length > lines.reduce((n, l) => n + l.length, 0) * 2) damaged++;
      rounds++;
    }
    t.diagnostic(`${rounds} recoverable streams`);
    assert.ok((await damageCounted()) > corruptBefore, 'the damage was counted');
    assert.ok(damaged > 0, `seed ${SEED}: no round carried damage (fuzzer setup)`);
  });

  it('never throws or grows without bound on mutated streams, and reads back what it stored', async (t) => {
    const rand = prng(SEED ^ 0x5eed);
    const start = Date.now();
    const rssBefore = process.memoryUsage().rss;
    let rounds = 0;
    while (Date.now() - start < BUDGET_MS / 2 || rounds < 5) {
      const { stream, frames } = mutatedStream(rand);
      const got = await throughPlugin(stream, rand);
      assert.ok(got.length <= frames, `seed ${SEED}, round ${rounds}: ${got.length} lines stored from ${frames} frames`);
      rounds++;
    }
    t.diagnostic(`${rounds} mutated streams`);
    // A length of 4 GiB is never allocated: the process stays far below that.
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 256 << 20, `seed ${SEED}: rss grew by ${grown} bytes`);
  });

  it('store recovery: truncations and garbage tails of real segments lose no whole record', async (t) => {
    const rand = prng(SEED ^ 0x570e);
    const start = Date.now();
    let rounds = 0;
    let cut = 0;
    setLevel('error'); // every round logs its damage, as it should
    try {
      while (Date.now() - start < BUDGET_MS / 2 || rounds < 5) {
        const what = await tornStoreRound(rand, path.join(root, `torn-${rounds}`));
        if (what.lost > 0) cut++;
        rounds++;
      }
    } catch (err) {
      assert.fail(`seed ${SEED}, round ${rounds}: ${(err as Error).message}`);
    } finally {
      setLevel('info');
    }
    t.diagnostic(`${rounds} torn stores, ${cut} of them cut into their records`);
    assert.ok(cut > 0, `seed ${SEED}: no round cut into records (fuzzer setup)`);
  });
});

const ALL: ReadRequest = { sinceNano: null, untilNano: null, tail: -1, follow: false };

async function readText(store: ContainerStore, tail = -1): Promise<string[]> {
  const out: string[] = [];
  for await (const b of store.read({ ...ALL, tail }, new AbortController().signal)) for (const p of b) out.push(decodeLogEntry(p).line.toString('latin1'));
  return out;
}

/**
 * One round: a real store of random lines (rotated, maybe gzipped), its current segment cut
 * at a random byte and/or followed by garbage, zeros or a torn record; then a reader of the
 * stopped store, with and without --tail, and the reopened writer with new lines after.
 */
async function tornStoreRound(rand: () => number, dir: string): Promise<{ lost: number }> {
  const options = { maxSizeBytes: 2000 + Math.floor(rand() * 60_000), maxFiles: 1000, compress: rand() < 0.5 };
  const open = () => new ContainerStore(dir, options, MAX_FRAME_BYTES, (n, err) => assert.fail(`dropped ${n}: ${String(err)}`));
  const entries: EntryFields[] = [];
  const count = 1 + Math.floor(rand() * 600);
  for (let n = 0; n < count; n++) {
    const body = randomBytes(rand, Math.floor(rand() * (rand() < 0.05 ? 5000 : 60)), false).toString('latin1');
    entries.push({ source: rand() < 0.5 ? 'stdout' : 'stderr', line: Buffer.from(`${n}:${body}`, 'latin1'), timeNano: 1_795_000_000_000_000_000n + BigInt(n) });
  }
  const lines = entries.map((e) => (e.line as Buffer).toString('latin1'));
  const store = open();
  store.attachProducer();
  for (let i = 0; i < entries.length; ) {
    const n = 1 + Math.floor(rand() * 40);
    store.append(batch(entries.slice(i, i + n)));
    i += n;
  }
  store.detachProducer();
  await store.close();

  // The current segment holds the records after the rotated ones; find where each ends.
  const closed = readManifest(dir);
  const inClosed = closed.reduce((n, s) => n + s.count, 0);
  const file = segmentPath(dir, (closed.at(-1)?.seq ?? 0) + 1, false);
  const ends: number[] = [];
  for (const e of entries.slice(inClosed)) ends.push((ends.at(-1) ?? 0) + frame(e).length + 4);
  assert.equal(fs.statSync(file).size, ends.at(-1) ?? 0, 'the current segment holds the records after the rotated ones');

  // The damage.
  let size = ends.at(-1) ?? 0;
  const r = rand();
  if (r < 0.5) {
    size = Math.floor(rand() * (size + 1));
    fs.truncateSync(file, size);
  }
  if (r >= 0.35) {
    const kind = rand();
    const tail =
      kind < 0.3
        ? randomBytes(rand, 1 + Math.floor(rand() * 64), false)
        : kind < 0.55
          ? Buffer.alloc(1 + Math.floor(rand() * 8192))
          : kind < 0.8
            ? frame({ line: 'torn' + 'x'.repeat(Math.floor(rand() * 100)) }).subarray(0, 1 + Math.floor(rand() * 50))
            : Buffer.concat([frame({ line: 'bad trailer' }), randomBytes(rand, 4, false)]);
    fs.appendFileSync(file, tail);
  }
  const kept = ends.filter((end) => end <= size).length;
  const expected = lines.slice(0, inClosed + kept);

  const stopped = open(); // docker logs of the stopped container: no writer, the files as they are
  assert.deepEqual(await readText(stopped), expected, 'a reader of the stopped store sees the records before the damage');
  const tail = 1 + Math.floor(rand() * (expected.length + 5));
  assert.deepEqual(await readText(stopped, tail), expected.slice(-tail), `--tail ${tail} of the stopped store`);

  const reopened = open();
  reopened.attachProducer();
  const more: EntryFields[] = [{ source: 'stdout', line: 'after the crash', timeNano: 1_796_000_000_000_000_000n }];
  reopened.append(batch(more));
  reopened.detachProducer();
  await reopened.close();
  assert.deepEqual(await readText(open()), [...expected, 'after the crash'], 'the reopened store keeps them and appends after them');
  fs.rmSync(dir, { recursive: true, force: true });
  return { lost: lines.length - expected.length };
}
