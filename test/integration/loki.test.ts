// backend=loki against the Loki push endpoint (test/integration/lib/loki-endpoint.ts): both
// encodings, the tenant, basic auth, the answers the engine acts on (429 with Retry-After,
// 500, a per-entry 400), and a cross-check with another Loki client (winston-loki: its own
// protobuf encoder and native snappy) decoding to the same streams.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import winston from 'winston';
import LokiTransport from 'winston-loki';
import { lokiFactory } from '../../src/backends/loki.ts';
import { SendError } from '../../src/delivery/backend.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { context } from '../unit/backend-context.ts';
import { LokiEndpoint } from './lib/loki-endpoint.ts';
import { waitUntil } from './lib/servers.ts';

const now = (offsetMs = 0, i = 0): bigint => BigInt(Date.now() + offsetMs) * 1_000_000n + BigInt(i);
const out = (text: string, timeNano = now(), source: 'stdout' | 'stderr' = 'stdout'): OutgoingLine => ({ source, timeNano, line: Buffer.from(text) });
const signal = () => AbortSignal.timeout(10_000);

describe('loki backend', () => {
  const endpoint = new LokiEndpoint({ tenantRequired: true, basic: { username: 'u', password: 'loki-secret-pw' } });
  before(() => endpoint.listen());
  after(async () => {
    await endpoint.close();
    assert.deepEqual(endpoint.violations, []);
  });
  const backend = (ctxName: string, extra: Record<string, string> = {}) => {
    const url = endpoint.url.replace('http://', 'http://u:loki-secret-pw@');
    return lokiFactory.create(configureBackend(lokiFactory, { 'loki-url': url, 'loki-tenant-id': 'team-a', ...extra }), context({ name: ctxName }));
  };

  for (const format of ['protobuf', 'json']) {
    it(`pushes ${format}: streams by source, in time order, with the tenant`, async () => {
      const b = backend(`fmt-${format}`, { 'loki-format': format });
      const t = now();
      const result = await b.send([out('b', t + 2n), out('e', t + 1n, 'stderr'), out('a', t + 1n), out('multi\nline', t + 3n)], signal());
      assert.deepEqual(result, {});
      const stdout = endpoint.entries({ container_name: `fmt-${format}`, source: 'stdout' }, 'team-a');
      assert.deepEqual(stdout.map((e) => e.line), ['a', 'b', 'multi\nline']);
      assert.deepEqual(stdout.map((e) => e.timeNano), [t + 1n, t + 2n, t + 3n]);
      assert.deepEqual(endpoint.entries({ container_name: `fmt-${format}`, source: 'stderr' }, 'team-a').map((e) => e.line), ['e']);
      assert.equal(endpoint.pushes.at(-1)!.contentType, format === 'json' ? 'application/json' : 'application/x-protobuf');
      await b.close();
    });
  }

  it('429 is transient with its Retry-After, 500 transient, and a missing tenant (401) too', async () => {
    const b = backend('faults');
    endpoint.fail({ status: 429, retryAfter: '7' }, { status: 500 });
    await assert.rejects(b.send([out('x')], signal()), (err: SendError) => err.transient && err.retryAfterMs === 7000);
    await assert.rejects(b.send([out('x')], signal()), (err: SendError) => err.transient && /500/.test(err.message));
    const noTenant = lokiFactory.create(configureBackend(lokiFactory, { 'loki-url': endpoint.url.replace('http://', 'http://u:loki-secret-pw@') }), context());
    await assert.rejects(noTenant.send([out('x')], signal()), (err: SendError) => err.transient && /401/.test(err.message));
    const wrongPassword = lokiFactory.create(configureBackend(lokiFactory, { 'loki-url': endpoint.url.replace('http://', 'http://u:wrong-pw@'), 'loki-tenant-id': 't' }), context());
    await assert.rejects(wrongPassword.send([out('x')], signal()), (err: SendError) => err.transient && !err.message.includes('wrong-pw'));
    await Promise.all([b.close(), noTenant.close(), wrongPassword.close()]);
  });

  it('an entry too old, or out of order, is a 400 for the push that names the line alone, with its reason', async () => {
    const b = backend('refused');
    const fresh = out('fresh');
    await assert.rejects(b.send([out('ancient', now(-8 * 86_400_000)), fresh], signal()), (err: SendError) => !err.transient && err.rejectCode === 'too_old');
    // Loki kept the fresh entry; sent again as the engine's bisection does, it is not duplicated.
    assert.deepEqual(await b.send([fresh], signal()), {});
    await b.send([out('fresh2')], signal());
    await assert.rejects(b.send([out('future', now(3_600_000))], signal()), (err: SendError) => !err.transient && err.rejectCode === 'too_new');
    const lines = endpoint.entries({ container_name: 'refused' }, 'team-a').map((e) => e.line);
    assert.deepEqual(lines, ['fresh', 'fresh2']);
    await b.close();
  });

  it('decodes to the same streams as another Loki client (winston-loki, protobuf and snappy)', async () => {
    const texts = ['first', 'ünïcödé', 'with "quotes" and \\'];
    const transport = new LokiTransport({
      host: `http://127.0.0.1:${new URL(endpoint.url).port}`,
      basicAuth: 'u:loki-secret-pw',
      headers: { 'X-Scope-OrgID': 'team-a' },
      labels: { container_name: 'cross', host: 'vm', source: 'stdout' },
      batching: false,
      json: false,
      format: winston.format.printf((info) => String(info.message)),
      onConnectionError: (err: unknown) => assert.fail(String(err)),
    });
    const logger = winston.createLogger({ transports: [transport] });
    for (const text of texts) logger.info(text);
    await waitUntil(() => endpoint.entries({ container_name: 'cross', level: 'info' }, 'team-a').length === texts.length, 'winston-loki entries');
    logger.close();
    assert.equal(endpoint.pushes.filter((p) => p.contentType === 'application/x-protobuf').length > 0, true);
    const theirs = endpoint.entries({ container_name: 'cross', level: 'info' }, 'team-a');
    // winston stamps the entries itself: ours are given the same times.
    const b = backend('cross-logship');
    await b.send(theirs.map((e) => out(e.line, e.timeNano)), signal());
    await b.close();
    const ours = endpoint.entries({ container_name: 'cross-logship' }, 'team-a');
    assert.deepEqual(ours.map((e) => [e.timeNano, e.line]), theirs.map((e) => [e.timeNano, e.line]));
    const { level: _level, ...theirLabels } = theirs[0]!.labels;
    assert.deepEqual({ ...ours[0]!.labels, container_name: 'cross' }, theirLabels);
  });
});
