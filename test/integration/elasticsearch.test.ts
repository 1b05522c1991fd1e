// The elasticsearch backend on its HTTP client (transport/http.ts)
// against the bulk endpoint of lib/elasticsearch-endpoint.ts, in Elasticsearch mode and in
// OpenSearch mode (no product header): documents and their index, the media types, the
// outcomes (409 done, 429/5xx to send again, mapping conflicts rejected, a whole request
// refused transient or not), auth, TLS, several addresses and abort.
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { type SendResult, SendError } from '../../src/delivery/backend.ts';
import { elasticsearchFactory, } from '../../src/backends/elasticsearch.ts';
import { context, line } from '../unit/backend-context.ts';
import { ElasticsearchEndpoint, type EndpointMode, type EndpointOptions, filterPath } from './lib/elasticsearch-endpoint.ts';
import { makeTlsMaterial, scratchDir, type TlsMaterial } from './lib/servers.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

/** The backend's config from its log-opts and the plugin settings it is handed. */
const parseElasticsearchOptions = (opts: Record<string, string>, env: Record<string, string | undefined> = {}) =>
  configureBackend(elasticsearchFactory, opts, { ...NO_ENVIRONMENT, env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)) });

const PORT = 19210;
/** Nothing listens here: an address that refuses connections. */
const DEAD_PORT = 19211;

let dir: string;
let tls: TlsMaterial;
let endpoint: ElasticsearchEndpoint | null = null;

before(() => {
  dir = scratchDir('es');
  tls = makeTlsMaterial(path.join(dir, 'tls'));
});

afterEach(async () => {
  const open = endpoint;
  endpoint = null;
  if (open) {
    await open.close();
    assert.deepEqual(open.violations, [], 'the endpoint saw requests no server would take');
  }
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function start(options: Omit<EndpointOptions, 'port'>): Promise<ElasticsearchEndpoint> {
  endpoint = new ElasticsearchEndpoint({ ...options, port: PORT });
  await endpoint.listen();
  return endpoint;
}

const FLAVOR_OF: Record<EndpointMode, string> = { elasticsearch: 'elasticsearch', opensearch: 'opensearch' };

function backend(opts: Record<string, string>, env: NodeJS.ProcessEnv = {}, ctx = context()) {
  return elasticsearchFactory.create(parseElasticsearchOptions(opts, env), ctx);
}

async function sendOnce(opts: Record<string, string>, lines: OutgoingLine[], env: NodeJS.ProcessEnv = {}, signal = new AbortController().signal): Promise<SendResult> {
  const b = backend(opts, env);
  try {
    return await b.send(lines, signal);
  } finally {
    await b.close();
  }
}

const transient = (pattern: RegExp) => (err: unknown) => err instanceof SendError && err.transient && pattern.test(err.message);

function numbered(count: number, prefix: string, iso = '2026-11-21T23:59:59.000Z'): OutgoingLine[] {
  return Array.from({ length: count }, (_, i) => line(`${prefix} ${i + 1}`, i % 2 === 0 ? 'stdout' : 'stderr', iso, i));
}

for (const mode of ['elasticsearch', 'opensearch'] as const) {
  const flavor = { 'elasticsearch-flavor': FLAVOR_OF[mode] };

  describe(`elasticsearch backend (flavor ${mode}) → endpoint in ${mode} mode`, () => {
    it('documents arrive in the index of their day, with their fields, in plain media types', async () => {
      const es = await start({ mode });
      const ctx = context({ tag: 'web', attributes: [['com.example.team', 'core']] });
      const b = elasticsearchFactory.create(parseElasticsearchOptions({ ...flavor, 'elasticsearch-url': es.url }, {}), ctx);
      await b.send(
        [
          line('before midnight', 'stdout', '2026-11-21T23:59:59.999Z', 999_999),
          line('after midnight', 'stderr', '2026-11-22T00:00:00.5Z'),
          { ...line('piece', 'stdout', '2026-11-22T00:00:01Z'), partial: { id: 'p'.repeat(64), ordinal: 1, last: false } },
        ],
        new AbortController().signal,
      );
      await b.close();
      const [late, early, piece] = es.documents();
      assert.equal(late!.index, 'logstash-2026.11.21');
      assert.equal(early!.index, 'logstash-2026.11.22');
      assert.deepEqual(late!.source, {
        '@timestamp': '2026-11-21T23:59:59.999999999Z',
        message: 'before midnight',
        stream: 'stdout',
        tag: 'web',
        container: { id: ctx.id, name: 'bk-test', image: { name: 'bb:local', id: ctx.imageId } },
        host: { name: 'vm' },
        labels: { com_example_team: 'core' },
      });
      assert.equal(early!.source.stream, 'stderr');
      assert.equal(piece!.source.partial_message, true);
      const bulk = es.requests.find((r) => r.url.startsWith('/_bulk'))!;
      assert.equal(bulk.method, 'POST');
      assert.match(String(bulk.headers['content-type']), /^application\/x-ndjson/);
      assert.equal(bulk.headers.authorization, undefined);
      // The answer carries only each item's status and error (filter_path, as the servers apply it).
      assert.equal(new URL(bulk.url, 'http://x').searchParams.get('filter_path'), 'items.*.status,items.*.error.type,items.*.error.reason');
    });

    it('documents refused for now are the lines to send again; sent again alone they keep their ids; a whole batch sent again is stored once (409)', async () => {
      const es = await start({ mode });
      // Two identical lines (same time, stream and bytes): distinct documents by their rank.
      const lines = [...numbered(50, 'again'), line('twin', 'stdout', '2026-11-21T23:59:59.000Z'), line('twin', 'stdout', '2026-11-21T23:59:59.000Z')];
      // Every third document, and the second twin, is refused with 429 or 500 on its first offer only.
      const offered = new Map<string, number>();
      es.refuseItems((doc) => {
        const text = String(doc.message);
        const seen = offered.get(text) ?? 0;
        offered.set(text, seen + 1);
        if (text === 'twin') return seen === 1 ? { status: 429 } : null;
        const n = Number(text.split(' ')[1]);
        return seen === 0 && n % 3 === 0 ? { status: n % 2 === 0 ? 429 : 500 } : null;
      });
      const b = backend({ ...flavor, 'elasticsearch-url': es.url });
      const result = await b.send(lines, new AbortController().signal);
      const again = lines.map((_, i) => i).filter((i) => i === 51 || (i < 50 && (i + 1) % 3 === 0));
      assert.deepEqual(result.retry?.lines, again);
      assert.match(result.retry!.reason, /17 of 52 documents were refused for now \(first: 500 node_not_connected_exception: injected\)/);
      assert.equal(result.rejected?.length ?? 0, 0);
      assert.equal(es.documents().length, 35);
      // What the engine does: only those lines again.
      assert.deepEqual(await b.send(again.map((i) => lines[i]!), new AbortController().signal), {});
      await b.close();
      assert.equal(es.documents().length, 52, 'the second twin is a document of its own, not taken for the first');
      assert.equal(es.refused.get(409) ?? 0, 0, 'the retry sent none of those already stored');
      // A restarted plugin knows nothing of the first send: the whole batch goes, and is stored once.
      const restarted = backend({ ...flavor, 'elasticsearch-url': es.url });
      await restarted.send(lines, new AbortController().signal);
      await restarted.close();
      assert.equal(es.documents().length, 52);
      assert.equal(es.refused.get(409), 52, 'every document of the batch sent again was already stored');
    });

    it('a whole request refused with 429 or 503 fails the send as transient; the next goes through', async () => {
      const es = await start({ mode });
      es.refuseRequests(429, 1);
      es.refuseRequests(503, 1);
      const b = backend({ ...flavor, 'elasticsearch-url': es.url });
      const lines = numbered(10, 'whole');
      await assert.rejects(b.send(lines, new AbortController().signal), transient(/429|es_rejected_execution_exception/));
      await assert.rejects(b.send(lines, new AbortController().signal), transient(/503|unavailable_shards_exception/));
      await b.send(lines, new AbortController().signal);
      await b.close();
      assert.equal(es.documents().length, 10);
      assert.deepEqual(es.requests.filter((r) => r.url.startsWith('/_bulk')).map((r) => r.status), [429, 503, 200]);
    });

    it('a body over the server\'s limit (413) fails the send as not transient, so the engine bisects it', async () => {
      const es = await start({ mode, maxBodyBytes: 64 * 1024 });
      const b = backend({ ...flavor, 'elasticsearch-url': es.url });
      await assert.rejects(
        b.send([line('x'.repeat(100 * 1024), 'stdout', '2026-11-21T10:00:00Z')], new AbortController().signal),
        (err: unknown) => err instanceof SendError && !err.transient && err.rejectCode === 'too_large',
      );
      await b.close();
      es.violations.splice(0); // the endpoint records the oversized body it refused
    });

    it('a mapping conflict is a rejected line, never sent again; its reason quotes no document', async () => {
      const es = await start({ mode });
      es.conflictWhen((doc) => String(doc.message).includes('poison'));
      const result = await sendOnce({ ...flavor, 'elasticsearch-url': es.url }, [
        line('fine 1', 'stdout', '2026-11-21T10:00:00Z'),
        line('poison secret-content', 'stdout', '2026-11-21T10:00:01Z'),
        line('fine 2', 'stdout', '2026-11-21T10:00:02Z'),
      ]);
      assert.deepEqual(result.rejected?.map((r) => [r.index, r.code]), [[1, 'invalid']]);
      assert.match(result.rejected![0]!.reason, /^400 document_parsing_exception/);
      assert.ok(!result.rejected![0]!.reason.includes('secret-content'), result.rejected![0]!.reason);
      assert.equal(result.retry, undefined);
      assert.deepEqual(es.documents().map((d) => d.source.message), ['fine 1', 'fine 2']);
      assert.equal(es.requests.filter((r) => r.url.startsWith('/_bulk')).length, 1, 'not retried');
    });

    it("parse-json fields that clash with the index's mapping are refused like any mapping conflict", async () => {
      const es = await start({ mode });
      const json = (text: string, iso: string): OutgoingLine => ({ ...line(text, 'stdout', iso), fields: JSON.parse(text) });
      const result = await sendOnce({ ...flavor, 'elasticsearch-url': es.url }, [
        json('{"code":5,"level":"info"}', '2026-11-21T10:00:00Z'),
        json('{"code":"not a number"}', '2026-11-21T10:00:01Z'),
        json('{"code":"7"}', '2026-11-21T10:00:02Z'),
      ]);
      assert.deepEqual(result.rejected?.map((r) => r.index), [1]);
      assert.deepEqual(es.documents().map((d) => d.source.code), [5, '7']);
      assert.equal(es.documents()[0]!.source.level, 'info');
    });

    it('basic auth from the plugin settings; wrong credentials reject without quoting them', async () => {
      const es = await start({ mode, basic: { username: 'logship', password: 'pa55word' } });
      await sendOnce({ ...flavor, 'elasticsearch-url': es.url }, numbered(2, 'auth'), { ELASTICSEARCH_USERNAME: 'logship', ELASTICSEARCH_PASSWORD: 'pa55word' });
      assert.equal(es.documents().length, 2);
      await assert.rejects(
        sendOnce({ ...flavor, 'elasticsearch-url': es.url }, numbered(2, 'auth'), { ELASTICSEARCH_USERNAME: 'logship', ELASTICSEARCH_PASSWORD: 'wrong-secret' }),
        (err: Error) => transient(/401|security_exception/)(err) && !err.message.includes('wrong-secret'),
        'wrong credentials are transient: fixing them loses nothing',
      );
    });

    it('https with the CA from elasticsearch-tls-ca-cert, a client certificate, or skip-verify', async () => {
      const es = await start({ mode, tls: { cert: tls.cert, key: tls.key, ca: tls.ca, requestClientCert: true } });
      const opts = { ...flavor, 'elasticsearch-url': es.url, 'elasticsearch-tls-ca-cert': tls.ca };
      await sendOnce({ ...opts, 'elasticsearch-tls-cert': tls.cert, 'elasticsearch-tls-key': tls.key }, numbered(1, 'tls'));
      assert.equal(es.documents().length, 1);
      // Without a client certificate the server refuses the handshake.
      await assert.rejects(sendOnce(opts, numbered(1, 'tls')));
    });

    it('several addresses: a dead one is passed over within the same send', async () => {
      const es = await start({ mode });
      const b = backend({ ...flavor, 'elasticsearch-url': `http://127.0.0.1:${DEAD_PORT},${es.url}` });
      for (let i = 0; i < 3; i++) await b.send(numbered(5, `nodes-${i}`), new AbortController().signal);
      await b.close();
      assert.equal(es.documents().length, 15);
    });

    it('a data stream takes create actions', async () => {
      const es = await start({ mode, dataStreams: ['logs-docker-default'] });
      await sendOnce({ ...flavor, 'elasticsearch-url': es.url, 'elasticsearch-data-stream': 'logs-docker-default' }, numbered(3, 'stream'));
      assert.deepEqual(es.documents().map((d) => d.index), ['logs-docker-default', 'logs-docker-default', 'logs-docker-default']);
    });

    it('a full batch of parse-json lines, whose documents weigh about three times their lines, stays within a 10 MiB body limit', async () => {
      const es = await start({ mode });
      const limits = elasticsearchFactory.batchLimits(parseElasticsearchOptions({}, {}));
      // As many lines as fill maxBytes; each goes as its escaped message and as its fields.
      const object = (i: number): Record<string, string> => Object.fromEntries(Array.from({ length: 400 }, (_, k) => [`k${k}`, `${i}`.padStart(4, '0')]));
      const count = Math.floor(limits.maxBytes / (JSON.stringify(object(0)).length + (limits.lineOverheadBytes ?? 0)));
      const lines = Array.from({ length: count }, (_, i) => ({ ...line(JSON.stringify(object(i)), 'stdout', '2026-11-21T23:59:59.000Z', i), fields: object(i) }));
      assert.ok(lines.reduce((sum, l) => sum + l.line.length + (limits.lineOverheadBytes ?? 0), 0) <= limits.maxBytes);
      await sendOnce({ ...flavor, 'elasticsearch-url': es.url }, lines);
      assert.equal(es.documents().length, count);
    });

    it('the signal aborts a request the server does not answer', async () => {
      const es = await start({ mode });
      es.stall(true);
      const controller = new AbortController();
      const b = backend({ ...flavor, 'elasticsearch-url': es.url });
      const started = Date.now();
      setTimeout(() => controller.abort(new Error('send deadline')), 300);
      await assert.rejects(b.send(numbered(1, 'stall'), controller.signal), /send deadline/);
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      es.stall(false);
      await b.close();
    });
  });
}

describe('elasticsearch backend: the flavor matters', () => {
  it('the Elastic client refuses a server without the product header (OpenSearch)', async () => {
    const es = await start({ mode: 'opensearch' });
    await assert.rejects(sendOnce({ 'elasticsearch-url': es.url }, numbered(1, 'product')), /server is not Elasticsearch.*For OpenSearch, set --log-opt elasticsearch-flavor=opensearch\./);
  });

  it("the Elastic client's default compatible-with=9 media type would be refused by Elasticsearch 8; logship's are not", async () => {
    const es = await start({ mode: 'elasticsearch' });
    await sendOnce({ 'elasticsearch-url': es.url }, numbered(1, 'media'));
    assert.equal(es.documents().length, 1);
    const bulk = es.requests.find((r) => r.url.startsWith('/_bulk'))!;
    assert.ok(!String(bulk.headers['content-type']).includes('compatible-with') && !String(bulk.headers.accept).includes('compatible-with'));
  });

  it('API keys go as `Authorization: ApiKey`', async () => {
    const es = await start({ mode: 'elasticsearch', apiKey: 'aWQ6a2V5' });
    await sendOnce({ 'elasticsearch-url': es.url }, numbered(1, 'key'), { ELASTICSEARCH_API_KEY: 'aWQ6a2V5' });
    assert.equal(es.documents().length, 1);
    await assert.rejects(sendOnce({ 'elasticsearch-url': es.url }, numbered(1, 'key'), { ELASTICSEARCH_API_KEY: 'bm90OnRoaXM=' }), /401|security_exception/);
  });

  it('create() does not connect: a receiver down at StartLogging fails nothing until a send', async () => {
    const b = backend({ 'elasticsearch-url': `http://127.0.0.1:${DEAD_PORT}` });
    await assert.rejects(b.send(numbered(1, 'down'), new AbortController().signal), /ECONNREFUSED|ConnectionError|connect/i);
    await b.close();
  });
});

describe('the test endpoint itself', () => {
  it('answers and records what no server would take, so the tests above would fail on it', async () => {
    const es = await start({ mode: 'elasticsearch' });
    const post = async (body: string, contentType = 'application/x-ndjson'): Promise<number> =>
      (await fetch(`${es.url}/_bulk`, { method: 'POST', headers: { 'content-type': contentType }, body })).status;
    const action = '{"create":{"_index":"logs","_id":"1"}}';
    assert.equal(await post(`${action}\n{"@timestamp":"2026-11-21T10:00:00Z"}`), 400);
    assert.equal(await post(`${action}\n`), 400);
    assert.equal(await post(`${action}\n{"message":"no time"}\n`), 200);
    assert.equal(await post(`{"create":{"_index":"Logs"}}\n{"@timestamp":"2026-11-21T10:00:00Z"}\n`), 200);
    assert.equal(await post(`${action}\n{"@timestamp":"2026-11-21T10:00:00Z"}\n`, 'application/vnd.elasticsearch+x-ndjson; compatible-with=9'), 400);
    assert.deepEqual(es.violations.splice(0).map((v) => v.replace(/:.*/, '')), [
      'a bulk body without its trailing newline',
      'the create action on line 1 has no source',
      'a document without an RFC 3339 @timestamp',
      "an invalid index name 'Logs'",
    ]);
    assert.equal(es.documents().length, 0);
  });
});

describe("the endpoint's filter_path", () => {
  const answer = {
    took: 1,
    errors: true,
    items: [
      { create: { _index: 'i', _id: 'a', status: 201, result: 'created', _shards: { total: 2 } } },
      { create: { _index: 'i', _id: 'b', status: 400, error: { type: 't', reason: 'r', caused_by: { type: 'x' } } } },
    ],
  };
  const filter = (text: string) => filterPath(answer, text.split(',').map((p) => p.split('.'))) ?? {};
  it('keeps what a path names and what leads to it; arrays pass through; what keeps nothing is left out', () => {
    assert.deepEqual(filter('items.*.status,items.*.error.type,items.*.error.reason'), {
      items: [{ create: { status: 201 } }, { create: { status: 400, error: { type: 't', reason: 'r' } } }],
    });
    assert.deepEqual(filter('items.*.error'), { items: [{ create: { error: { type: 't', reason: 'r', caused_by: { type: 'x' } } } }] });
    assert.deepEqual(filter('took,items.**.type'), { took: 1, items: [{ create: { error: { type: 't', caused_by: { type: 'x' } } } }] });
    assert.deepEqual(filter('it*.create._i*'), { items: [{ create: { _index: 'i', _id: 'a' } }, { create: { _index: 'i', _id: 'b' } }] });
    assert.deepEqual(filter('nothing'), {});
  });
});
