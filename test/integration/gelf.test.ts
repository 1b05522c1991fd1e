// gelf against the GELF server: each transport and compression as a Graylog input reads
// them, TLS from a test CA, a receiver restarted mid-way, and a container started while
// no server listens.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gelfFactory } from '../../src/backends/gelf.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { context } from '../unit/backend-context.ts';
import { GelfServer } from './lib/gelf-server.ts';
import { makeTlsMaterial, scratchDir, waitUntil } from './lib/servers.ts';

const PORT = 12241;
let server: GelfServer;
let dir: string;
let ca: string;

const lines = (prefix: string, n: number): OutgoingLine[] =>
  Array.from({ length: n }, (_, i) => ({ source: i % 2 ? 'stderr' : 'stdout', timeNano: BigInt(Date.now()) * 1_000_000n, line: Buffer.from(`${prefix} ${i + 1}`) }));
const backend = (opts: Record<string, string>, ctx = context()) => gelfFactory.create(configureBackend(gelfFactory, opts), ctx);
const signal = () => new AbortController().signal;

before(async () => {
  dir = scratchDir('gelf');
  const tls = makeTlsMaterial(path.join(dir, 'tls'));
  ca = tls.ca;
  server = new GelfServer(PORT, { cert: tls.cert, key: tls.key });
  await server.start();
});

after(async () => {
  await server.stop();
  assert.deepEqual(server.violations, []);
});

describe('gelf to a GELF server', () => {
  for (const comp of ['gzip', 'zlib', 'none'] as const) {
    it(`udp, ${comp}: every message, levels 6 and 3, a long one in chunks`, async () => {
      const ctx = context({ id: `${comp}`.padEnd(64, '0') });
      const b = backend({ 'gelf-address': `udp://127.0.0.1:${PORT}`, 'gelf-compression-type': comp }, ctx);
      const batch = [...lines(comp, 20), { source: 'stdout' as const, timeNano: 0n, line: Buffer.from('y'.repeat(5000)) }];
      assert.deepEqual(await b.send(batch, signal()), {});
      const got = await waitUntil(() => {
        const r = server.received.filter((m) => m.message._container_id === ctx.id);
        return r.length === 21 && r;
      }, '21 messages');
      assert.ok(got.every((r) => r.transport === 'udp' && r.compression === comp));
      assert.deepEqual(got.map((r) => r.message.level).slice(0, 2), [6, 3]);
      const long = got.find((r) => r.message.short_message.startsWith('y'))!;
      assert.equal(long.message.short_message.length, 5000);
      if (comp === 'none') assert.equal(long.chunks, 4);
      await b.close();
    });
  }

  it('tcp+tls with the test CA, and tcp: NUL-terminated messages, in order', async () => {
    for (const [scheme, port] of [['tcp+tls', server.tlsPort], ['tcp', PORT]] as const) {
      const ctx = context({ id: scheme.padEnd(64, '1') });
      const opts: Record<string, string> = { 'gelf-address': `${scheme}://localhost:${port}` };
      if (scheme === 'tcp+tls') opts['gelf-tls-ca-cert'] = ca;
      const b = backend(opts, ctx);
      await b.send(lines(scheme, 500), signal());
      const got = await waitUntil(() => {
        const r = server.received.filter((m) => m.message._container_id === ctx.id);
        return r.length === 500 && r;
      }, `500 messages over ${scheme}`);
      assert.deepEqual(got.map((r) => r.message.short_message), lines(scheme, 500).map((l) => l.line.toString()));
      assert.ok(got.every((r) => r.transport === (scheme === 'tcp' ? 'tcp' : 'tls')));
      await b.close();
    }
  });

  it('tls refuses a server its CA did not sign (transient: the operator fixes the CA)', async () => {
    const b = backend({ 'gelf-address': `tcp+tls://localhost:${server.tlsPort}` });
    await assert.rejects(b.send(lines('x', 1), signal()), (err: Error & { transient?: boolean }) => err.transient === true);
    await b.close();
  });

  it('a server that restarts: the next send dials again (the name resolved again), the last batch goes again first, nothing is lost', async () => {
    const ctx = context({ id: 'restart'.padEnd(64, '2') });
    const b = backend({ 'gelf-address': `tcp://localhost:${PORT}` }, ctx);
    await b.send(lines('r', 5), signal());
    await waitUntil(() => server.received.filter((m) => m.message._container_id === ctx.id).length === 5, '5 messages');
    await server.stop();
    await sleep(100); // the close reached the client
    await assert.rejects(b.send(lines('r', 1), signal()), (err: Error & { transient?: boolean }) => err.transient === true);
    await server.start();
    await b.send(lines('s', 5), signal());
    // The batch written within the replay window (1 s) before the loss goes again first: duplicates, not losses.
    await waitUntil(() => server.received.filter((m) => m.message._container_id === ctx.id).length === 15, '15 messages');
    assert.deepEqual(
      server.received.filter((m) => m.message._container_id === ctx.id).map((m) => m.message.short_message),
      [...lines('r', 5), ...lines('r', 5), ...lines('s', 5)].map((l) => l.line.toString()),
    );
    await b.close();
  });

  it('created while nothing listens: no error until a send, which fails transient', async () => {
    const b = backend({ 'gelf-address': 'tcp://127.0.0.1:1' });
    await assert.rejects(b.send(lines('z', 1), signal()), (err: Error & { transient?: boolean }) => err.transient === true);
    await b.close();
  });

  it('empty lines are not sent, as in Docker', async () => {
    const ctx = context({ id: 'empty'.padEnd(64, '3') });
    const b = backend({ 'gelf-address': `tcp://127.0.0.1:${PORT}` }, ctx);
    await b.send([{ source: 'stdout', timeNano: 0n, line: Buffer.alloc(0) }, ...lines('e', 1)], signal());
    const got = await waitUntil(() => server.received.filter((m) => m.message._container_id === ctx.id).length === 1 && true, 'one message');
    assert.ok(got);
    await b.close();
  });
});
