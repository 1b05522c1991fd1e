// The syslog backend against a real rsyslog: every transport and format, TLS with a CA
// made here, and a receiver that goes away and comes back.
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SendResult, SendError } from '../../src/delivery/backend.ts';
import { MAX_UDP_PAYLOAD, syslogFactory } from '../../src/backends/syslog.ts';
import { context, line } from '../unit/backend-context.ts';
import { Rsyslog, SYSLOG_PORT, SYSLOG_TLS_PORT, makeTlsMaterial, scratchDir, type TlsMaterial } from './lib/servers.ts';
import type { ContainerContext } from '../../src/shaping/container.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

const signal = new AbortController().signal;
let dir: string;
let tls: TlsMaterial;
let rsyslog: Rsyslog;

before(async () => {
  dir = scratchDir('syslog');
  tls = makeTlsMaterial(path.join(dir, 'tls'));
  rsyslog = new Rsyslog(path.join(dir, 'rsyslog'), tls);
  await rsyslog.start();
});

after(async () => {
  await rsyslog?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function send(opts: Record<string, string>, ctx: ContainerContext, lines: OutgoingLine[]): Promise<SendResult> {
  const backend = syslogFactory.create(configureBackend(syslogFactory, opts), ctx);
  try {
    return await backend.send(lines, signal);
  } finally {
    await backend.close();
  }
}

function now(): string {
  return new Date().toISOString();
}

describe('syslog backend → rsyslog', () => {
  const addresses = (): Record<string, Record<string, string>> => ({
    udp: { 'syslog-address': `udp://127.0.0.1:${SYSLOG_PORT}` },
    tcp: { 'syslog-address': `tcp://127.0.0.1:${SYSLOG_PORT}` },
    'tcp+tls': { 'syslog-address': `tcp+tls://localhost:${SYSLOG_TLS_PORT}`, 'syslog-tls-ca-cert': tls.ca },
    unix: { 'syslog-address': `unix://${rsyslog.streamSocket}` },
    unixgram: { 'syslog-address': `unixgram://${rsyslog.dgramSocket}` },
  });
  for (const transport of ['udp', 'tcp', 'tcp+tls', 'unix', 'unixgram']) {
    for (const format of ['', 'rfc3164', 'rfc5424', 'rfc5424micro']) {
      it(`${transport}, format '${format || 'default'}': fields arrive`, async () => {
        const marker = `bk-${transport}-${format || 'default'}-${Date.now()}`;
        const ctx = context({ tag: `bk-tag-${marker.length}`, hostname: 'bk-host' });
        await send({ ...addresses()[transport]!, 'syslog-format': format, 'syslog-facility': 'local3' }, ctx, [
          line(`${marker} out with  spaces`, 'stdout', now()),
          line(`${marker} err`, 'stderr', now()),
        ]);
        const [out, err] = await rsyslog.waitFor(marker, 2);
        assert.ok(out && err);
        assert.equal(out.msg.trim(), `${marker} out with  spaces`);
        assert.equal(err.msg.trim(), `${marker} err`);
        assert.equal(out.syslogfacility, '19');
        assert.equal(out.syslogseverity, '6');
        assert.equal(err.syslogseverity, '3');
        assert.equal(out.programname, ctx.tag);
        if (format.startsWith('rfc5424')) {
          assert.equal(out['app-name'], ctx.tag);
          assert.equal(out.msgid, ctx.tag);
          assert.equal(out.procid, String(process.pid));
        }
        if (format !== '') assert.equal(out.hostname, 'bk-host');
      });
    }
  }

  it('tcp+tls refuses a server its CA did not sign, and skip-verify accepts it', async () => {
    const other = makeTlsMaterial(path.join(dir, 'other-ca'));
    const marker = `bk-tls-verify-${Date.now()}`;
    const opts = { 'syslog-address': `tcp+tls://localhost:${SYSLOG_TLS_PORT}`, 'syslog-format': 'rfc5424' };
    await assert.rejects(send({ ...opts, 'syslog-tls-ca-cert': other.ca }, context(), [line(marker, 'stdout', now())]), /certificate/);
    await send({ ...opts, 'syslog-tls-skip-verify': '' }, context(), [line(marker, 'stdout', now())]);
    await rsyslog.waitFor(marker, 1);
  });

  // Finding 3 of issue 11: over unix datagrams (Docker's default address) a line over ~208 KB
  // failed with EMSGSIZE at every retry, and every retry sent the datagrams before it again.
  it('unixgram: a line longer than the socket takes is cut as over udp, reported truncated; the lines around it arrive once each', async () => {
    const marker = `bk-dgram-big-${Date.now()}`;
    const big = `${marker} big ` + 'x'.repeat(300 * 1024);
    const lines = [line(`${marker} before`, 'stdout', now()), line(big, 'stdout', now()), line(`${marker} after`, 'stdout', now())];
    const result = await send({ 'syslog-address': `unixgram://${rsyslog.dgramSocket}` }, context(), lines);
    assert.deepEqual(result, { truncated: [1], rejected: [] });
    const messages = await rsyslog.waitFor(marker, 3);
    assert.deepEqual(messages.map((m) => m.msg.trim().split(' ')[1]), ['before', 'big', 'after']);
    assert.ok(messages[1]!.rawmsg.length < MAX_UDP_PAYLOAD && messages[1]!.rawmsg.length > MAX_UDP_PAYLOAD - 200, `${messages[1]!.rawmsg.length} bytes`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rsyslog.parsed().filter((m) => m.rawmsg.includes(marker)).length, 3, 'nothing sent twice');
  });

  it('udp: a line longer than a datagram is cut and reported truncated', async () => {
    const marker = `bk-udp-big-${Date.now()}`;
    const result = await send({ 'syslog-address': `udp://127.0.0.1:${SYSLOG_PORT}` }, context(), [line(`${marker} ` + 'y'.repeat(70_000), 'stdout', now())]);
    assert.deepEqual(result, { truncated: [0] });
    await rsyslog.waitFor(marker, 1);
  });

  it('unixgram: a receiver gone fails the send as transient', async () => {
    await assert.rejects(
      send({ 'syslog-address': `unixgram://${rsyslog.dir}/nobody.sock` }, context(), [line('x', 'stdout', now())]),
      (err: unknown) => err instanceof SendError && err.transient,
    );
  });

  it('a batch fails while rsyslog is down and goes through on the same backend once it is back', async () => {
    const backend = syslogFactory.create(configureBackend(syslogFactory, { 'syslog-address': `tcp://127.0.0.1:${SYSLOG_PORT}` }), context());
    try {
      const marker = `bk-reconnect-${Date.now()}`;
      await backend.send([line(`${marker} 1`, 'stdout', now())], signal);
      await rsyslog.waitFor(`${marker} 1`, 1);
      await rsyslog.stop();
      await assert.rejects(backend.send([line(`${marker} 2`, 'stdout', now())], signal));
      await rsyslog.start();
      await backend.send([line(`${marker} 2`, 'stdout', now())], signal);
      await rsyslog.waitFor(`${marker} 2`, 1);
    } finally {
      await backend.close();
    }
  });
});
