// The writer when the disk refuses a step (full disk, I/O error): the failed records are
// counted as dropped, the store stays readable and consistent, and it works again as soon as
// the obstacle goes. The failures are made real, without root or a full disk: a directory
// where the writer must create a file makes that open or rename fail (EISDIR).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ContainerStore } from '../../src/store/container-store.ts';
import { LogWriter } from '../../src/store/log-writer.ts';
import { readManifest, segmentPath } from '../../src/store/segments.ts';
import { T0, batch, lines } from './frames.ts';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-faults-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

async function readAll(store: ContainerStore): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of store.read({ sinceNano: null, untilNano: null, tail: -1, follow: false }, new AbortController().signal)) {
    for (const payload of batch) out.push(decodeLogEntry(payload).line.toString());
  }
  return out;
}

/** A store whose drops are counted, fed one line per append like a trickle of FIFO chunks. */
function storeCountingDrops(maxFiles: number, compress = false) {
  const dropped = { lines: 0 };
  const store = new ContainerStore(dir, { maxSizeBytes: 400, maxFiles, compress }, 1 << 20, (n) => (dropped.lines += n));
  store.attachProducer();
  const append = async (from: number, to: number) => {
    for (const entry of lines(to - from + 1, T0, from)) store.append(batch([entry]));
    await readAll(store); // waits for the writer to open; the same writer carries on
  };
  return { store, dropped, append };
}

describe('store: failures and recovery', () => {
  it('a rotation whose manifest cannot be written keeps the current segment, and rotates once it can', async () => {
    const { store, dropped, append } = storeCountingDrops(100);
    await append(1, 30); // ~20-byte records, 400-byte segments: a few rotations
    const before = readManifest(dir).length;
    fs.mkdirSync(path.join(dir, 'segments.json.tmp')); // the next manifest write fails
    await append(31, 60);
    assert.ok(dropped.lines > 0, 'records that needed the failed rotation were dropped');
    assert.equal(readManifest(dir).length, before, 'no segment closed without a manifest');
    const stored = await readAll(store);
    fs.rmdirSync(path.join(dir, 'segments.json.tmp'));
    const droppedWhileBlocked = dropped.lines;
    await append(61, 120);
    assert.equal(dropped.lines, droppedWhileBlocked, 'nothing dropped once the manifest can be written');
    assert.ok(readManifest(dir).length > before, 'rotation resumed');
    const after = await readAll(store);
    assert.deepEqual(after.slice(0, stored.length), stored, 'what was stored stays, in order');
    assert.deepEqual(after.slice(-60), numbered(61, 120));
    assert.equal(after.length, 120 - droppedWhileBlocked);
  });

  it('a new segment that cannot be created is created by a later write', async () => {
    const { store, dropped, append } = storeCountingDrops(100);
    await append(1, 10);
    const next = readManifest(dir).length + 2; // the current segment's seq + 1
    fs.mkdirSync(segmentPath(dir, next, false));
    await append(11, 40);
    assert.ok(dropped.lines > 0);
    fs.rmdirSync(segmentPath(dir, next, false));
    const droppedWhileBlocked = dropped.lines;
    await append(41, 80);
    assert.equal(dropped.lines, droppedWhileBlocked);
    const got = await readAll(store);
    assert.deepEqual(got.slice(-40), numbered(41, 80));
    assert.equal(got.length, 80 - droppedWhileBlocked);
  });

  it('compression that failed is tried again at a later rotation', async () => {
    const store = new ContainerStore(dir, { maxSizeBytes: 400, maxFiles: 100, compress: true }, 1 << 20, () => assert.fail('dropped'));
    const append = (from: number, to: number) => {
      for (const entry of lines(to - from + 1, T0, from)) store.append(batch([entry]));
    };
    append(1, 1);
    await readAll(store); // waits for the writer to open
    const tmp = segmentPath(dir, 1, true) + '.tmp';
    fs.mkdirSync(tmp); // gzip of segment 1 cannot write its temporary file
    append(2, 30);
    await readAll(store);
    await new Promise((r) => setTimeout(r, 50)); // compression runs in the background
    assert.ok(fs.existsSync(segmentPath(dir, 1, false)), 'segment 1 stays plain');
    fs.rmdirSync(tmp);
    append(31, 60);
    await store.close();
    assert.ok(fs.existsSync(segmentPath(dir, 1, true)) && !fs.existsSync(segmentPath(dir, 1, false)), 'segment 1 compressed later');
    assert.deepEqual(await readAll(store), numbered(1, 60));
  });

  it('an eviction whose manifest was not written is not resurrected on reopen', async () => {
    const { store, append } = storeCountingDrops(100);
    await append(1, 60);
    await store.close();
    const writer = await LogWriter.open(dir, { maxSizeBytes: 400, maxFiles: 100, compress: false }, 1 << 20);
    const closedBefore = readManifest(dir);
    fs.mkdirSync(path.join(dir, 'segments.json.tmp'));
    assert.throws(() => writer.evictOldest()); // files removed, manifest not rewritten
    fs.rmdirSync(path.join(dir, 'segments.json.tmp'));
    await writer.close();
    const reopened = await LogWriter.open(dir, { maxSizeBytes: 400, maxFiles: 100, compress: false }, 1 << 20);
    assert.deepEqual(reopened.snapshot().closed.map((s) => s.seq), closedBefore.slice(1).map((s) => s.seq));
    await reopened.close();
  });
});
