// The plugin dies or is force-disabled while containers write: the engine keeps writing into
// the FIFOs and never repeats StartLogging, so the new process must read them on by itself.
// Nothing may be lost or reordered, and the container must not stay blocked. And `docker stop`
// of a busy container is never held up by logship.
import assert from 'node:assert/strict';
import { type TestContext, after, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { assertNoDaemonError, assertSameBytes } from './lib/compare.ts';
import { createContainer, pollUntil, removeContainers, sh, waitExit } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { readLogs, seqText } from './lib/logs.ts';
import { disablePlugin, drainPluginFifos, enablePlugin, killPlugin } from './lib/plugin.ts';

after(removeContainers);

const BURSTS = 150;
const PER_BURST = 1000;
// Numbered lines in bursts with short pauses: a few seconds of steady writing, so the plugin
// goes away while the container writes, and the 64 KiB pipe fills while it is away.
const WRITER = sh(`i=0; while [ $i -lt ${BURSTS} ]; do seq $((i*${PER_BURST}+1)) $((i*${PER_BURST}+${PER_BURST})); i=$((i+1)); sleep 0.02; done`);

async function startWriter(): Promise<Docker.Container> {
  const container = await createContainer({ cmd: WRITER, driver: PLUGIN });
  await container.start();
  // Wait until the plugin has stored some of it: the interruption must come mid-stream.
  await pollUntil('the first lines in docker logs', async () => ((await readLogs(container.id, { tail: 1 })).stdout.length > 0 ? true : undefined));
  return container;
}

async function assertRunning(container: Docker.Container, what: string): Promise<void> {
  const state = (await container.inspect()).State;
  assert.ok(state.Running, `${what}: the container had already finished, so the test proves nothing (it must write for longer)`);
}

async function assertCompleteAndOrdered(container: Docker.Container): Promise<void> {
  let exitCode: number;
  try {
    exitCode = await waitExit(container, 30_000);
  } catch (err) {
    await drainPluginFifos(5000); // so that the engine can finish and remove the container
    throw err;
  }
  assert.equal(exitCode, 0, 'exit code');
  const logs = await readLogs(container.id);
  assertNoDaemonError(logs, 'docker logs');
  assertSameBytes(logs.stdout, seqText(1, BURSTS * PER_BURST), 'stdout');
  assertSameBytes(logs.stderr, '', 'stderr');
}

describe('recovery', () => {
  test('kill -9 of the plugin while a container writes: every line, in order, and the container finishes', async (t: TestContext) => {
    const container = await startWriter();
    // Whether the engine restarts it is the engine's doing (see Kill.byEngine); the lines are ours.
    const { killed, restarted, how } = await killPlugin();
    assert.notEqual(killed, restarted);
    t.diagnostic(how);
    await assertRunning(container, 'at the kill');
    await assertCompleteAndOrdered(container);
  });

  test('disable -f and enable while a container writes: every line, in order, and the container finishes', async () => {
    const container = await startWriter();
    await disablePlugin();
    await assertRunning(container, 'while disabled');
    await new Promise((r) => setTimeout(r, 1000)); // the pipe fills; the container blocks meanwhile
    await enablePlugin();
    await assertCompleteAndOrdered(container);
  });
});

describe('docker stop', () => {
  test('of a container writing in a tight loop returns at once, with its last line kept', async () => {
    // Exits on SIGTERM after one more line: the stop waits only for the daemon and the plugin.
    const container = await createContainer({
      cmd: sh(`trap 'echo last; exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i; done`),
      driver: PLUGIN,
    });
    await container.start();
    await pollUntil('the first lines in docker logs', async () => ((await readLogs(container.id, { tail: 1 })).stdout.length > 0 ? true : undefined));
    const started = performance.now();
    await container.stop({ t: 10 });
    const took = performance.now() - started;
    // The one timing bound the issue asks for (logship must never hold a stop up); 10 s of
    // grace, so only a stuck logging path, not the container, could make it slow.
    assert.ok(took < 2000, `docker stop took ${Math.round(took)} ms`);
    assert.equal((await container.inspect()).State.ExitCode, 0, 'exit code (the trap ran)');
    const logs = await readLogs(container.id);
    assertNoDaemonError(logs, 'docker logs');
    const lines = logs.stdout.toString().split('\n');
    assert.equal(lines.pop(), '', 'output ends with a newline');
    assert.equal(lines.pop(), 'last', 'the line written on SIGTERM is the last one');
    lines.forEach((l, i) => assert.equal(l, String(i + 1), `line ${i + 1}`));
  });
});
