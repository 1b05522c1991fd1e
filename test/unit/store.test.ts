import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type LogEntry, decodeLogEntry } from '../../src/codec/log-entry.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import type { ReadRequest } from '../../src/store/log-reader.ts';
import { readManifest } from '../../src/store/segments.ts';
import { type EntryFields, T0, batch, frame, lines } from './frames.ts';
import type { StoreOptions } from '../../src/store/options.ts';

const MAX_PAYLOAD = 1 << 20;
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-store-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function openStore(options: StoreOptions): ContainerStore {
  return new ContainerStore(dir, options, MAX_PAYLOAD, (lines, err) => assert.fail(`dropped ${lines}: ${String(err)}`));
}

/** Appends in batches of `size`, as FIFO chunks would arrive, and waits for the writer. */
async function fill(store: ContainerStore, entries: EntryFields[], size = 7): Promise<void> {
  store.attachProducer();
  for (let i = 0; i < entries.length; i += size) store.append(batch(entries.slice(i, i + size)));
  store.detachProducer();
  await store.close(); // waits for background compression too
}

const ALL: ReadRequest = { sinceNano: null, untilNano: null, tail: -1, follow: false };

async function read(store: ContainerStore, req: Partial<ReadRequest> = {}, signal = new AbortController().signal): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const batch of store.read({ ...ALL, ...req }, signal)) out.push(...batch.map(decodeLogEntry));
  return out;
}

/**
 * Resolves when a follower of `store` next waits for a change: it has read all it will
 * from what it saw, so what is appended after that is new to it.
 */
function followerWaits(store: ContainerStore): Promise<void> {
  const nextChange = store.nextChange;
  return new Promise((resolve) => {
    store.nextChange = (seen, signal) => {
      store.nextChange = nextChange;
      resolve();
      return nextChange.call(store, seen, signal);
    };
  });
}

const text = (entries: LogEntry[]) => entries.map((e) => e.line.toString());
const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

describe('store: writing and rotation', () => {
  it('keeps max-file files, compresses rotated ones, and keeps a contiguous suffix', async () => {
    const store = openStore({ maxSizeBytes: 1000, maxFiles: 3, compress: true });
    await fill(store, lines(500));
    const names = fs.readdirSync(dir).sort();
    assert.deepEqual(names.filter((n) => n.endsWith('.gz')).length, 2, names.join(' '));
    assert.deepEqual(names.filter((n) => n.endsWith('.log')).length, 1, names.join(' '));
    for (const seg of readManifest(dir)) assert.ok(seg.bytes <= 1000, `segment ${seg.seq} has ${seg.bytes} bytes`);
    const got = text(await read(store));
    const first = Number(got[0]!.split(' ')[1]);
    assert.deepEqual(got, numbered(first, 500));
    assert.ok(got.length > 2 * 25, `kept ${got.length} lines`); // two full segments at least
  });

  it('keeps plain files when compress is false', async () => {
    const store = openStore({ maxSizeBytes: 1000, maxFiles: 4, compress: false });
    await fill(store, lines(300));
    const names = fs.readdirSync(dir).filter((n) => n.includes('.log'));
    assert.equal(names.length, 4);
    assert.ok(names.every((n) => n.endsWith('.log')));
    assert.equal(text(await read(store)).at(-1), 'line 300');
  });

  it('with max-file=1 keeps only the current file', async () => {
    const store = openStore({ maxSizeBytes: 1000, maxFiles: 1, compress: false });
    await fill(store, lines(300));
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.log')).length, 1);
    const got = text(await read(store));
    assert.equal(got.at(-1), 'line 300');
    assert.ok(got.length < 60);
  });

  it('puts a record larger than max-size in a file of its own, and loses nothing', async () => {
    const store = openStore({ maxSizeBytes: 100, maxFiles: 10, compress: true });
    const big = 'x'.repeat(500);
    await fill(store, [{ line: 'before' }, { line: big }, { line: 'after' }], 3);
    assert.deepEqual(text(await read(store)), ['before', big, 'after']);
    assert.deepEqual(readManifest(dir).map((s) => s.count), [1, 1]);
  });

  it('rotates exactly at the limit: a record that fits is kept in the file', async () => {
    const one = frame({ line: 'line 1' }).length + 4; // on-disk record size
    const store = openStore({ maxSizeBytes: one * 3, maxFiles: 5, compress: false });
    await fill(store, lines(7), 1);
    assert.deepEqual(readManifest(dir).map((s) => [s.count, s.bytes]), [[3, one * 3], [3, one * 3]]);
    assert.deepEqual(text(await read(store)), numbered(1, 7));
  });

  it('keeps what it queues while the writer opens, though the caller reuses the bytes at once', async () => {
    const store = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: false });
    store.attachProducer();
    for (let i = 0; i < 10; i += 5) {
      const b = batch(lines(5, T0 + BigInt(i) * 1000n, i + 1));
      store.append(b); // the writer is not open yet: this batch waits
      b.buf.fill(0); // as the FIFO reader's next read would
    }
    store.detachProducer();
    await store.close();
    assert.deepEqual(text(await read(store)), numbered(1, 10));
  });

  it('survives reopening: counts, sequence and content carry on', async () => {
    await fill(openStore({ maxSizeBytes: 1000, maxFiles: 50, compress: true }), lines(100));
    const again = openStore({ maxSizeBytes: 1000, maxFiles: 50, compress: true });
    await fill(again, lines(100, T0 + 1_000_000n, 101));
    assert.deepEqual(text(await read(again)), numbered(1, 200));
    assert.deepEqual(text(await read(again, { tail: 150 })), numbered(51, 200));
  });

  it('cuts a torn record off the end after a crash and appends after it', async () => {
    await fill(openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true }), lines(10));
    const current = path.join(dir, fs.readdirSync(dir).find((n) => n.endsWith('.log'))!);
    fs.appendFileSync(current, frame({ line: 'torn' }).subarray(0, 9));
    const again = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true });
    await fill(again, lines(2, T0 + 1_000_000n, 11));
    assert.deepEqual(text(await read(again)), numbered(1, 12));
  });
});

describe('store: reading', () => {
  // 400 lines over several compressed segments, one plain closed segment maybe, and the current one.
  async function filled(): Promise<ContainerStore> {
    const store = openStore({ maxSizeBytes: 2000, maxFiles: 100, compress: true });
    await fill(store, lines(400));
    assert.ok(readManifest(dir).length >= 5, 'the fixture spans several segments');
    assert.ok(readManifest(dir).every((s) => s.compressed));
    return store;
  }

  it('reads everything in order across compressed segments', async () => {
    assert.deepEqual(text(await read(await filled())), numbered(1, 400));
  });

  it('applies tail within the current file, across segments, and beyond the total', async () => {
    const store = await filled();
    const currentCount = 400 - readManifest(dir).reduce((n, s) => n + s.count, 0);
    for (const tail of [1, 5, currentCount, currentCount + 1, 123, 399, 400, 401, 10_000]) {
      assert.deepEqual(text(await read(store, { tail })), numbered(Math.max(1, 401 - tail), 400), `tail ${tail}`);
    }
    assert.deepEqual(await read(store, { tail: 0 }), []);
    assert.deepEqual(text(await read(store, { tail: -7 })), numbered(1, 400));
  });

  it('applies since and until by the stored nanosecond times', async () => {
    const store = await filled();
    const at = (n: number) => T0 + BigInt(n - 1) * 1000n;
    assert.deepEqual(text(await read(store, { sinceNano: at(250) })), numbered(250, 400));
    assert.deepEqual(text(await read(store, { sinceNano: at(250) + 1n })), numbered(251, 400));
    assert.deepEqual(text(await read(store, { untilNano: at(30) })), numbered(1, 30));
    assert.deepEqual(text(await read(store, { sinceNano: at(100), untilNano: at(300) })), numbered(100, 300));
    assert.deepEqual(await read(store, { sinceNano: at(401) }), []);
    assert.deepEqual(await read(store, { untilNano: T0 - 1n }), []);
  });

  it('cuts the tail window first, then applies since', async () => {
    const store = await filled();
    const at = (n: number) => T0 + BigInt(n - 1) * 1000n;
    assert.deepEqual(text(await read(store, { tail: 50, sinceNano: at(10) })), numbered(351, 400));
    assert.deepEqual(text(await read(store, { tail: 50, sinceNano: at(380) })), numbered(380, 400));
  });

  it('does not filter again after the first entry passes since (times are not monotonic)', async () => {
    const store = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true });
    await fill(store, [5n, 11n, 9n, 12n].map((t) => ({ line: `t${t}`, timeNano: T0 + t })));
    assert.deepEqual(text(await read(store, { sinceNano: T0 + 10n })), ['t11', 't9', 't12']);
  });

  it('reads a store no writer has open (docker logs of a stopped container)', async () => {
    await filled();
    const fresh = openStore({ maxSizeBytes: 2000, maxFiles: 100, compress: true });
    assert.deepEqual(text(await read(fresh, { tail: 3 })), numbered(398, 400));
  });

  it('reads a segment whose compression has not finished', async () => {
    const store = openStore({ maxSizeBytes: 500, maxFiles: 100, compress: true });
    store.attachProducer();
    store.append(batch(lines(100)));
    await new Promise((r) => setImmediate(r));
    store.append(batch(lines(100, T0 + 1_000_000n, 101)));
    assert.deepEqual(text(await read(store)), numbered(1, 200)); // some segments still plain
    store.detachProducer();
    await store.close();
    assert.deepEqual(text(await read(store)), numbered(1, 200));
  });
});

describe('store: damage', () => {
  it('skips the rest of a damaged segment and reads the segments after it', async () => {
    const store = openStore({ maxSizeBytes: 1000, maxFiles: 100, compress: false });
    await fill(store, lines(200));
    const [first, second] = readManifest(dir);
    const victim = path.join(dir, `${String(second!.seq).padStart(8, '0')}.log`);
    const bytes = fs.readFileSync(victim);
    bytes.writeUInt32BE(0xffffff, 0); // the first record's length no longer matches its trailer
    fs.writeFileSync(victim, bytes);
    const got = text(await read(store));
    assert.deepEqual(got.slice(0, first!.count), numbered(1, first!.count));
    const resumeAt = first!.count + second!.count + 1;
    assert.deepEqual(got.slice(first!.count), numbered(resumeAt, 200));
  });
});

describe('store: follow', () => {
  it('never misses a wake-up: a change before waiting resolves the wait at once', async () => {
    const store = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true });
    store.attachProducer();
    const seen = store.changeCount();
    store.append(batch(lines(1)));
    await new Promise((r) => setTimeout(r, 20));
    const never = new AbortController();
    const woke = await Promise.race([store.nextChange(seen, never.signal).then(() => true), new Promise((r) => setTimeout(() => r(false), 500))]);
    assert.equal(woke, true);
    store.detachProducer();
    await store.close();
  });

  it('streams new records across rotations and ends when logging ends', async () => {
    const store = openStore({ maxSizeBytes: 600, maxFiles: 100, compress: true });
    store.attachProducer();
    store.append(batch(lines(10)));
    let waits = followerWaits(store);
    const reading = read(store, { follow: true, tail: 2 });
    for (let i = 0; i < 20; i++) {
      await waits; // caught up: each append is new to it, and some rotate under it
      waits = followerWaits(store);
      store.append(batch(lines(10, T0 + BigInt(i + 1) * 1_000_000n, 11 + i * 10)));
    }
    store.detachProducer();
    assert.deepEqual(text(await reading), numbered(9, 210));
    assert.ok(readManifest(dir).length > 3, 'the follower crossed rotations');
    await store.close();
  });

  it('with tail 0 sends only new records', async () => {
    const store = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true });
    store.attachProducer();
    store.append(batch(lines(5)));
    const waits = followerWaits(store);
    const reading = read(store, { follow: true, tail: 0 });
    await waits; // its tail window is cut: lines 1-5 are history it skipped
    store.append(batch(lines(2, T0 + 1_000_000n, 6)));
    store.detachProducer();
    assert.deepEqual(text(await reading), ['line 6', 'line 7']);
    await store.close();
  });

  it('stops when the client goes away', async () => {
    const store = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true });
    store.attachProducer();
    const abort = new AbortController();
    const waits = followerWaits(store);
    const reading = read(store, { follow: true }, abort.signal);
    await waits;
    abort.abort();
    assert.deepEqual(await reading, []);
    store.detachProducer();
    await store.close();
  });

  it('does not follow a container whose logging has ended', async () => {
    const store = openStore({ maxSizeBytes: 1_000_000, maxFiles: 2, compress: true });
    await fill(store, lines(3));
    assert.deepEqual(text(await read(store, { follow: true })), numbered(1, 3));
  });
});
