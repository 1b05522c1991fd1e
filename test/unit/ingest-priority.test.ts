// Shipping gives way to ingest only while a FIFO read found its pipe half full, and only
// within its budget: at most 4 s at a stretch and half the time over a long run.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openFifo, readFifo } from '../../src/ingest/fifo-reader.ts';
import { lastFullReadMs, noteRead } from '../../src/ingest/pressure.ts';
import { ingestPriority } from '../../src/lifecycle/ingest-priority.ts';

/** A shipper's loop on a fake clock: waits what it is told, else ships for `turnMs`. */
function simulate(durationMs: number, pressured: (t: number) => boolean, turnMs = 5) {
  let t = 0;
  let lastFull = -Infinity;
  const wait = ingestPriority(() => t, () => lastFull);
  let waited = 0;
  let stretch = 0;
  let longest = 0;
  while (t < durationMs) {
    if (pressured(t)) lastFull = t;
    const ms = wait();
    if (ms > 0) {
      waited += ms;
      stretch += ms;
      longest = Math.max(longest, stretch);
      t += ms;
    } else {
      stretch = 0;
      t += turnMs;
    }
  }
  return { waited, longest };
}

describe('ingest priority', () => {
  it('never waits without a half-full read', () => {
    assert.deepEqual(simulate(10_000, () => false), { waited: 0, longest: 0 });
  });

  it('waits while reads find full pipes, then ships again as soon as they stop', () => {
    const { waited, longest } = simulate(3000, (t) => t < 1000);
    // A second of pressure: shipping waited through it (in 50 ms turns) and not much after.
    assert.ok(waited >= 1000 && waited <= 1100, `waited ${waited} ms`);
    assert.ok(longest >= 1000 && longest <= 1100, `longest stretch ${longest} ms`);
  });

  it('waits at most 4 s at a stretch and half the time under pressure that never ends', () => {
    const { waited, longest } = simulate(60_000, () => true);
    assert.ok(longest <= 4100, `longest stretch ${longest} ms`);
    assert.ok(waited <= 0.5 * 60_000 + 2000, `waited ${waited} ms of 60 s`);
    assert.ok(waited >= 0.4 * 60_000, `waited only ${waited} ms of 60 s`);
  });

  it('spends the budget once for shippers that ask during the same wait', () => {
    let t = 0;
    const wait = ingestPriority(() => t, () => t);
    let stretch = 0;
    for (; stretch < 10_000; ) {
      const ms = [wait(), wait(), wait()]; // three shippers at the same moment
      assert.ok(ms.every((m) => m === ms[0]), `one wait for all: ${ms.join(', ')}`);
      if (ms[0] === 0) break;
      stretch += ms[0]!;
      t += ms[0]!;
    }
    assert.ok(stretch >= 3900 && stretch <= 4100, `a stretch of ${stretch} ms`);
  });

  it('notes a real FIFO read that found the pipe at least half full, and not a small one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-pressure-'));
    try {
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const writer = fs.openSync(fifo, fs.constants.O_RDWR);
      const read = async (bytes: number) => {
        const fd = openFifo(fifo);
        let got = 0;
        const done = new Promise<void>((resolve) => {
          const socket = readFifo(fd, (chunk) => {
            got += chunk.length;
            if (got >= bytes) {
              socket.destroy();
              resolve();
            }
          });
        });
        fs.writeSync(writer, Buffer.alloc(bytes));
        await done;
      };
      const before = lastFullReadMs();
      await read(100);
      assert.equal(lastFullReadMs(), before, 'a 100-byte read is no pressure');
      await read(48 * 1024); // written at once: one read of 48 KiB from a 64 KiB pipe
      assert.ok(lastFullReadMs() > before, 'a read of three quarters of the pipe is');
      fs.closeSync(writer);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts half the pipe as full', () => {
    const before = lastFullReadMs();
    noteRead(32 * 1024 - 1, 64 * 1024);
    assert.equal(lastFullReadMs(), before);
    noteRead(32 * 1024, 64 * 1024);
    assert.ok(lastFullReadMs() > before);
  });
});
