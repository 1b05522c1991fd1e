// Retention and quota over real stores in a data folder, through the registry that owns them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import { counterTotal, segmentsEvicted, storesRemoved } from '../../src/observability/metrics.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import { readManifest } from '../../src/store/segments.ts';
import { T0, batch, frame, lines } from './frames.ts';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import type { ContainerInfo } from '../../src/shaping/container.ts';

let root: string;
let dataDir: string;
let fifoDir: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-janitor-'));
  dataDir = path.join(root, 'data');
  fifoDir = path.join(root, 'fifo');
  fs.mkdirSync(fifoDir);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const HOUR = 3_600_000;
const storeDir = (id: string) => path.join(dataDir, 'containers', id);

/** A store of n numbered lines in 400-byte segments, its records timed from `start`. */
async function makeStore(id: string, n: number, start = T0): Promise<void> {
  const store = new ContainerStore(storeDir(id), { maxSizeBytes: 400, maxFiles: 1000, compress: false }, 1 << 20, () => assert.fail('dropped'));
  for (const entry of lines(n, start)) store.append(batch([entry]));
  await store.close();
}

function age(id: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  for (const name of fs.readdirSync(storeDir(id))) fs.utimesSync(path.join(storeDir(id), name), t, t);
  fs.utimesSync(storeDir(id), t, t);
}

function bytesOnDisk(id: string): number {
  return fs.readdirSync(storeDir(id)).reduce((n, name) => n + fs.statSync(path.join(storeDir(id), name)).size, 0);
}

async function readLines(registry: Registry, id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of registry.read(id, { sinceNano: null, untilNano: null, tail: -1, follow: false }, new AbortController().signal)) {
    for (const payload of batch) out.push(decodeLogEntry(payload).line.toString());
  }
  return out;
}

const info = (id: string): ContainerInfo => ({
  id, name: '/t', config: {}, imageId: '', imageName: '', created: '', entrypoint: '', args: [], env: [], labels: {}, daemonName: '',
});

describe('retention', () => {
  it('removes stores unchanged for longer than RETENTION, unless a FIFO or reader holds them', async () => {
    const [old, recent, oldButLogging] = ['a', 'b', 'c'].map((c) => c.repeat(64)) as [string, string, string];
    await makeStore(old, 20);
    await makeStore(recent, 20);
    await makeStore(oldButLogging, 20);
    age(old, 2 * HOUR);
    age(recent, HOUR / 2);
    age(oldButLogging, 2 * HOUR);
    const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING, limits: { retentionMs: HOUR, diskQuotaBytes: 0 } });
    const fifo = path.join(fifoDir, 'f');
    execFileSync('mkfifo', [fifo]);
    const daemonEnd = fs.openSync(fifo, fs.constants.O_RDWR);
    registry.start(fifo, { ...info(oldButLogging), config: { 'max-size': '400', 'max-file': '1000', compress: 'false' } });
    const before = await counterTotal(storesRemoved);

    const result = await registry.sweep();
    assert.equal(result.storesRemoved, 1);
    assert.equal((await counterTotal(storesRemoved)) - before, 1);
    assert.ok(!fs.existsSync(storeDir(old)), 'the old store is removed');
    assert.ok(fs.existsSync(storeDir(recent)), 'the recent store stays');
    assert.ok(fs.existsSync(storeDir(oldButLogging)), 'a store a FIFO writes into stays, however quiet');
    fs.closeSync(daemonEnd);
    await registry.shutdown();
  });

  it('keeps everything with RETENTION=0', async () => {
    await makeStore('d'.repeat(64), 5);
    age('d'.repeat(64), 1000 * HOUR);
    const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING, limits: { retentionMs: 0, diskQuotaBytes: 0 } });
    assert.equal((await registry.sweep()).storesRemoved, 0);
    assert.ok(fs.existsSync(storeDir('d'.repeat(64))));
  });
});

describe('quota', () => {
  it('evicts the oldest rotated segments across stores first, never a current one', async () => {
    const older = 'e'.repeat(64);
    const newer = 'f'.repeat(64);
    await makeStore(newer, 200, T0 + 10n ** 12n); // written first, but its records are newer
    await makeStore(older, 200, T0);
    const total = bytesOnDisk(older) + bytesOnDisk(newer);
    const olderClosed = readManifest(storeDir(older)).length;
    const newerClosed = readManifest(storeDir(newer)).length;
    assert.ok(olderClosed > 5, 'test setup: several rotated segments');
    const quota = total - bytesOnDisk(older) / 2; // half of the older store must go
    const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING, limits: { retentionMs: 0, diskQuotaBytes: quota } });
    const before = await counterTotal(segmentsEvicted);

    const result = await registry.sweep();
    assert.ok(result.totalBytes <= quota, `${result.totalBytes} bytes left, quota ${quota}`);
    // The manifests shrink too: the sweep's own count errs on the safe side.
    assert.ok(bytesOnDisk(older) + bytesOnDisk(newer) <= result.totalBytes);
    assert.ok(result.segmentsEvicted > 0 && (await counterTotal(segmentsEvicted)) - before === result.segmentsEvicted);
    assert.equal(readManifest(storeDir(newer)).length, newerClosed, 'the newer store is untouched');
    assert.ok(readManifest(storeDir(older)).length < olderClosed, 'the older store lost its oldest segments');
    // What is left of the older store is a contiguous suffix ending with its last line.
    const left = await readLines(registry, older);
    const first = Number(left[0]!.split(' ')[1]);
    assert.ok(first > 1);
    assert.deepEqual(left, Array.from({ length: 200 - first + 1 }, (_, i) => `line ${first + i}`));
  });

  it('with a quota below the current segments, evicts every rotated segment and keeps the current ones', async () => {
    const ids = ['1', '2'].map((c) => c.repeat(64));
    for (const id of ids) await makeStore(id, 100);
    const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING, limits: { retentionMs: 0, diskQuotaBytes: 1 } });
    const result = await registry.sweep();
    for (const id of ids) {
      assert.deepEqual(readManifest(storeDir(id)), []);
      const left = await readLines(registry, id);
      assert.ok(left.length > 0 && left.at(-1) === 'line 100', 'the current segment stays');
    }
    assert.ok(result.totalBytes > 1);
  });
});
