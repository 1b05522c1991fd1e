// The journald backend against systemd-journald run by hand in its own namespace, so the
// host's journal (if any) is untouched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { journaldFactory, MAX_MESSAGE_BYTES } from '../../src/backends/journald.ts';
import { context, line } from '../unit/backend-context.ts';
import { Journald, scratchDir, waitUntil } from './lib/servers.ts';

const signal = new AbortController().signal;
let dir: string;
let journald: Journald;

before(async () => {
  dir = scratchDir('journald');
  journald = new Journald('logship-bk-it', path.join(dir, 'journald.out'));
  journald.removeState();
  await journald.start();
});

after(async () => {
  await journald?.stop();
  journald?.removeState();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** journalctl prints a value that is not plain text as an array of bytes. */
function text(value: unknown): string {
  return Array.isArray(value) ? Buffer.from(value as number[]).toString() : String(value);
}

describe('journald backend → systemd-journald', () => {
  it("Docker's fields arrive, with priorities, attributes, partial fields and long lines whole", async () => {
    const name = `bk-jd-${Date.now()}`;
    const ctx = context({ name, tag: `${name}-tag`, imageName: 'bb:local', attributes: [['com.example.team', 'logs'], ['E1', 'xyz']] });
    const backend = journaldFactory.create({ socketPath: journald.socket }, ctx);
    const long = Buffer.alloc(MAX_MESSAGE_BYTES + 5000, 'L');
    const fragment = { ...line('fragment', 'stdout', '2026-11-21T23:06:40Z'), partial: { id: 'a'.repeat(64), ordinal: 2, last: true } };
    try {
      await backend.send(
        [line('hello-journald', 'stdout', '2026-11-21T23:06:40.5Z'), line('err\nwith newline', 'stderr', '2026-11-21T23:06:41Z'), fragment, line(long, 'stdout', '2026-11-21T23:06:42Z')],
        signal,
      );
    } finally {
      await backend.close();
    }
    const entries = await waitUntil(() => {
      const found = journald.entries(`CONTAINER_NAME=${name}`);
      return found.length >= 5 ? found : undefined;
    }, 'the entries in the journal');
    assert.equal(entries.length, 5);
    const [out, err, partial, long1, long2] = entries;
    for (const entry of entries) {
      assert.equal(entry!.CONTAINER_ID, ctx.id.slice(0, 12));
      assert.equal(entry!.CONTAINER_ID_FULL, ctx.id);
      assert.equal(entry!.CONTAINER_TAG, ctx.tag);
      assert.equal(entry!.SYSLOG_IDENTIFIER, ctx.tag);
      assert.equal(entry!.IMAGE_NAME, 'bb:local');
      assert.equal(entry!.COM_EXAMPLE_TEAM, 'logs');
      assert.equal(entry!.E1, 'xyz');
    }
    assert.equal(out!.MESSAGE, 'hello-journald');
    assert.equal(out!.PRIORITY, '6');
    assert.equal(out!.SYSLOG_TIMESTAMP, '2026-11-21T23:06:40.5Z');
    assert.equal(text(err!.MESSAGE), 'err\nwith newline');
    assert.equal(err!.PRIORITY, '3');
    assert.equal(partial!.CONTAINER_PARTIAL_ID, 'a'.repeat(64));
    assert.equal(partial!.CONTAINER_PARTIAL_ORDINAL, '2');
    assert.equal(partial!.CONTAINER_PARTIAL_LAST, 'true');
    assert.equal(text(long1!.MESSAGE) + text(long2!.MESSAGE), long.toString());
    assert.equal(long1!.CONTAINER_PARTIAL_ID, long2!.CONTAINER_PARTIAL_ID);
    assert.equal(long1!.CONTAINER_PARTIAL_MESSAGE, 'true');
    assert.equal(long2!.CONTAINER_PARTIAL_LAST, 'true');
  });

  it('fails a batch while journald is down, and delivers it once journald is back', async () => {
    const name = `bk-jd-restart-${Date.now()}`;
    const backend = journaldFactory.create({ socketPath: journald.socket }, context({ name }));
    try {
      await backend.send([line('before', 'stdout', new Date().toISOString())], signal);
      await journald.stop();
      await assert.rejects(backend.send([line('during', 'stdout', new Date().toISOString())], signal));
      await journald.start();
      await backend.send([line('after', 'stdout', new Date().toISOString())], signal);
    } finally {
      await backend.close();
    }
    const messages = await waitUntil(() => {
      const found = journald.entries(`CONTAINER_NAME=${name}`).map((e) => e.MESSAGE);
      return found.length >= 2 ? found : undefined;
    }, 'the entries in the journal');
    assert.deepEqual(messages, ['before', 'after']);
  });
});
