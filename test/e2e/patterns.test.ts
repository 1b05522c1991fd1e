// A backtracking-prone multiline-pattern and lines crafted against it, through the real
// engine and plugin: container output is untrusted, and one container's pattern work runs
// on the event loop that reads every container's FIFO. `^(\w+\s?)+:` takes a backtracking
// engine exponential time on `aaa…a!:` (seconds at 30 bytes; these lines are 40 bytes and
// 64 KiB). With the pattern on a linear-time engine, another container's 200,000-line run
// (blocking mode: the daemon waits for the plugin to read its FIFO) takes about as long
// beside the crafted container as alone, and the crafted container's lines, the ones after
// the crafted lines included, ship to a forward server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { FluentReceiver } from '../integration/lib/servers.ts';

const FLUENTD_PORT = 24410;
const LINES = 200_000;
const PATTERN = String.raw`^(\w+\s?)+:`;
const SHORT_CRAFTED = 2000;
const LONG_CRAFTED = 20;
const LONG_BYTES = 64 * 1024;

let fluent: FluentReceiver;

before(async () => {
  fluent = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: FLUENTD_PORT } });
  await fluent.listen();
});

after(async () => {
  await removeContainers();
  await fluent?.close();
});

/** The other container: `seq 1 LINES` into logship's local copy; milliseconds from start to exit. */
async function timedRun(): Promise<number> {
  const container = await createContainer({ cmd: ['seq', '1', String(LINES)], driver: PLUGIN });
  const t0 = performance.now();
  await container.start();
  assert.equal(await waitExit(container, 60_000), 0);
  return performance.now() - t0;
}

describe('a backtracking-prone multiline-pattern on crafted lines', () => {
  test("does not slow another container's run, and the lines after the crafted ones ship", async (t) => {
    const alone = await timedRun();

    // Crafted lines (40 bytes and 64 KiB, none matching) printed for about two seconds, then
    // an event the pattern starts (`done:` matches) with a line that continues it.
    const crafted = await createContainer({
      cmd: sh(
        [
          `short="$(head -c 38 /dev/zero | tr '\\0' a)!:"`,
          `long="$(head -c ${LONG_BYTES - 2} /dev/zero | tr '\\0' a)!:"`,
          `i=0; while [ $i -lt ${LONG_CRAFTED} ]; do`,
          `  echo "$long"; j=0; while [ $j -lt ${SHORT_CRAFTED / LONG_CRAFTED} ]; do echo "$short"; j=$((j+1)); done`,
          '  i=$((i+1)); sleep 0.1',
          'done',
          'echo "done: crafted lines printed"',
          'echo "after the crafted lines"',
        ].join('\n'),
      ),
      driver: PLUGIN,
      opts: {
        backend: 'fluentd',
        'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`,
        'multiline-pattern': PATTERN,
        'multiline-flush-timeout': '300ms',
      },
    });
    await crafted.start();
    const beside = await timedRun();
    assert.equal(await waitExit(crafted, 120_000), 0);

    const records = await fluent.waitFor('crafted lines printed', 1, 60_000);
    assert.equal(records[0]!.record.log, 'done: crafted lines printed\nafter the crafted lines');
    const craftedLines = fluent.received.filter((e) => e.record.container_id === crafted.id && e.record.log !== records[0]!.record.log);
    assert.equal(craftedLines.length, SHORT_CRAFTED + LONG_CRAFTED, 'every crafted line ships alone (none matches, none is joined)');
    assert.equal(craftedLines.filter((e) => e.record.log!.length === LONG_BYTES).length, LONG_CRAFTED);

    t.diagnostic(`${LINES} lines: ${Math.round(alone)} ms alone, ${Math.round(beside)} ms beside the crafted container`);
    // A generous bound for a shared 2-core machine: the crafted container's own lines cost
    // something; a backtracking engine never returns from the first one.
    assert.ok(beside < 2 * alone + 5000, `${LINES} lines: ${Math.round(alone)} ms alone, ${Math.round(beside)} ms beside the crafted container`);
  });
});
