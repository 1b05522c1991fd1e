// Issue 17's controls through the real engine and plugin, the cases at once: a filter drops
// exactly the health checks, counted as filtered; a container whose env holds DB_PASSWORD and
// prints it ships the line masked to three backends of three transports (fluentd's forward
// protocol, syslog over TCP to Debian's rsyslog, elasticsearch's bulk API over HTTP) while
// `docker logs` shows it as printed (and masked with redact-local); a container over its rate
// ships every line in order in wait mode, and in drop mode ships the burst and counts each
// line it did not ship as rate_limited. The counts are the plugin's own /metrics.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { readLogs } from './lib/logs.ts';
import { changePluginSettings, metricValue } from './lib/plugin.ts';
import { ElasticsearchEndpoint } from '../integration/lib/elasticsearch-endpoint.ts';
import { FluentReceiver, Rsyslog, SYSLOG_PORT, makeTlsMaterial, scratchDir, waitUntil } from '../integration/lib/servers.ts';

const PORT = 24470;
const ES_PORT = 19253;
const METRICS_ADDRESS = '127.0.0.1:19292';
let fluent: FluentReceiver;
let rsyslog: Rsyslog;
let es: ElasticsearchEndpoint;
let dir: string;
let restoreSettings: (() => Promise<void>) | undefined;
const opts = { backend: 'fluentd', 'fluentd-address': `127.0.0.1:${PORT}` };
const shipped = (id: string) => fluent.received.filter((e) => String(e.record.container_id) === id).map((e) => String(e.record.log));
const dropped = (reason: string) => metricValue(METRICS_ADDRESS, `logship_backend_lines_dropped_total{backend="fluentd",reason="${reason}"}`);
/** The counts before this file's containers: the plugin may have run other files' first. */
const before0: Record<string, number> = {};

before(async () => {
  dir = scratchDir('operators-e2e');
  rsyslog = new Rsyslog(path.join(dir, 'rsyslog'), makeTlsMaterial(path.join(dir, 'tls')));
  await rsyslog.start();
  es = new ElasticsearchEndpoint({ mode: 'elasticsearch', port: ES_PORT });
  await es.listen();
  fluent = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: PORT } });
  await fluent.listen();
  restoreSettings = await changePluginSettings({ METRICS_ADDRESS });
  for (const reason of ['filtered', 'rate_limited']) before0[reason] = await dropped(reason);
});
after(async () => {
  await removeContainers();
  try {
    await restoreSettings?.();
  } finally {
    await fluent?.close();
    await es?.close();
    await rsyslog?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(es.violations, [], 'the Elasticsearch endpoint saw requests no server would take');
});

describe('filters, redaction and rate limits on the real engine', { concurrency: true }, () => {
  test('drop-pattern ships all but the health checks, counted as filtered', async () => {
    const script = Array.from({ length: 50 }, (_, i) => `echo '${i % 5 === 0 ? 'GET /health 200' : `request ${i}`}'`).join('\n');
    const c = await createContainer({ cmd: sh(script), driver: PLUGIN, opts: { ...opts, 'drop-pattern': '^GET /health' } });
    await c.start();
    assert.equal(await waitExit(c), 0);
    const expected = Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 5 !== 0).map((i) => `request ${i}`);
    await waitUntil(() => shipped(c.id).length >= expected.length, 'the shipped lines', 30_000);
    assert.deepEqual(shipped(c.id), expected);
    await waitUntil(async () => (await dropped('filtered')) - before0.filtered! >= 10, 'the filtered count', 10_000);
    assert.equal((await dropped('filtered')) - before0.filtered!, 10, 'the ten health checks, and nothing else, counted as filtered');
    assert.equal(String((await readLogs(c.id)).stdout).split('\n').filter((l) => l === 'GET /health 200').length, 10, 'docker logs keeps them');
  });

  test('redact-env masks DB_PASSWORD in what ships to fluentd, syslog and elasticsearch; docker logs shows it as printed, or masked with redact-local', async () => {
    const env = ['DB_PASSWORD=pa55-w0rd-e2e'];
    const all = {
      backend: 'fluentd,syslog,elasticsearch',
      'fluentd-address': `127.0.0.1:${PORT}`,
      'syslog-address': `tcp://127.0.0.1:${SYSLOG_PORT}`,
      'syslog-format': 'rfc5424',
      'elasticsearch-url': `http://127.0.0.1:${ES_PORT}`,
      'redact-env': 'DB_PASSWORD',
    };
    const script = (name: string) => `echo "${name} connecting with $DB_PASSWORD"\necho "${name} done"`;
    const plain = await createContainer({ cmd: sh(script('plain')), driver: PLUGIN, env, opts: all });
    const local = await createContainer({ cmd: sh(script('local')), driver: PLUGIN, env, opts: { ...all, 'redact-local': 'true' } });
    await Promise.all([plain.start(), local.start()]);
    assert.deepEqual(await Promise.all([waitExit(plain), waitExit(local)]), [0, 0]);
    for (const [name, c] of [['plain', plain], ['local', local]] as const) {
      const masked = [`${name} connecting with ***`, `${name} done`];
      await waitUntil(() => shipped(c.id).length >= 2, 'the lines shipped to fluentd', 30_000);
      assert.deepEqual(shipped(c.id), masked, 'fluentd');
      const syslog = await rsyslog.waitFor(`${name} `, 2, 30_000);
      assert.deepEqual(syslog.map((m) => m.msg.trim()), masked, 'syslog');
      const docs = await waitUntil(() => {
        const found = es.stored.filter((d) => String(d.source.message).startsWith(`${name} `));
        return found.length >= 2 && found;
      }, 'the documents in elasticsearch', 30_000);
      assert.deepEqual(docs.map((d) => d.source.message), masked, 'elasticsearch');
    }
    for (const raw of [...rsyslog.rawLines(), ...es.stored.map((d) => JSON.stringify(d.source))]) assert.ok(!raw.includes('pa55-w0rd-e2e'), raw);
    assert.equal(String((await readLogs(plain.id)).stdout), 'plain connecting with pa55-w0rd-e2e\nplain done\n');
    assert.equal(String((await readLogs(local.id)).stdout), 'local connecting with ***\nlocal done\n');
    const short = await createContainer({ cmd: sh('echo x'), driver: PLUGIN, env: ['DB_PASSWORD=1234'], opts: { ...opts, 'redact-env': 'DB_PASSWORD' } });
    await assert.rejects(short.start(), /redact-env.*DB_PASSWORD is shorter than 6 characters: masking it would also mask it inside unrelated words/);
  });

  test('a container over its rate ships every line in order (wait mode)', async () => {
    const c = await createContainer({ cmd: sh('seq 1 300'), driver: PLUGIN, opts: { ...opts, 'rate-limit-lines': '100', 'rate-limit-burst': '500ms' } });
    await c.start();
    assert.equal(await waitExit(c), 0, 'the container is not slowed: it exits while lines wait');
    await waitUntil(() => shipped(c.id).length >= 300, 'the shipped lines', 30_000);
    assert.deepEqual(shipped(c.id), Array.from({ length: 300 }, (_, i) => String(i + 1)));
    assert.equal(String((await readLogs(c.id)).stdout), Array.from({ length: 300 }, (_, i) => `${i + 1}\n`).join(''));
  });

  test('drop mode ships the burst, in order, and counts every other line as rate_limited', async () => {
    // 1,000 lines at once against 50 lines/s with a 1 s burst: the bucket holds 50, and the
    // shipper reads the rest far sooner than the 19 s the rate would take to let them all by.
    const c = await createContainer({ cmd: sh('seq 1 1000'), driver: PLUGIN, opts: { ...opts, 'rate-limit-lines': '50', 'rate-limit-mode': 'drop' } });
    await c.start();
    assert.equal(await waitExit(c), 0);
    const limited = async () => (await dropped('rate_limited')) - before0.rate_limited!;
    await waitUntil(async () => shipped(c.id).length + (await limited()) >= 1000, 'every line shipped or counted', 30_000);
    const lines = shipped(c.id).map(Number);
    assert.equal(lines.length + (await limited()), 1000, 'each line either shipped or counted, once');
    assert.deepEqual(lines.slice(0, 50), Array.from({ length: 50 }, (_, i) => i + 1), 'the full bucket: the first 50');
    assert.ok(lines.length < 1000, `some lines dropped (${lines.length} shipped)`);
    assert.ok(lines.every((n, i) => i === 0 || n > lines[i - 1]!), 'what ships is in order');
    assert.equal(String((await readLogs(c.id)).stdout), Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join(''), 'docker logs keeps every line');
  });
});
