// docker logs options: --tail, --since/--until, --timestamps and -f, logship against json-file.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { assertNoDaemonError, assertSameBytes, assertSameLogs, runPair } from './lib/compare.ts';
import { createContainer, pollUntil, removeContainers, runToExit, sh, waitExit } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { countLines, demux, openLogStream, parseTimestamped, readLogs, seqText, type LogQuery, type Logs } from './lib/logs.ts';

after(removeContainers);

function lastLines(text: string, n: number): string {
  const lines = text.split('\n').slice(0, -1);
  return n === 0 ? '' : lines.slice(-n).map((l) => `${l}\n`).join('');
}

describe('--tail', () => {
  test('N, 0 and all, against json-file', async () => {
    const pair = await runPair(sh('seq 1 1000'));
    const all = seqText(1, 1000);
    for (const tail of [0, 1, 10, 999, 1000, 5000, 'all'] as const) {
      const logs = await assertSameLogs(pair, { tail }, `--tail ${tail}`);
      assertSameBytes(logs.stdout, tail === 'all' ? all : lastLines(all, tail), `--tail ${tail}: stdout`);
    }
    // No --tail at all means everything.
    const logs = await assertSameLogs(pair, {}, 'no --tail');
    assertSameBytes(logs.stdout, all, 'no --tail: stdout');
  });

  test('counts the chunks of long lines like json-file', async () => {
    // The daemon splits a 40000-byte line into 3 records (16384 + 16384 + 7232); json-file's
    // --tail counts records, so --tail 2 returns the last chunk and the line after it.
    const pair = await runPair(sh("echo first; head -c 40000 /dev/zero | tr '\\0' x; echo; echo last"));
    for (const tail of [1, 2, 3, 4, 5, 6]) {
      await assertSameLogs(pair, { tail }, `--tail ${tail}`);
    }
  });
});

describe('--since and --until', () => {
  test('bounds taken from each driver’s own timestamps select the same lines', async () => {
    const n = 20;
    const pair = await runPair(sh(`for i in $(seq 1 ${n}); do echo "line $i"; usleep 20000; done`));
    const expectedLine = (i: number) => `line ${i + 1}`;
    for (const [driver, run] of [['logship', pair.logship], ['json-file', pair.reference]] as const) {
      const stamped = await readLogs(run.id, { timestamps: true });
      assertNoDaemonError(stamped, `${driver} --timestamps`);
      const lines = parseTimestamped(stamped.stdout);
      assert.deepEqual(lines.map((l) => l.line), Array.from({ length: n }, (_, i) => expectedLine(i)), `${driver}: timestamped lines`);
      const at = (i: number) => {
        const line = lines[i];
        assert.ok(line, `${driver}: line index ${i}`);
        return line;
      };
      // Both bounds are inclusive in the daemon.
      const cases: { q: LogQuery; from: number; to: number; name: string }[] = [
        { name: 'since+until', q: { since: at(4).api, until: at(14).api }, from: 4, to: 14 },
        { name: 'since', q: { since: at(15).api }, from: 15, to: n - 1 },
        { name: 'until', q: { until: at(3).api }, from: 0, to: 3 },
        { name: 'since+until one line', q: { since: at(9).api, until: at(9).api }, from: 9, to: 9 },
        // --tail is applied first, then --since (json-file's order).
        { name: 'tail 15 + since', q: { tail: 15, since: at(10).api }, from: 10, to: n - 1 },
        { name: 'tail 5 + since', q: { tail: 5, since: at(4).api }, from: n - 5, to: n - 1 },
      ];
      for (const c of cases) {
        const got = await readLogs(run.id, c.q);
        assertNoDaemonError(got, `${driver} ${c.name}`);
        let want = '';
        for (let i = c.from; i <= c.to; i++) want += `${expectedLine(i)}\n`;
        assertSameBytes(got.stdout, want, `${driver} ${c.name}`);
        // The timestamps a bounded read returns are the stored ones.
        const again = parseTimestamped((await readLogs(run.id, { ...c.q, timestamps: true })).stdout);
        assert.deepEqual(again.map((l) => l.ts), lines.slice(c.from, c.to + 1).map((l) => l.ts), `${driver} ${c.name}: timestamps`);
      }
    }
  });

  test('timestamps are in order and close to the container’s run', async () => {
    const pair = await runPair(sh('seq 1 2000'));
    const lines = parseTimestamped((await readLogs(pair.logship.id, { timestamps: true })).stdout);
    assert.equal(lines.length, 2000);
    const inspect = await pair.logship.container.inspect();
    const started = Date.parse(inspect.State.StartedAt);
    const finished = Date.parse(inspect.State.FinishedAt);
    let previous = '';
    for (const l of lines) {
      const ms = Number(l.api.split('.')[0]) * 1000;
      assert.ok(ms >= started - 2000 && ms <= finished + 2000, `timestamp ${l.ts} is not within the container's run`);
      assert.ok(l.api.padStart(30, '0') >= previous.padStart(30, '0'), `timestamps go backwards at ${l.ts}`);
      previous = l.api;
    }
  });
});

interface Followed {
  logs: Logs;
  /** ms from opening the stream to the first stdout frame. */
  firstDataMs: number;
  /** ms from opening the stream to its end. */
  endMs: number;
}

async function follow(id: string, q: LogQuery, timeoutMs: number): Promise<Followed> {
  const opened = Date.now();
  const res = await openLogStream(id, { ...q, follow: true, signal: AbortSignal.timeout(timeoutMs) });
  const parts: Record<number, Buffer[]> = { 1: [], 2: [], 3: [] };
  let firstDataMs = -1;
  try {
    await demux(res, (type, payload) => {
      if (type === 1 && firstDataMs < 0) firstDataMs = Date.now() - opened;
      (parts[type] ??= []).push(Buffer.from(payload));
    });
  } catch (err) {
    throw new Error(`follow of ${id.slice(0, 12)} did not end within ${timeoutMs} ms (${String(err)}); got ${countLines(Buffer.concat(parts[1] ?? []))} lines`);
  }
  return {
    logs: { stdout: Buffer.concat(parts[1] ?? []), stderr: Buffer.concat(parts[2] ?? []), system: Buffer.concat(parts[3] ?? []) },
    firstDataMs,
    endMs: Date.now() - opened,
  };
}

describe('--details and the driver name', () => {
  test('--details and --timestamps --details print like json-file', async () => {
    const pair = await runPair(sh('echo one; echo two >&2; printf three'));
    const logs = await assertSameLogs(pair, { details: true }, '--details');
    assertSameBytes(logs.stdout, ' one\n three', '--details stdout');
    const stamped = await readLogs(pair.logship.id, { details: true, timestamps: true });
    const theirs = await readLogs(pair.reference.id, { details: true, timestamps: true });
    // Timestamps differ between the two containers; the rest of each line must not.
    const strip = (b: Buffer) => b.toString('utf8').replace(/^\S+ /gm, 'TS ');
    assert.equal(strip(stamped.stdout), strip(theirs.stdout), '--timestamps --details stdout');
    assert.equal(strip(stamped.stderr), strip(theirs.stderr), '--timestamps --details stderr');
  });

  test('--log-driver logship (no tag) is logship:latest', async (t) => {
    if (PLUGIN !== 'logship:latest') return t.skip(`the plugin under test is ${PLUGIN}`);
    const { id } = await runToExit({ cmd: sh('echo untagged'), driver: 'logship' });
    assertSameBytes((await readLogs(id)).stdout, 'untagged\n', 'stdout');
  });
});

describe('-f (follow)', () => {
  test('streams a running container and ends when it exits', async () => {
    const script = 'echo first; sleep 2; for i in $(seq 1 20); do echo "tick $i"; usleep 50000; done; echo "to stderr" >&2; printf "no newline"';
    let want = 'first\n';
    for (let i = 1; i <= 20; i++) want += `tick ${i}\n`;
    want += 'no newline';
    // Three logship containers (a lost wake-up shows as a follow that never ends) and one json-file.
    const drivers = [PLUGIN, PLUGIN, PLUGIN, 'json-file'];
    const containers = await Promise.all(drivers.map((driver) => createContainer({ cmd: sh(script), driver })));
    const results = await Promise.all(
      containers.map(async (c) => {
        await c.start();
        const followed = follow(c.id, {}, 30_000);
        const state = (await c.inspect()).State;
        const exit = await waitExit(c, 30_000);
        return { followed: await followed, wasRunning: state.Running, exit };
      }),
    );
    const theirs = results[3];
    assert.ok(theirs);
    assertNoDaemonError(theirs.followed.logs, 'json-file -f');
    // json-file's follower (20.10) may stop before the final partial line; all else must match it.
    const theirsOut = theirs.followed.logs.stdout.toString('latin1');
    assert.ok(theirsOut === want || `${theirsOut}no newline` === want, `json-file -f returned ${JSON.stringify(theirsOut.slice(-40))} (test setup)`);
    for (const [n, ours] of results.slice(0, 3).entries()) {
      const name = `logship #${n + 1} -f`;
      assert.ok(ours.wasRunning, `${name}: the container was still running while following (test setup)`);
      assertNoDaemonError(ours.followed.logs, name);
      assertSameBytes(ours.followed.logs.stdout, want, `${name} stdout`);
      assertSameBytes(ours.followed.logs.stderr, 'to stderr\n', `${name} stderr`);
      assertSameBytes(ours.followed.logs.stdout.subarray(0, theirs.followed.logs.stdout.length), theirs.followed.logs.stdout, `${name} vs json-file -f`);
      // It streamed: the first line came while the container was still running (about 3 s before the end).
      assert.ok(ours.followed.firstDataMs >= 0 && ours.followed.endMs - ours.followed.firstDataMs > 1000,
        `${name} did not stream: first data after ${ours.followed.firstDataMs} ms, end after ${ours.followed.endMs} ms`);
    }
  });

  test('--tail 0 -f returns only lines written after it started', async () => {
    const script = 'echo old 1; echo old 2; echo old 3; sleep 2; echo new 1; echo new 2; echo new 3';
    const containers = await Promise.all([createContainer({ cmd: sh(script), driver: PLUGIN }), createContainer({ cmd: sh(script), driver: 'json-file' })]);
    const outputs = await Promise.all(
      containers.map(async (c) => {
        await c.start();
        // Wait until the old lines are stored, then follow from the end.
        await pollUntil('the first three lines', async () => {
          const logs = await readLogs(c.id);
          return countLines(logs.stdout) >= 3 ? true : undefined;
        });
        const running = (await c.inspect()).State.Running;
        const followed = await follow(c.id, { tail: 0 }, 30_000);
        await waitExit(c, 30_000);
        return { running, followed };
      }),
    );
    for (const [name, o] of [['logship', outputs[0]], ['json-file', outputs[1]]] as const) {
      assert.ok(o, name);
      assert.ok(o.running, `${name}: container still running when the follow started (test setup)`);
      assertNoDaemonError(o.followed.logs, `${name} --tail 0 -f`);
      assertSameBytes(o.followed.logs.stdout, 'new 1\nnew 2\nnew 3\n', `${name} --tail 0 -f`);
    }
  });

  test('a follow longer than 30 s is not cut off (plugin enabled with --timeout 0)', async () => {
    const script = 'echo start; sleep 32; echo end';
    const containers = await Promise.all([createContainer({ cmd: sh(script), driver: PLUGIN }), createContainer({ cmd: sh(script), driver: 'json-file' })]);
    const outputs = await Promise.all(
      containers.map(async (c) => {
        await c.start();
        const followed = await follow(c.id, {}, 60_000);
        await waitExit(c, 30_000);
        return followed;
      }),
    );
    for (const [name, o] of [['logship', outputs[0]], ['json-file', outputs[1]]] as const) {
      assert.ok(o, name);
      assertNoDaemonError(o.logs, `${name} -f for 32 s`);
      assertSameBytes(o.logs.stdout, 'start\nend\n', `${name} -f for 32 s`);
      assert.ok(o.endMs > 30_000, `${name}: the follow ended after ${o.endMs} ms, before the container did`);
    }
  });
});
