// How the engine settles one batch (delivery/settle.ts), on a fake clock: what goes again
// after a result, transient failures retried as they are, bisection down to the line that
// fails alone, a glitch that rejects nothing, the receiver's own delay honoured and capped.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { type SendResult, SendError } from '../../src/delivery/backend.ts';
import { SYSTEM_CLOCK } from '../../src/delivery/clock.ts';
import { RETRY_AFTER_CAP_MS, type Setback, type Settled, settleBatch } from '../../src/delivery/settle.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

const POLICY = { initialDelayMs: 1000, maxDelayMs: 30_000 };

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

const batchOf = (...texts: string[]): OutgoingLine[] => texts.map((t, i) => ({ source: 'stdout', timeNano: BigInt(i), line: Buffer.from(t) }));

interface Call {
  at: number;
  lines: string[];
}

interface Run {
  ok: boolean;
  calls: Call[];
  settled: Settled[];
  setbacks: Setback[];
  /** Every line delivered, in the order they were reported, by text. */
  delivered: string[];
  rejected: Array<{ line: string; code: string }>;
}

/** Settles `batch` against `send`, moving the fake clock on whenever the engine waits. */
async function settle(batch: OutgoingLine[], send: (lines: string[], call: number) => SendResult | Error, stop = new AbortController()): Promise<Run> {
  const run: Run = { ok: false, calls: [], settled: [], setbacks: [], delivered: [], rejected: [] };
  let finished = false;
  const done = settleBatch(batch, {
    send: async (lines) => {
      const texts = lines.map((l) => l.line.toString());
      run.calls.push({ at: Date.now(), lines: texts });
      const outcome = send(texts, run.calls.length);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
    policy: POLICY,
    clock: SYSTEM_CLOCK, // on node:test's mocked setTimeout and Date
    stop: stop.signal,
    settled: (s) => {
      run.settled.push(s);
      run.delivered.push(...s.delivered.map((i) => batch[i]!.line.toString()));
      run.rejected.push(...s.rejected.map((r) => ({ line: batch[r.index]!.line.toString(), code: r.code })));
    },
    setback: (s) => run.setbacks.push(s),
  }).then((ok) => {
    run.ok = ok;
    finished = true;
  });
  for (let turns = 0; !finished; turns++) {
    assert.ok(turns < 10_000, 'the batch never settled');
    await new Promise((resolve) => setImmediate(resolve));
    mock.timers.tick(100);
  }
  await done;
  return run;
}

const transient = (): Error => new SendError('connection refused', { transient: true });
const poisoned = (poison: string) => (lines: string[]): SendResult | Error =>
  lines.includes(poison) ? new RangeError('Maximum call stack size exceeded') : {};

describe('settling a batch', () => {
  it('delivers a batch the receiver takes in one send', async () => {
    const run = await settle(batchOf('a', 'b', 'c'), () => ({}));
    assert.equal(run.ok, true);
    assert.equal(run.calls.length, 1);
    assert.deepEqual(run.delivered, ['a', 'b', 'c']);
    assert.deepEqual(run.setbacks, []);
  });

  it('retries a transient failure as it is, with a growing backoff, never splitting the batch', async () => {
    const run = await settle(batchOf('a', 'b', 'c', 'd'), (_lines, call) => (call <= 6 ? transient() : {}));
    assert.equal(run.calls.length, 7);
    assert.ok(run.calls.every((c) => c.lines.length === 4), 'always the whole batch');
    assert.deepEqual(run.delivered, ['a', 'b', 'c', 'd']);
    assert.deepEqual(run.rejected, []);
    const gaps = run.calls.slice(1).map((c, i) => c.at - run.calls[i]!.at);
    // Doubling from 1 s up to the 30 s cap, jittered into [d/2, d]: each wait at least half of its step's delay.
    gaps.forEach((gap, i) => assert.ok(gap >= Math.min(30_000, 1000 * 2 ** i) / 2 - 100, `wait ${i}: ${gap} ms`));
    assert.ok(run.setbacks.every((s) => s.kind === 'failed'));
  });

  it('sends again only the lines a result names, in order; rejected lines never again', async () => {
    const run = await settle(batchOf('a', 'b', 'c', 'd', 'e'), (lines, call) =>
      call === 1
        ? { retry: { lines: [3, 1], reason: 'busy' }, rejected: [{ index: 2, code: 'invalid', reason: 'mapping conflict' }] }
        : {},
    );
    assert.deepEqual(run.calls.map((c) => c.lines), [['a', 'b', 'c', 'd', 'e'], ['b', 'd']]);
    assert.deepEqual(run.delivered, ['a', 'e', 'b', 'd']);
    assert.deepEqual(run.rejected, [{ line: 'c', code: 'invalid' }]);
    assert.ok(run.calls[1]!.at - run.calls[0]!.at >= 500, 'after a backoff');
  });

  it('a retry with no lines named sends every line not rejected again', async () => {
    const run = await settle(batchOf('a', 'b', 'c'), (_lines, call) =>
      call === 1 ? { retry: { reason: 'throttled' }, rejected: [{ index: 0, code: 'too_old', reason: 'old' }] } : {},
    );
    assert.deepEqual(run.calls.map((c) => c.lines), [['a', 'b', 'c'], ['b', 'c']]);
    assert.deepEqual(run.rejected, [{ line: 'a', code: 'too_old' }]);
  });

  it("waits as long as the receiver asks (Retry-After), up to the cap, never less than its own backoff", async () => {
    const asked = await settle(batchOf('a'), (_l, call) => (call === 1 ? { retry: { reason: 'throttled', afterMs: 20_000 } } : {}));
    assert.ok(asked.calls[1]!.at - asked.calls[0]!.at >= 20_000, 'the delay asked');
    const capped = await settle(batchOf('a'), (_l, call) => (call === 1 ? new SendError('429', { transient: true, retryAfterMs: 3_600_000 }) : {}));
    const wait = capped.calls[1]!.at - capped.calls[0]!.at;
    assert.ok(wait >= RETRY_AFTER_CAP_MS && wait < RETRY_AFTER_CAP_MS + 1000, `waited ${wait} ms`);
    const short = await settle(batchOf('a'), (_l, call) => (call === 1 ? { retry: { reason: 'throttled', afterMs: 1 } } : {}));
    assert.ok(short.calls[1]!.at - short.calls[0]!.at >= 500, 'not sooner than the backoff');
  });

  it('finds a poison line by halves: the rest is delivered once each, in order; the line is rejected after failing alone twice, a backoff apart', async () => {
    const texts = Array.from({ length: 16 }, (_, i) => `line ${i + 1}`);
    const run = await settle(batchOf(...texts), poisoned('line 11'));
    assert.equal(run.ok, true);
    assert.deepEqual(run.rejected, [{ line: 'line 11', code: 'failed' }]);
    assert.deepEqual(run.delivered, texts.filter((t) => t !== 'line 11'));
    const sent = run.calls.filter((c) => !c.lines.includes('line 11')).flatMap((c) => c.lines);
    assert.equal(new Set(sent).size, sent.length, 'no line delivered twice');
    // The batch failed twice before it was split; then halves: 1-8 ok, 9-16 fails, 9-12 fails, 9-10 ok, 11-12 fails, 11 fails, 11 again, 12 ok, 13-16 ok.
    assert.deepEqual(
      run.calls.map((c) => c.lines.length === 1 ? c.lines[0] : `${c.lines[0]}..${c.lines.at(-1)}`),
      ['line 1..line 16', 'line 1..line 16', 'line 1..line 8', 'line 9..line 16', 'line 9..line 12', 'line 9..line 10', 'line 11..line 12', 'line 11', 'line 11', 'line 12', 'line 13..line 16'],
    );
    const alone = run.calls.filter((c) => c.lines.length === 1 && c.lines[0] === 'line 11');
    assert.ok(alone[1]!.at - alone[0]!.at >= 500, 'a backoff between the two failures alone');
    assert.ok(run.calls[1]!.at - run.calls[0]!.at >= 500, 'a backoff before splitting');
    assert.ok(run.setbacks.some((s) => s.kind === 'bisect'));
  });

  it('takes the rejection code from the error when it has one', async () => {
    const run = await settle(batchOf('ok', 'huge'), (lines) =>
      lines.includes('huge') ? new SendError('EMSGSIZE', { transient: false, rejectCode: 'too_large' }) : {},
    );
    assert.deepEqual(run.rejected, [{ line: 'huge', code: 'too_large' }]);
    assert.deepEqual(run.delivered, ['ok']);
  });

  it('a glitch (a failure not known to be transient, once) rejects nothing and splits nothing', async () => {
    const run = await settle(batchOf('a', 'b', 'c'), (_l, call) => (call === 1 ? new Error('socket hang up') : {}));
    assert.deepEqual(run.calls.map((c) => c.lines.length), [3, 3]);
    assert.deepEqual(run.delivered, ['a', 'b', 'c']);
    assert.deepEqual(run.rejected, []);
  });

  it('a line that fails alone once and then goes through is delivered, not rejected', async () => {
    let aloneFailures = 0;
    const run = await settle(batchOf('a', 'b'), (lines) => {
      if (lines.length === 2) return new Error('bad request');
      if (lines[0] === 'b' && aloneFailures++ === 0) return new Error('bad request');
      return {};
    });
    assert.deepEqual(run.delivered, ['a', 'b']);
    assert.deepEqual(run.rejected, []);
  });

  it('a transient failure during the search neither counts against a line nor restarts it', async () => {
    let outage = 3;
    const run = await settle(batchOf('a', 'p', 'b'), (lines) => {
      if (lines.length === 1 && lines[0] === 'p' && outage-- > 0) return transient();
      return poisoned('p')(lines);
    });
    assert.deepEqual(run.rejected, [{ line: 'p', code: 'failed' }]);
    assert.deepEqual(run.delivered, ['a', 'b']);
  });

  it('stops where it is when the plugin shuts down', async () => {
    const stop = new AbortController();
    const run = await settle(batchOf('a'), (_l, call) => {
      if (call === 2) stop.abort();
      return transient();
    }, stop);
    assert.equal(run.ok, false);
    assert.equal(run.calls.length, 2);
    assert.deepEqual(run.delivered, []);
  });

  it('ignores indexes a result names outside the batch', async () => {
    const run = await settle(batchOf('a', 'b'), () => ({ rejected: [{ index: 7, code: 'invalid', reason: 'x' }], retry: { lines: [-1, 1.5], reason: 'x' } }));
    assert.deepEqual(run.delivered, ['a', 'b']);
    assert.equal(run.calls.length, 1);
  });
});
