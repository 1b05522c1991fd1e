// splunk against the HEC server: the three formats and gzip as HEC stores them, the
// connection check before the first batch, acknowledgments granted late and never, a busy
// collector, a refused event, and a collector down when the container starts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SendResult } from '../../src/delivery/backend.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { SplunkBackend, splunkFactory } from '../../src/backends/splunk.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import { context } from '../unit/backend-context.ts';

const splunkConfig = (opts: Record<string, string>) => configureBackend(splunkFactory, opts);
import { HecServer } from './lib/hec-server.ts';

const TOKEN = 'splunk-test-token-77';
let plain: HecServer;
let acked: HecServer;

const lines = (prefix: string, n: number): OutgoingLine[] =>
  Array.from({ length: n }, (_, i) => ({ source: 'stdout', timeNano: BigInt(Date.now()) * 1_000_000n, line: Buffer.from(`${prefix} ${i + 1}`) }));
const signal = () => new AbortController().signal;
function backend(server: HecServer, opts: Record<string, string> = {}, ackWaitMs?: number) {
  const config = splunkConfig({ 'splunk-url': server.url, 'splunk-token': TOKEN, ...opts });
  if (ackWaitMs !== undefined) config.ackWaitMs = ackWaitMs;
  const ctx = context({ tag: `t-${Math.random().toString(36).slice(2, 10)}` });
  return { b: new SplunkBackend(config, ctx), ctx };
}
const eventsOf = (server: HecServer, tag: string) => server.events.filter((e) => JSON.stringify(e.event).includes(tag));

before(async () => {
  plain = new HecServer({ port: 18098, token: TOKEN, indexes: ['main'] });
  acked = new HecServer({ port: 18099, token: TOKEN, acks: true, ackDelayMs: 300 });
  await plain.listen();
  await acked.listen();
});

after(async () => {
  await plain.close();
  await acked.close();
  assert.deepEqual([...plain.violations, ...acked.violations], []);
});

describe('splunk to a HEC server', () => {
  for (const format of ['inline', 'json', 'raw'] as const) {
    it(`${format}, gzipped: every event stored, in order; the check (OPTIONS) once, before the first batch`, async () => {
      const before = plain.requests.length;
      const { b, ctx } = backend(plain, { 'splunk-format': format, 'splunk-gzip': 'true', 'splunk-index': 'main' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(plain.requests.length, before, 'nothing at create');
      assert.deepEqual(await b.send(lines(ctx.tag, 50), signal()), {});
      assert.deepEqual(await b.send(lines(ctx.tag, 1), signal()), {});
      const requests = plain.requests.slice(before);
      assert.deepEqual(requests.map((r) => r.method), ['OPTIONS', 'POST', 'POST']);
      assert.equal(requests[1]!.headers['content-encoding'], 'gzip');
      const stored = eventsOf(plain, ctx.tag);
      assert.equal(stored.length, 51);
      if (format === 'raw') assert.equal(stored[0]!.event, `${ctx.tag} ${ctx.tag} 1`);
      else assert.equal((stored[0]!.event as { line: string }).line, `${ctx.tag} 1`);
      await b.close();
    });
  }

  it('an index the token may not write: retried (transient), never rejected', async () => {
    const { b } = backend(plain, { 'splunk-index': 'secret' });
    await assert.rejects(b.send(lines('i', 2), signal()), (err: Error & { transient?: boolean }) => err.transient === true && /incorrect index/.test(err.message) && !err.message.includes(TOKEN));
    await b.close();
  });

  it('a refused event is rejected alone; the others go again', async () => {
    const { b, ctx } = backend(plain);
    plain.refuseEvents((e) => (e.event as { line?: string }).line === `${ctx.tag} 3`);
    const result = await b.send(lines(ctx.tag, 5), signal());
    plain.refuseEvents(null);
    assert.deepEqual(result.rejected?.map((r) => [r.index, r.code]), [[2, 'invalid']]);
    assert.deepEqual(result.retry?.lines, [0, 1, 3, 4]);
    await b.close();
  });

  it("a batch of 2,500 goes as Docker's requests of 1,000 events, in order; a refused event is named by its line in the batch", async () => {
    const { b, ctx } = backend(plain);
    const before = plain.requests.length;
    const all = lines(ctx.tag, 2500);
    assert.deepEqual(await b.send(all, signal()), {});
    const requests = plain.requests.slice(before);
    assert.deepEqual(requests.map((r) => [r.method, r.events]), [['OPTIONS', 0], ['POST', 1000], ['POST', 1000], ['POST', 500]]);
    assert.equal(eventsOf(plain, ctx.tag).length, 2500);
    // Line 1,500 is the 500th event of the second request: it alone is rejected, the rest of that request goes again.
    plain.refuseEvents((e) => (e.event as { line?: string }).line === `${ctx.tag} 1500`);
    const result = await b.send(all, signal());
    plain.refuseEvents(null);
    assert.deepEqual(result.rejected?.map((r) => [r.index, r.code]), [[1499, 'invalid']]);
    assert.deepEqual(result.retry?.lines, Array.from({ length: 1000 }, (_, i) => 1000 + i).filter((i) => i !== 1499));
    await b.close();
  });

  it('busy (503 with Retry-After): transient, with the delay asked', async () => {
    const { b } = backend(plain, { 'splunk-verify-connection': 'false' });
    plain.failNext(1, 7);
    await assert.rejects(b.send(lines('busy', 1), signal()), (err: Error & { transient?: boolean; retryAfterMs?: number }) => err.transient === true && err.retryAfterMs === 7000);
    await b.close();
  });

  it('index acknowledgment: a send resolves only once acknowledged, on the container\'s own channel', async () => {
    const { b, ctx } = backend(acked, { 'splunk-index-acknowledgment': 'true' });
    const started = Date.now();
    assert.deepEqual(await b.send(lines(ctx.tag, 10), signal()), {});
    assert.ok(Date.now() - started >= 300, 'waited for the acknowledgment');
    await b.send(lines(ctx.tag, 10), signal());
    const channels = new Set(eventsOf(acked, ctx.tag).map((e) => e.channel));
    assert.deepEqual([...channels], [b.channel]);
    await b.close();
  });

  it('index acknowledgment never granted: the batch is to be sent again, not counted delivered', async () => {
    const { b, ctx } = backend(acked, { 'splunk-index-acknowledgment': 'true' }, 1000);
    acked.grantAcks = false;
    let result: SendResult;
    try {
      result = await b.send(lines(ctx.tag, 3), signal());
    } finally {
      acked.grantAcks = true;
    }
    assert.match(result.retry?.reason ?? '', /not acknowledged/);
    assert.equal(result.retry?.lines, undefined, 'every line');
    await b.close();
  });

  it('a collector down: create does not connect, a send fails transient', async () => {
    const config = splunkConfig({ 'splunk-url': 'http://127.0.0.1:1', 'splunk-token': TOKEN });
    const b = new SplunkBackend(config, context());
    await assert.rejects(b.send(lines('down', 1), signal()), (err: Error & { transient?: boolean }) => err.transient === true && !String(err).includes(TOKEN));
    await b.close();
  });
});
