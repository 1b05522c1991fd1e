// The store after a crash or a power cut, on real files: what a torn or garbage tail costs
// (only the bytes of the tear), and `docker logs` of a stopped container whose current
// segment ends in one. The damage is made the way it happens: bytes cut off or added at the
// end of the current segment of a store the real writer wrote.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import type { ReadRequest } from '../../src/store/log-reader.ts';
import { readManifest, segmentPath } from '../../src/store/segments.ts';
import { T0, batch, frame, lines } from './frames.ts';
import type { StoreOptions } from '../../src/store/options.ts';

const OPTIONS: StoreOptions = { maxSizeBytes: 1_000_000, maxFiles: 5, compress: false };
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-recovery-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function openStore(options = OPTIONS): ContainerStore {
  return new ContainerStore(dir, options, 1 << 20, (n, err) => assert.fail(`dropped ${n}: ${String(err)}`));
}

async function write(from: number, to: number, options = OPTIONS): Promise<void> {
  const store = openStore(options);
  store.attachProducer();
  const entries = entriesOf(from, to);
  for (let i = 0; i < entries.length; i += 10) store.append(batch(entries.slice(i, i + 10)));
  store.detachProducer();
  await store.close();
}

async function read(store: ContainerStore, req: Partial<ReadRequest> = {}): Promise<string[]> {
  const out: string[] = [];
  const full: ReadRequest = { sinceNano: null, untilNano: null, tail: -1, follow: false, ...req };
  for await (const b of store.read(full, new AbortController().signal)) out.push(...b.map((p) => decodeLogEntry(p).line.toString()));
  return out;
}

const entriesOf = (from: number, to: number) => lines(to - from + 1, T0 + BigInt(from) * 1000n, from);
/** The bytes records from..to take in a segment. */
const recordBytes = (from: number, to: number) => entriesOf(from, to).reduce((n, e) => n + frame(e).length + 4, 0);
const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

function currentSegment(): string {
  const closed = readManifest(dir).at(-1)?.seq ?? 0;
  return segmentPath(dir, closed + 1, false);
}

/** The tails a crash or a power cut leaves: garbage, zeros (a size written before its data), a torn record. */
const TEARS: [string, Buffer][] = [
  ['16 bytes of garbage', Buffer.from('ffeeddccbbaa99887766554433221100', 'hex')],
  ['16 zero bytes', Buffer.alloc(16)],
  ['a record cut short', frame({ line: 'torn' }).subarray(0, 9)],
  ['a record whose trailer is wrong', Buffer.concat([frame({ line: 'bad trailer' }), Buffer.from([0, 0, 0, 1])])],
];

describe('store: a torn tail (finding 5: recovery keeps every whole record before the tear)', () => {
  for (const [what, tear] of TEARS) {
    it(`${what} after 1,000 records costs no record when the writer reopens`, async () => {
      await write(1, 1000);
      const file = currentSegment();
      assert.equal(fs.statSync(file).size, recordBytes(1, 1000));
      fs.appendFileSync(file, tear);
      await write(1001, 1002);
      const store = openStore();
      assert.deepEqual(await read(store), numbered(1, 1002));
      assert.equal(fs.statSync(file).size, recordBytes(1, 1002), 'the tear is cut off, the new records follow the old');
      assert.deepEqual(await read(store, { tail: 3 }), numbered(1000, 1002));
    });
  }

  it('keeps the records of a segment larger than one recovery read (1 MiB) up to the tear', async () => {
    const big = { ...OPTIONS, maxSizeBytes: 10_000_000 };
    await write(1, 60_000, big);
    const file = currentSegment();
    const whole = fs.statSync(file).size;
    assert.ok(whole > 1 << 20, `segment of ${whole} bytes`);
    fs.appendFileSync(file, TEARS[0]![1]);
    await write(60_001, 60_001, big);
    const got = await read(openStore(big));
    assert.equal(got.length, 60_001);
    assert.equal(got.at(-1), 'line 60001');
  });
});

describe('store: docker logs of a stopped container whose segment is torn (finding 6)', () => {
  for (const [what, tear] of TEARS) {
    it(`--tail 5 and --tail all with ${what}`, async () => {
      await write(1, 300);
      fs.appendFileSync(currentSegment(), tear);
      const stopped = openStore(); // no writer: read from the files as they are
      assert.deepEqual(await read(stopped, { tail: 5 }), numbered(296, 300));
      assert.deepEqual(await read(stopped, { tail: 300 }), numbered(1, 300));
      assert.deepEqual(await read(stopped), numbered(1, 300));
    });
  }

  it('--tail across a rotated segment when the current one is torn', async () => {
    const small = { ...OPTIONS, maxSizeBytes: 2000 };
    await write(1, 300, small);
    assert.ok(readManifest(dir).length > 2, 'the fixture rotated');
    fs.appendFileSync(currentSegment(), TEARS[0]![1]);
    const stopped = openStore(small);
    assert.deepEqual(await read(stopped, { tail: 150 }), numbered(151, 300));
  });
});

describe('store: damage inside a rotated segment', () => {
  it('a reader hands on every whole record before the damaged one, then reads the segments after it', async () => {
    const options = { ...OPTIONS, maxSizeBytes: 60_000 };
    await write(1, 5000, options);
    const [first, second] = readManifest(dir);
    assert.ok(first && second && first.count > 1000, 'the fixture has full rotated segments');
    const file = segmentPath(dir, first.seq, false);
    const bytes = fs.readFileSync(file);
    const at = recordBytes(1, 500); // the start of record 501
    bytes.writeUInt32BE(0xffffff, at);
    fs.writeFileSync(file, bytes);
    const got = await read(openStore(options));
    assert.deepEqual(got.slice(0, 500), numbered(1, 500));
    assert.deepEqual(got.slice(500), numbered(first.count + 1, 5000));
  });
});
