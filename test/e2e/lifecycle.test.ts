// Containers over their life: many at once, stopped and restarted, bad options, and the store
// surviving the plugin's re-creation.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { assertNoDaemonError, assertSameBytes, assertSameLogs, runPair } from './lib/compare.ts';
import { createContainer, removeContainers, runToExit, sh, waitExit } from './lib/containers.ts';
import { DATA_DIR, docker, PLUGIN } from './lib/docker-client.ts';
import { readLogs, seqText } from './lib/logs.ts';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

after(removeContainers);

describe('concurrency', () => {
  test('ten containers at once: nothing lost, nothing reordered, nothing mixed up', async () => {
    const lines = 30_000;
    const containers = await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        createContainer({ cmd: sh(`seq 1 ${lines} | sed 's/^/c${n} /'; echo "c${n} done" >&2`), driver: PLUGIN }),
      ),
    );
    await Promise.all(containers.map((c) => c.start()));
    const codes = await Promise.all(containers.map((c) => waitExit(c, 120_000)));
    assert.deepEqual(codes, Array(10).fill(0), 'exit codes');
    const logs = await Promise.all(containers.map((c) => readLogs(c.id)));
    logs.forEach((l, n) => {
      assertNoDaemonError(l, `container ${n}`);
      let want = '';
      for (let i = 1; i <= lines; i++) want += `c${n} ${i}\n`;
      assertSameBytes(l.stdout, want, `container ${n} stdout`);
      assertSameBytes(l.stderr, `c${n} done\n`, `container ${n} stderr`);
    });
  });
});

describe('stopped containers', () => {
  test('docker logs twice gives the same output (each read is a new StartLogging)', async () => {
    const { id } = await runToExit({ cmd: sh('seq 1 3000; echo err >&2'), driver: PLUGIN });
    const first = await readLogs(id);
    const second = await readLogs(id);
    const third = await readLogs(id, { tail: 5 });
    assertNoDaemonError(first, 'first read');
    assertSameBytes(first.stdout, seqText(1, 3000), 'first read');
    assertSameBytes(first.stderr, 'err\n', 'first read stderr');
    assertSameBytes(second.stdout, first.stdout, 'second read vs first');
    assertSameBytes(second.stderr, first.stderr, 'second read stderr vs first');
    // --tail counts records of both streams; where 'err' falls among the last lines depends on the
    // daemon's stdout and stderr copiers, so accept either place.
    const thirdOut = third.stdout.toString();
    const thirdErr = third.stderr.toString();
    assert.ok((thirdOut === seqText(2996, 3000) && thirdErr === '') || (thirdOut === seqText(2997, 3000) && thirdErr === 'err\n'),
      `--tail 5 after two reads: ${JSON.stringify(thirdOut)} ${JSON.stringify(thirdErr)}`);
    const fourth = await readLogs(id);
    assertSameBytes(fourth.stdout, first.stdout, 'fourth read vs first');
  });

  test('a restarted container keeps its earlier output, like json-file', async () => {
    // stderr first, and apart: --tail counts records of both streams, whose relative order the
    // daemon's two copiers only keep for lines written well apart in time.
    const pair = await runPair(sh('echo err >&2; sleep 0.2; seq 1 500'));
    await assertSameLogs(pair, {}, 'after the first run');
    for (const c of [pair.logship.container, pair.reference.container]) {
      await c.start();
      assert.equal(await waitExit(c), 0);
    }
    const logs = await assertSameLogs(pair, {}, 'after the restart');
    assertSameBytes(logs.stdout, seqText(1, 500) + seqText(1, 500), 'stdout after the restart');
    assertSameBytes(logs.stderr, 'err\nerr\n', 'stderr after the restart');
    await assertSameLogs(pair, { tail: 700 }, '--tail 700 after the restart');
  });
});

describe('log-opt validation', () => {
  async function startError(opts: Record<string, string>): Promise<{ message: string; state: string }> {
    const c = await createContainer({ cmd: sh('echo should not run'), driver: PLUGIN, opts });
    let message = '';
    try {
      await c.start();
    } catch (err) {
      message = String((err as { json?: { message?: string } }).json?.message ?? (err as Error).message);
    }
    const state = (await c.inspect()).State.Status;
    return { message, state };
  }

  test('an unknown log-opt fails the start and names the option', async () => {
    const { message, state } = await startError({ 'no-such-opt': 'x' });
    assert.match(message, /unknown log opt 'no-such-opt' for logship log driver/, `start error: ${message}`);
    assert.equal(state, 'created', 'the container did not run');
  });

  test('a bad max-size fails the start and names the option', async () => {
    const { message, state } = await startError({ 'max-size': 'lots' });
    assert.match(message, /max-size/, `start error: ${message}`);
    assert.match(message, /lots/, `start error: ${message}`);
    assert.equal(state, 'created', 'the container did not run');
  });

  test('a bad max-file fails the start and names the option', async () => {
    const { message } = await startError({ 'max-file': '0' });
    assert.match(message, /max-file/, `start error: ${message}`);
  });

  test('options the daemon itself handles are accepted', async () => {
    const { id } = await runToExit({
      cmd: sh('echo ok'),
      driver: PLUGIN,
      opts: { mode: 'non-blocking', 'max-buffer-size': '4m', 'max-size': '1m', 'max-file': '2', compress: 'false' },
    });
    assertSameBytes((await readLogs(id)).stdout, 'ok\n', 'stdout');
  });
});

describe('plugin re-creation', () => {
  test('stored logs survive removing and re-creating the plugin (make install)', async () => {
    const { id } = await runToExit({ cmd: sh('seq 1 2000; echo err >&2'), driver: PLUGIN });
    const before = await readLogs(id);
    assertSameBytes(before.stdout, seqText(1, 2000), 'before re-creation');
    // Re-create from the assembled plugin/ without rebuilding it (-o plugin).
    try {
      await run('make', ['--no-print-directory', '-o', 'plugin', 'install', `PLUGIN=${PLUGIN}`, `DATA_DIR=${DATA_DIR}`], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      assert.fail(`make install failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    const plugin = await docker.getPlugin(PLUGIN, undefined).inspect();
    assert.equal(plugin.Enabled, true, 'plugin enabled again');
    const afterwards = await readLogs(id);
    assertNoDaemonError(afterwards, 'after re-creation');
    assertSameBytes(afterwards.stdout, before.stdout, 'stdout after re-creation');
    assertSameBytes(afterwards.stderr, 'err\n', 'stderr after re-creation');
    // And the new plugin process logs new containers.
    const fresh = await runToExit({ cmd: sh('echo fresh'), driver: PLUGIN });
    assertSameBytes((await readLogs(fresh.id)).stdout, 'fresh\n', 'a new container after re-creation');
  });
});
