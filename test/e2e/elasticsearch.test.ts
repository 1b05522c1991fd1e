// backend=elasticsearch through the real engine and plugin, to the bulk endpoint of
// test/integration/lib/elasticsearch-endpoint.ts (Elasticsearch mode, and OpenSearch mode
// with elasticsearch-flavor=opensearch), with basic auth from the plugin settings: the
// documents and their dated index; 100,000 lines arrive exactly once, in order by @timestamp and batch by batch, through
// injected per-document and whole-request 429s, without the container waiting; a mapping
// conflict is rejected into the container's dead-letter file and counted, not retried; a bad
// option fails `docker run` naming it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { DATA_DIR, PLUGIN } from './lib/docker-client.ts';
import { changePluginSettings, metricValue } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES } from './lib/sequence.ts';
import { ElasticsearchEndpoint, type StoredDocument } from '../integration/lib/elasticsearch-endpoint.ts';
import { makeTlsMaterial, scratchDir, waitUntil } from '../integration/lib/servers.ts';

const ES_PORT = 19250;
const OPENSEARCH_PORT = 19251;
const TLS_PORT = 19252;
/** Under the data folder, which the plugin sees at /var/lib/logship (config.json's `data` mount). */
const TLS_DIR = 'es-e2e-tls';
const METRICS_ADDRESS = '127.0.0.1:19290';
const USERNAME = 'logship-e2e';
const PASSWORD = randomBytes(12).toString('hex');

let es: ElasticsearchEndpoint;
let opensearch: ElasticsearchEndpoint;
let secure: ElasticsearchEndpoint;
let dir: string;

function dockerCli(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/** Puts the plugin's settings back as they were. */
let restoreSettings: (() => Promise<void>) | undefined;

before(async () => {
  es = new ElasticsearchEndpoint({ mode: 'elasticsearch', port: ES_PORT, basic: { username: USERNAME, password: PASSWORD } });
  opensearch = new ElasticsearchEndpoint({ mode: 'opensearch', port: OPENSEARCH_PORT, basic: { username: USERNAME, password: PASSWORD } });
  dir = scratchDir('es-e2e');
  const tls = makeTlsMaterial(path.join(dir, 'tls'));
  fs.mkdirSync(path.join(DATA_DIR, TLS_DIR), { recursive: true });
  fs.copyFileSync(tls.ca, path.join(DATA_DIR, TLS_DIR, 'ca.pem'));
  secure = new ElasticsearchEndpoint({ mode: 'elasticsearch', port: TLS_PORT, tls: { cert: tls.cert, key: tls.key }, basic: { username: USERNAME, password: PASSWORD } });
  await es.listen();
  await opensearch.listen();
  await secure.listen();
  restoreSettings = await changePluginSettings({ METRICS_ADDRESS, ELASTICSEARCH_USERNAME: USERNAME, ELASTICSEARCH_PASSWORD: PASSWORD });
});

after(async () => {
  await removeContainers();
  try {
    await restoreSettings?.();
  } finally {
    await es?.close();
    await opensearch?.close();
    await secure?.close();
    fs.rmSync(path.join(DATA_DIR, TLS_DIR), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(es.violations, [], 'the Elasticsearch endpoint saw requests no server would take');
  assert.deepEqual(opensearch.violations, [], 'the OpenSearch endpoint saw requests no server would take');
  assert.deepEqual(secure.violations, [], 'the https endpoint saw requests no server would take');
});

const esOpts = (extra: Record<string, string> = {}): Record<string, string> => ({
  backend: 'elasticsearch',
  'elasticsearch-url': `http://127.0.0.1:${ES_PORT}`,
  ...extra,
});

async function run(cmd: string[], opts: Record<string, string>): Promise<{ id: string; ms: number }> {
  const container = await createContainer({ cmd, driver: PLUGIN, opts });
  const started = Date.now();
  await container.start();
  assert.equal(await waitExit(container, 120_000), 0);
  return { id: container.id, ms: Date.now() - started };
}

const ofContainer = (endpoint: ElasticsearchEndpoint, id: string): StoredDocument[] =>
  endpoint.documents().filter((d) => (d.source.container as { id?: string } | undefined)?.id === id);

/** Unix nanoseconds of an RFC 3339 time with up to nine fraction digits. */
function nanos(time: string): bigint {
  const [, base, fraction = ''] = /^(.{19})(?:\.(\d+))?Z$/.exec(time) ?? [];
  return BigInt(Date.parse(`${base}Z`)) * 1_000_000n + BigInt(fraction.padEnd(9, '0'));
}

function dayIndex(time: string): string {
  return `logstash-${time.slice(0, 10).replaceAll('-', '.')}`;
}

const scrape = (name: string): Promise<number> => metricValue(METRICS_ADDRESS, name);
const REJECTED = 'logship_backend_lines_rejected_total{backend="elasticsearch",reason="invalid"}';

describe('backend=elasticsearch through the engine', () => {
  test("documents carry the line, its time, the container, in the index of the line's day (Elasticsearch and OpenSearch)", async () => {
    const cases = [
      { endpoint: es, opts: esOpts({ tag: '{{.Name}}', labels: 'logship-e2e' }) },
      {
        endpoint: opensearch,
        opts: esOpts({ 'elasticsearch-url': `http://127.0.0.1:${OPENSEARCH_PORT}`, 'elasticsearch-flavor': 'opensearch', tag: '{{.Name}}', labels: 'logship-e2e' }),
      },
    ];
    await Promise.all(
      cases.map(async ({ endpoint, opts }) => {
        const { id } = await run(sh('echo out-line; echo err-line >&2'), opts);
        const docs = await waitUntil(() => {
          const found = ofContainer(endpoint, id);
          return found.length >= 2 ? found : undefined;
        }, `both documents at the ${endpoint.mode} endpoint`);
        const out = docs.find((d) => d.source.message === 'out-line')!;
        const err = docs.find((d) => d.source.message === 'err-line')!;
        assert.ok(out && err, JSON.stringify(docs));
        const name = dockerCli('inspect', '-f', '{{.Name}}', id).slice(1);
        const time = out.source['@timestamp'] as string;
        assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
        assert.ok(Math.abs(Number(nanos(time) / 1_000_000n) - Date.now()) < 120_000, time);
        assert.equal(out.index, dayIndex(time));
        assert.deepEqual(
          { ...out.source, '@timestamp': undefined },
          {
            '@timestamp': undefined,
            message: 'out-line',
            stream: 'stdout',
            tag: name,
            container: {
              id,
              name,
              image: { name: dockerCli('inspect', '-f', '{{.Config.Image}}', id), id: dockerCli('inspect', '-f', '{{.Image}}', id) },
            },
            host: { name: (out.source.host as { name: string }).name },
            labels: { 'logship-e2e': 'true' },
          },
        );
        assert.ok((out.source.host as { name: string }).name.length > 0);
        assert.equal(err.source.stream, 'stderr');
        const bulk = endpoint.requests.find((r) => r.url.startsWith('/_bulk'))!;
        assert.equal(bulk.headers.authorization, `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`);
      }),
    );
  });

  test('https with the CA named by elasticsearch-tls-ca-cert, read under the plugin\'s data mount', async () => {
    const { id } = await run(
      sh('echo over-tls'),
      esOpts({ 'elasticsearch-url': `https://localhost:${TLS_PORT}`, 'elasticsearch-tls-ca-cert': `/var/lib/logship/${TLS_DIR}/ca.pem` }),
    );
    const [doc] = await waitUntil(() => {
      const found = ofContainer(secure, id);
      return found.length >= 1 ? found : undefined;
    }, 'the document over https');
    assert.equal(doc!.source.message, 'over-tls');
  });

  test(`${LINES} lines through injected 429s (whole requests and single documents) arrive exactly once, in order`, async (t: TestContext) => {
    const offered = new Set<number>();
    const refusedOnce = new Set<number>();
    es.refuseRequests(429, 2);
    es.refuseItems((doc) => {
      const n = Number(doc.message);
      if (!Number.isInteger(n) || offered.has(n)) return null;
      offered.add(n);
      if (n % 997 === 0) return (refusedOnce.add(n), { status: 429 });
      if (n % 1999 === 0) return (refusedOnce.add(n), { status: 500 });
      return null;
    });
    const requestsBefore = es.requests.length;
    const conflictsBefore = es.refused.get(409) ?? 0;
    try {
      const container = await createContainer({ cmd: sh(`seq 1 ${LINES}`), driver: PLUGIN, opts: esOpts() });
      const started = Date.now();
      await container.start();
      const exited = waitExit(container, 120_000).then((code) => ({ code, ms: Date.now() - started }));
      // Once shipping is under way, two more whole requests are refused.
      await waitUntil(() => ofContainer(es, container.id).length >= 30_000, '30,000 documents', 90_000);
      es.refuseRequests(429, 2);
      const { code, ms } = await exited;
      assert.equal(code, 0);
      let docs: StoredDocument[] = [];
      await waitUntil(() => (docs = ofContainer(es, container.id)).length >= LINES, `${LINES} documents`, 100_000).catch((err: Error) => {
        throw new Error(`${err.message}: ${docs.length} arrived`);
      });
      const completeMs = Date.now() - started;
      await new Promise((r) => setTimeout(r, 1000)); // anything extra would arrive now
      docs = ofContainer(es, container.id);
      assert.equal(docs.length, LINES, 'each line stored exactly once');
      const numbers = docs.map((d) => Number(d.source.message));
      assert.equal(new Set(numbers).size, LINES);
      // By time (what Kibana sorts by), the lines are the container's order.
      const byTime = docs
        .map((d, i) => ({ n: Number(d.source.message), t: nanos(d.source['@timestamp'] as string), i }))
        .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.i - b.i));
      byTime.forEach((d, i) => assert.equal(d.n, i + 1, `line ${i + 1} expected at position ${i + 1} by @timestamp`));
      // In arrival, batches in order: a line not refused once never came after one of a later
      // batch, so never after one a batch (5,000 lines at most) or more ahead of it. Within a
      // batch its bulk requests, two in flight, may arrive in either order (src/transport/requests.ts).
      const straight = numbers.filter((n) => !refusedOnce.has(n));
      let ahead = 0;
      for (const n of straight) {
        assert.ok(n > ahead - 5000, `line ${n} arrived after line ${ahead}, more than a batch ahead of it`);
        ahead = Math.max(ahead, n);
      }
      for (const d of docs) assert.equal(d.index, dayIndex(d.source['@timestamp'] as string));
      const bulkStatuses = es.requests.slice(requestsBefore).map((r) => r.status);
      const wholeRefused = bulkStatuses.filter((s) => s === 429).length;
      const conflicts = (es.refused.get(409) ?? 0) - conflictsBefore;
      assert.equal(wholeRefused, 4);
      assert.ok(refusedOnce.size > 100, `${refusedOnce.size} documents refused once`);
      assert.equal(conflicts, 0, 'a retry sent only the documents refused, none already stored');
      assert.ok(ms < completeMs, 'the container did not wait for the deliveries');
      t.diagnostic(
        `${LINES} lines: container ran ${ms} ms; all stored once and in order ${completeMs} ms after the start, through ` +
          `${wholeRefused} whole-request 429s and ${refusedOnce.size} documents refused once (429/500); ` +
          `${bulkStatuses.length} bulk requests, ${conflicts} documents sent twice (409)`,
      );
    } finally {
      es.refuseItems(null);
    }
  });

  test('a document refused for a mapping conflict is dead-lettered and counted, not retried', async () => {
    let offers = 0;
    es.conflictWhen((doc) => {
      const poisoned = String(doc.message).startsWith('poison-');
      if (poisoned) offers++;
      return poisoned;
    });
    try {
      const before = await scrape(REJECTED);
      const marker = randomBytes(4).toString('hex');
      const { id } = await run(sh(`echo keep-${marker}-1; echo poison-${marker}; echo keep-${marker}-2`), esOpts());
      const docs = await waitUntil(() => {
        const found = ofContainer(es, id);
        return found.length >= 2 ? found : undefined;
      }, 'the two documents kept');
      await waitUntil(async () => (await scrape(REJECTED)) - before >= 1, 'the refusal to be counted');
      await new Promise((r) => setTimeout(r, 3000)); // a retry would come within the engine's first backoff
      assert.deepEqual(docs.map((d) => d.source.message), [`keep-${marker}-1`, `keep-${marker}-2`]);
      assert.equal(offers, 1, 'the refused document was sent once');
      assert.equal((await scrape(REJECTED)) - before, 1);
      assert.equal(ofContainer(es, id).length, 2);
      // The README's place for it: the container's store, readable by root only.
      const file = path.join(DATA_DIR, 'containers', id, 'dead-letters', 'elasticsearch.jsonl');
      const letters = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
      assert.deepEqual(letters.map((l) => [l.line, l.stream, l.backend, l.code]), [[`poison-${marker}`, 'stdout', 'elasticsearch', 'invalid']]);
      assert.match(letters[0]!.reason!, /^400 /);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    } finally {
      es.conflictWhen(null);
    }
  });

  test('a bad option fails docker run, naming it and what it accepts, never quoting a credential', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'elasticsearch-index': 'Logs-YYYY' }, /log opt 'elasticsearch-index': index names are lower case/],
      [{ 'elasticsearch-flavor': 'solr' }, /invalid value 'solr' for log opt 'elasticsearch-flavor': expected elasticsearch or opensearch/],
      [{ 'elasticsearch-url': 'tcp://es:9200' }, /log opt 'elasticsearch-url': unsupported scheme 'tcp'; expected a comma list of http\(s\)/],
      [{ 'elasticsearch-url': 'http://elastic:hunter2@es:9200' }, /log opt 'elasticsearch-url' must not carry credentials/],
      [{ 'elasticsearch-index': 'a', 'elasticsearch-data-stream': 'b' }, /'elasticsearch-index' and 'elasticsearch-data-stream' cannot be given together/],
    ];
    for (const [opts, message] of cases) {
      const container = await createContainer({ cmd: sh('echo never'), driver: PLUGIN, opts: esOpts(opts) });
      let error = '';
      try {
        await container.start();
      } catch (err) {
        error = String((err as { json?: { message?: string } }).json?.message ?? (err as Error).message);
      }
      assert.match(error, message, JSON.stringify(opts));
      assert.ok(!error.includes('hunter2'), error);
      assert.equal((await container.inspect()).State.Status, 'created', 'the container did not run');
    }
  });
});
