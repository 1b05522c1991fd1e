// Delivery cursors against the store after a crash or a power cut, on real files: a cursor
// that points past what reached the disk, an offset that is not at a record boundary, a
// cursor that cannot be read, and the order in which data and cursor are made durable.
// The power cut is made the way it ends: the current segment cut back (with a torn tail)
// below what the cursor had passed, then the container logs on and the store gives the lost
// records' indexes to its new lines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type Backend, DELIVERED, type SendResult, type BackendPlan } from '../../src/delivery/backend.ts';
import { CursorFile } from '../../src/delivery/cursor.ts';
import { DeadLetterFile } from '../../src/delivery/dead-letters.ts';
import { Shipper } from '../../src/delivery/shipper.ts';
import { backendDropped } from '../../src/observability/metrics.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import { readManifest, segmentPath } from '../../src/store/segments.ts';
import { T0, batch, frame, lines } from './frames.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import type { StoreOptions } from '../../src/store/options.ts';

const ID = 'd'.repeat(64);
const CONTEXT = { id: ID, name: 'app', imageId: '', imageName: '', created: '', command: '', daemonName: 'docker', tag: ID.slice(0, 12), tagSet: false, tagEmpty: false, attributes: [], hostname: 'h', info: { id: '', name: '', imageId: '', imageName: '', entrypoint: '', args: [], env: [], labels: {}, config: {}, daemonName: 'docker', hostname: 'h' } };
const OPTIONS: StoreOptions = { maxSizeBytes: 1_000_000, maxFiles: 5, compress: false };
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-cursor-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Takes every batch at once. */
class Receiver implements Backend {
  readonly got: string[] = [];
  send(lines: readonly OutgoingLine[]): Promise<SendResult> {
    this.got.push(...lines.map((l) => l.line.toString()));
    return Promise.resolve(DELIVERED);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function plan(backend: Backend, name = 'test'): BackendPlan {
  return {
    name,
    limits: { maxLines: 100, maxBytes: 1 << 20, maxDelayMs: 5 },
    retry: { initialDelayMs: 2, maxDelayMs: 10 },
    multiline: null,
    parseJson: false,
    create: () => backend,
  };
}

function openStore(options = OPTIONS): ContainerStore {
  return new ContainerStore(dir, options, 1 << 20, (n, err) => assert.fail(`dropped ${n}: ${String(err)}`));
}

const entriesOf = (from: number, to: number) => lines(to - from + 1, T0 + BigInt(from) * 1000n, from);
/** The bytes records from..to take in a segment. */
const recordBytes = (from: number, to: number) => entriesOf(from, to).reduce((n, e) => n + frame(e).length + 4, 0);
const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

function append(store: ContainerStore, from: number, to: number): void {
  const entries = entriesOf(from, to);
  for (let i = 0; i < entries.length; i += 10) store.append(batch(entries.slice(i, i + 10)));
}

async function write(from: number, to: number, options = OPTIONS): Promise<void> {
  const store = openStore(options);
  store.attachProducer();
  append(store, from, to);
  store.detachProducer();
  await store.close();
}

function writeCursor(backend: string, json: object): void {
  fs.mkdirSync(path.join(dir, 'cursors'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cursors', `${backend}.json`), JSON.stringify({ version: 1, ...json }));
}

/**
 * A StartLogging after the reboot: the shipper starts from the saved cursor, then the
 * container logs lines `from`..`to`; returns what the receiver got once `expected` lines
 * arrived (or 10 s passed) and the container stopped.
 */
async function restartAndLog(from: number, to: number, expected: number, options = OPTIONS): Promise<string[]> {
  const store = openStore(options);
  store.attachProducer();
  const receiver = new Receiver();
  const shipper = new Shipper(store, plan(receiver), CONTEXT, new CursorFile(dir, 'test', () => store.syncData()), new DeadLetterFile(dir, 'test'));
  append(store, from, to);
  for (let waited = 0; receiver.got.length < expected && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  store.detachProducer();
  await shipper.done;
  await store.close();
  return receiver.got;
}

/** The power cut: records after `keep` never reached the disk, and a torn record follows the last one that did. */
function cutAfter(keep: number): void {
  const file = segmentPath(dir, 1, false);
  fs.truncateSync(file, recordBytes(1, keep));
  fs.appendFileSync(file, frame({ line: 'half written' }).subarray(0, 11));
}

describe('cursors after a power cut (finding 4)', () => {
  it('a cursor from another boot resumes at its durable position: the lines logged after the cut all ship', async () => {
    await write(1, 1000);
    writeCursor('test', {
      index: 1000, seq: 1, offset: recordBytes(1, 1000),
      boot: 'an-earlier-boot',
      durable: { index: 600, seq: 1, offset: recordBytes(1, 600) },
    });
    cutAfter(800); // 800 records survive; 600 were synced before the cursor said so
    // 601..800 ship again (at least once); the 300 new lines all ship, in order.
    const expected = [...numbered(601, 800), ...numbered(1001, 1300)];
    assert.deepEqual(await restartAndLog(1001, 1300, expected.length), expected);
  });

  it('a cursor of an earlier version past the end of the store is brought back to its end', async () => {
    await write(1, 1000);
    writeCursor('test', { index: 1000, seq: 1, offset: recordBytes(1, 1000) });
    cutAfter(800);
    assert.deepEqual(await restartAndLog(1001, 1300, 300), numbered(1001, 1300));
  });

  it('an offset that is not at a record boundary falls back to the record index', async () => {
    await write(1, 1000);
    writeCursor('test', { index: 500, seq: 1, offset: recordBytes(1, 500) + 3 });
    assert.deepEqual(await restartAndLog(1001, 1010, 510), [...numbered(501, 1000), ...numbered(1001, 1010)]);
  });

  it('an index in a rotated segment, with a bad offset, is found by counting there', async () => {
    const small = { ...OPTIONS, maxSizeBytes: 10_000 };
    await write(1, 1000, small);
    const [first] = readManifest(dir);
    assert.ok(first && first.count > 100, 'the fixture rotated');
    writeCursor('test', { index: 50, seq: first.seq, offset: 7 });
    assert.deepEqual(await restartAndLog(1001, 1010, 960, small), [...numbered(51, 1000), ...numbered(1001, 1010)]);
  });

  it('a valid cursor is trusted as it is', async () => {
    await write(1, 1000);
    writeCursor('test', { index: 990, seq: 1, offset: recordBytes(1, 990) });
    assert.deepEqual(await restartAndLog(1001, 1005, 15), [...numbered(991, 1000), ...numbered(1001, 1005)]);
  });
});

describe('cursor durability', () => {
  it('records a position as durable only once the store\'s data was synced, and the one acknowledged before that sync', async () => {
    let release!: () => void;
    const synced = new Promise<void>((resolve) => (release = resolve));
    let syncs = 0;
    const cursor = new CursorFile(dir, 'test', () => {
      syncs++;
      return synced;
    });
    const read = () => JSON.parse(fs.readFileSync(cursor.path, 'utf8')) as { index: number; durable?: { index: number } };
    cursor.save({ index: 10, seq: 1, offset: 100 });
    cursor.save({ index: 20, seq: 1, offset: 200 });
    assert.equal(read().index, 20);
    assert.equal(read().durable, undefined, 'nothing is durable before the data is');
    assert.equal(syncs, 1, 'one sync at a time, at most once a second');
    release();
    await synced;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(read().durable, { index: 10, seq: 1, offset: 100 });
    assert.equal(read().index, 20);
    assert.deepEqual(new CursorFile(dir, 'test').load(), { index: 20, seq: 1, offset: 200 }, 'in the same boot: the latest position');
  });

  it('a real store: the cursor says durable after ContainerStore.syncData', async () => {
    await write(1, 100);
    const store = openStore();
    const cursor = new CursorFile(dir, 'test', () => store.syncData());
    cursor.save({ index: 100, seq: 1, offset: recordBytes(1, 100) });
    for (let i = 0; i < 2000 && !fs.readFileSync(cursor.path, 'utf8').includes('durable'); i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(JSON.parse(fs.readFileSync(cursor.path, 'utf8')).durable, { index: 100, seq: 1, offset: recordBytes(1, 100) });
    await store.close();
  });
});

describe('cursor file', () => {
  it('is made once by a rename, then rewritten in place at a fixed size; an earlier version\'s is replaced', async () => {
    writeCursor('test', { index: 0, seq: 1, offset: 0 }); // as earlier versions wrote it: no padding
    let release!: () => void;
    const synced = new Promise<void>((resolve) => (release = resolve));
    const cursor = new CursorFile(dir, 'test', () => synced);
    const inode = () => fs.statSync(cursor.path).ino;
    const before = inode();
    cursor.save({ index: 10, seq: 1, offset: 100 });
    const made = inode();
    assert.notEqual(made, before, 'the unpadded file is replaced');
    assert.equal(fs.statSync(cursor.path).size, 256);
    for (let i = 1; i <= 50; i++) cursor.save({ index: 10 + i, seq: 1 + Math.floor(i / 10), offset: i % 10 === 0 ? 0 : 123_456_789 * i });
    assert.equal(inode(), made, 'rewritten in place, not renamed over');
    assert.equal(fs.statSync(cursor.path).size, 256);
    assert.equal(fs.existsSync(`${cursor.path}.tmp`), false);
    release();
    await synced;
    await new Promise((r) => setImmediate(r));
    const json = JSON.parse(fs.readFileSync(cursor.path, 'utf8'));
    assert.deepEqual(json.durable, { index: 10, seq: 1, offset: 100 }, 'the durable position written in place too');
    assert.deepEqual(new CursorFile(dir, 'test').load(), { index: 60, seq: 6, offset: 0 }, 'a shorter JSON leaves no bytes of the longer one');
    assert.equal(inode(), made);
  });

  it('is made again when it was removed, but not its folder', () => {
    const cursor = new CursorFile(dir, 'test');
    cursor.save({ index: 1, seq: 1, offset: 10 });
    fs.rmSync(cursor.path);
    cursor.save({ index: 2, seq: 1, offset: 20 });
    assert.deepEqual(new CursorFile(dir, 'test').load(), { index: 2, seq: 1, offset: 20 });
    fs.rmSync(path.join(dir, 'cursors'), { recursive: true });
    fs.rmSync(dir, { recursive: true });
    assert.throws(() => cursor.save({ index: 3, seq: 1, offset: 30 }), /ENOENT/);
    assert.equal(fs.existsSync(dir), false, 'a store folder removed (retention) is not brought back');
    fs.mkdirSync(dir); // for afterEach
  });
});

describe('an unreadable cursor (finding 7)', () => {
  it('ships again from the oldest record held, and counts nothing as lost', async () => {
    const small = { ...OPTIONS, maxSizeBytes: 5000, maxFiles: 3 };
    await write(1, 1000, small);
    const oldest = readManifest(dir)[0]!;
    assert.ok(oldest.firstIndex > 0, 'the fixture evicted its oldest segments');
    fs.mkdirSync(path.join(dir, 'cursors'));
    fs.writeFileSync(path.join(dir, 'cursors', 'test.json'), '{"version":1,"index":');
    const lost = async () => (await backendDropped.get()).values.filter((v) => v.labels.backend === 'test').reduce((n, v) => n + v.value, 0);
    const before = await lost();
    const expected = numbered(oldest.firstIndex + 1, 1010);
    assert.deepEqual(await restartAndLog(1001, 1010, expected.length, small), expected);
    assert.equal(await lost(), before, 'nothing counted as dropped');
  });
});
