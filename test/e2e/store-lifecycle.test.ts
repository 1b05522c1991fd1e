// The data folder under pressure, on the real engine: a disk that fills up (the container keeps
// running, the plugin stores again once space returns), the plugin-wide DISK_QUOTA, and
// RETENTION for stores of containers that are gone. Each test points the plugin at a data folder
// of its own (`docker plugin set data.source=...`, which needs a disable and an enable).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { assertNoDaemonError } from './lib/compare.ts';
import { createContainer, pollUntil, removeContainers, runToExit, sh, waitExit } from './lib/containers.ts';
import { DATA_DIR, PLUGIN } from './lib/docker-client.ts';
import { readLogs } from './lib/logs.ts';
import { withPluginSettings } from './lib/plugin.ts';

after(removeContainers);

/** A fresh, empty host folder beside the plugin's own data folder. */
/** A new folder beside the data folder; named apart, since engines under test at once share /var/lib. */
function scratchDir(name: string): string {
  return fs.mkdtempSync(`${DATA_DIR}-${name}-`);
}

function numbers(text: string, what: string): number[] {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', `${what}: ends with a newline`);
  return lines.map((l) => {
    assert.match(l, /^\d+$/, `${what}: a numbered line`);
    return Number(l);
  });
}

function storeBytes(dataDir: string): number {
  const containers = path.join(dataDir, 'containers');
  let total = 0;
  for (const id of fs.existsSync(containers) ? fs.readdirSync(containers) : []) {
    for (const name of fs.readdirSync(path.join(containers, id))) {
      // The plugin may rename or remove a file between the listing and the stat (segments.json.tmp).
      total += fs.statSync(path.join(containers, id, name), { throwIfNoEntry: false })?.size ?? 0;
    }
  }
  return total;
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

describe('a full disk', () => {
  test('drops lines while full without stopping the container, and stores again once space returns', async () => {
    const tiny = scratchDir('tiny');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'rb-tiny', tiny]);
    try {
      await withPluginSettings({ 'data.source': tiny }, async () => {
        // Leave ~300 kB: the container writes ~680 kB in 10 kB segments, so the disk fills up
        // mid-run, in appends and in rotations.
        const ballast = path.join(tiny, 'ballast');
        fs.writeFileSync(ballast, Buffer.alloc(freeBytes(tiny) - 300_000));
        const lines = 20_000;
        const container = await createContainer({
          cmd: sh(`i=0; while [ $i -lt 100 ]; do seq $((i*200+1)) $((i*200+200)); i=$((i+1)); sleep 0.02; done`),
          driver: PLUGIN,
          opts: { 'max-size': '10k', 'max-file': '1000', compress: 'false' },
        });
        await container.start();
        await pollUntil('the disk to fill up', () => (freeBytes(tiny) < 8192 ? true : undefined), 20_000, 20);
        await new Promise((r) => setTimeout(r, 300)); // lines are dropped meanwhile
        assert.ok((await container.inspect()).State.Running, 'the container still runs with the disk full (test setup: it must write for longer)');
        fs.rmSync(ballast);

        assert.equal(await waitExit(container, 60_000), 0, 'exit code');
        const logs = await readLogs(container.id);
        assertNoDaemonError(logs, 'docker logs');
        const got = numbers(logs.stdout.toString(), 'stdout');
        assert.equal(got[0], 1, 'the lines before the disk filled are kept');
        assert.equal(got.at(-1), lines, 'the lines after space returned are stored');
        for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `in order at ${i}`);
        assert.ok(got.length < lines, 'some lines were dropped while the disk was full (test setup)');
        // After the gap, everything: storing resumed for good once space returned.
        const resumedAt = got.findLastIndex((n, i) => i > 0 && n !== got[i - 1]! + 1);
        assert.deepEqual(got.slice(resumedAt), Array.from({ length: got.length - resumedAt }, (_, i) => got[resumedAt]! + i));
      });
    } finally {
      execFileSync('umount', [tiny]);
      fs.rmSync(tiny, { recursive: true, force: true });
    }
  });
});

describe('DISK_QUOTA', () => {
  test('evicts the oldest rotated files across containers first, never the current ones', async () => {
    const dir = scratchDir('quota');
    try {
      await withPluginSettings({ 'data.source': dir, DISK_QUOTA: '1m' }, async () => {
        const opts = { 'max-size': '100k', 'max-file': '100', compress: 'false' };
        // ~2 MB each: together four times the quota.
        const older = await runToExit({ cmd: sh('seq 1 60000'), driver: PLUGIN, opts });
        const newer = await runToExit({ cmd: sh('seq 1 60000'), driver: PLUGIN, opts });
        // Rotations trigger a sweep a second later; the current segments may stay above it.
        await pollUntil('the stores to shrink to the quota', () => (storeBytes(dir) <= 1_000_000 + 2 * 100_000 + 10_000 ? true : undefined), 20_000);
        const manifest = (id: string) => JSON.parse(fs.readFileSync(path.join(dir, 'containers', id, 'segments.json'), 'utf8')).segments as unknown[];
        assert.equal(manifest(older.id).length, 0, 'the older container lost all its rotated files');
        assert.ok(manifest(newer.id).length > 0, 'the newer container keeps its newest rotated files');
        for (const [c, what] of [[older, 'older'], [newer, 'newer']] as const) {
          const logs = await readLogs(c.id);
          assertNoDaemonError(logs, what);
          const got = numbers(logs.stdout.toString(), what);
          assert.equal(got.at(-1), 60000, `${what}: ends with its last line`);
          got.forEach((n, i) => assert.equal(n, got[0]! + i, `${what}: contiguous at ${i}`));
        }
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RETENTION', () => {
  test('removes the store of a stopped container after it, and keeps a quiet running one', async () => {
    const dir = scratchDir('retention');
    try {
      await withPluginSettings({ 'data.source': dir, RETENTION: '3s' }, async () => {
        const quiet = await createContainer({ cmd: sh('echo start; sleep 7; echo end'), driver: PLUGIN });
        await quiet.start();
        const stopped = await runToExit({ cmd: sh('echo bye'), driver: PLUGIN });
        const storeOf = (id: string) => path.join(dir, 'containers', id);
        assert.ok(fs.existsSync(storeOf(stopped.id)), 'the stopped container has a store at first');
        await pollUntil('the stopped container\'s store to be removed', () => (fs.existsSync(storeOf(stopped.id)) ? undefined : true), 15_000);
        assert.equal((await readLogs(stopped.id)).stdout.toString(), '', 'its docker logs is empty now (the documented price)');
        assert.ok((await quiet.inspect()).State.Running && fs.existsSync(storeOf(quiet.id)), 'the running container keeps its store, however quiet');
        assert.equal(await waitExit(quiet, 20_000), 0);
        assert.equal((await readLogs(quiet.id)).stdout.toString(), 'start\nend\n');
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
