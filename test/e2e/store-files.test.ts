// The store's files on the host, on the real engine: who may read them (json-file's own files
// as the oracle, and a real unprivileged user trying), and `docker logs --tail` of a stopped
// container whose current segment ends in a torn record, as a crash in the middle of a write
// or a power cut leaves it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { assertNoDaemonError, assertSameBytes } from './lib/compare.ts';
import { removeContainers, runToExit, sh } from './lib/containers.ts';
import { DATA_DIR, docker, PLUGIN } from './lib/docker-client.ts';
import { readLogs, seqText } from './lib/logs.ts';
import { findStoreDir } from './lib/store.ts';

after(removeContainers);

const modeOf = (p: string) => fs.lstatSync(p).mode & 0o7777;

/** Runs `argv` as nobody (uid and gid 65534, no supplementary groups); true if it succeeded. */
function asNobody(argv: string[]): boolean {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { stdio: 'ignore' }).status === 0;
}

/** The plain segment being written: the highest-numbered `.log`. */
function currentSegment(dir: string): string {
  const name = fs.readdirSync(dir).filter((n) => /^\d{8,}\.log$/.test(n)).sort().at(-1);
  assert.ok(name, `a current segment in ${dir}`);
  return path.join(dir, name);
}

describe('store files', () => {
  test('a container\'s store folders and files are no more open than json-file\'s, and nobody else reads them', async () => {
    const cmd = sh('seq 1 3000');
    const opts = { 'max-size': '10k', 'max-file': '3' }; // rotated and gzipped segments too
    const [logship, jsonFile] = await Promise.all([
      runToExit({ cmd, driver: PLUGIN, opts }),
      runToExit({ cmd, driver: 'json-file', opts }),
    ]);
    const kept = (await readLogs(logship.id)).stdout.toString();
    assert.ok(kept.length > 0 && seqText(1, 3000).endsWith('\n' + kept), 'the store keeps the last lines');
    const dir = findStoreDir(logship.id);
    assert.ok(dir, 'the store is on the host');
    const names = fs.readdirSync(dir, { recursive: true }) as string[];
    assert.ok(names.some((n) => n.endsWith('.log.gz')) && names.includes('segments.json'), names.join(' '));

    // json-file's modes, read from the engine's own files in this run.
    const logPath = (await docker.getContainer(jsonFile.id).inspect()).LogPath;
    const jsonDirMode = modeOf(path.dirname(logPath));
    const jsonFileMode = modeOf(logPath);
    for (const p of [path.join(DATA_DIR, 'containers'), dir, ...names.map((n) => path.join(dir, n))]) {
      const mode = modeOf(p);
      const allowed = fs.lstatSync(p).isDirectory() ? jsonDirMode : jsonFileMode;
      assert.equal(mode & ~allowed, 0, `${p} is ${mode.toString(8)}; json-file's ${fs.lstatSync(p).isDirectory() ? 'folder' : 'file'} is ${allowed.toString(8)}`);
      assert.equal(mode & 0o007, 0, `${p}: others get nothing`);
    }
    const segment = currentSegment(dir);
    assert.equal(spawnSync('cat', [segment], { stdio: 'ignore' }).status, 0, 'root reads it (test setup)');
    assert.equal(asNobody(['cat', segment]), false, 'an unprivileged user cannot read a segment');
    assert.equal(asNobody(['ls', dir]), false, 'nor list a store');
    assert.equal(asNobody(['ls', path.join(DATA_DIR, 'containers')]), false, 'nor list the stores');
  });

  test('docker logs --tail 5 of a stopped container whose current segment has a torn tail', async () => {
    const { id } = await runToExit({ cmd: sh('seq 1 1000'), driver: PLUGIN });
    assertSameBytes((await readLogs(id)).stdout, seqText(1, 1000), 'stored whole');
    const dir = findStoreDir(id);
    assert.ok(dir, 'the store is on the host');
    const segment = currentSegment(dir);
    const size = fs.statSync(segment).size;
    // The store was released when the container's logging ended and its reads were done:
    // no writer has it open, so the reads below see the file as a crash left it.
    fs.appendFileSync(segment, Buffer.from('ffeeddccbbaa99887766554433221100', 'hex'));
    for (const [tail, from] of [[5, 996], [1000, 1], ['all', 1]] as const) {
      const logs = await readLogs(id, { tail });
      assertNoDaemonError(logs, `--tail ${tail}`);
      assertSameBytes(logs.stdout, seqText(from, 1000), `--tail ${tail}`);
    }
    assert.equal(fs.statSync(segment).size, size + 16, 'reading leaves the file as it is');
  });
});
