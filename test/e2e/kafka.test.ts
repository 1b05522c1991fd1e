// kafka through the real engine to librdkafka's mock cluster (kcat) behind the test's proxy,
// read back with `kcat -C -f`: a container's lines as records with their key and headers; a
// container started while no broker is reachable starts normally; the plugin killed while
// 100,000 lines are shipped loses nothing; TLS with SCRAM-SHA-512 credentials set as plugin
// settings, as operators do. (The broker outage, too-large records, acks, and each SASL and TLS
// case are covered against the same cluster in test/integration/kafka.test.ts.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { DATA_DIR, PLUGIN } from './lib/docker-client.ts';
import { changePluginSettings, killPlugin } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES, PACED, checkSequence } from './lib/sequence.ts';
import { type ConsumedRecord, KafkaMock } from '../integration/lib/kafka-mock.ts';
import { makeTlsMaterial, scratchDir, waitUntil } from '../integration/lib/servers.ts';

const dir = scratchDir('e2e-kafka');
const mock = new KafkaMock(path.join(dir, 'mock'));
const TOPIC = 'e2e-logs';
/** Where the plugin finds the test CA: its data directory, /var/lib/logship inside it. */
const TLS_FOLDER = 'e2e-kafka-tls';

before(() => mock.start());

after(async () => {
  await removeContainers();
  await mock.stop();
});

const recordsOf = async (id: string): Promise<ConsumedRecord[]> => (await mock.consume(TOPIC).catch(() => [])).filter((r) => r.headers.container_id === id);

describe('kafka through the engine', () => {
  test("a container's lines: the fluentd fields, keyed by its id, with its headers, in order", async () => {
    const container = await createContainer({
      cmd: sh('echo out-line; echo err-line >&2; echo "<b>&amp</b>"'),
      driver: PLUGIN,
      opts: { backend: 'kafka', 'kafka-brokers': mock.bootstrap, 'kafka-topic': TOPIC, labels: 'logship-e2e' },
    });
    await container.start();
    assert.equal(await waitExit(container, 60_000), 0);
    const { Name } = await container.inspect();
    const records = await waitUntil(async () => {
      const got = await recordsOf(container.id);
      return got.length >= 3 && got;
    }, '3 records', 30_000);
    assert.equal(new Set(records.map((r) => r.partition)).size, 1);
    const label = (await container.inspect()).Config.Labels['logship-e2e'] ?? '';
    // stdout and stderr are two streams: their relative order is the daemon's.
    const bySource = (s: string) => records.filter((r) => r.headers.source === s).map((r) => JSON.parse(r.value) as Record<string, string>);
    assert.deepEqual(bySource('stdout').map((v) => v.log), ['out-line', '<b>&amp</b>']);
    assert.deepEqual(bySource('stderr').map((v) => v.log), ['err-line']);
    for (const r of records) {
      assert.equal(r.key, container.id);
      assert.deepEqual(r.headers, { container_id: container.id, container_name: Name.slice(1), 'logship-e2e': label, source: r.headers.source });
      assert.deepEqual(JSON.parse(r.value), { source: r.headers.source, log: (JSON.parse(r.value) as { log: string }).log, container_id: container.id, container_name: Name, 'logship-e2e': label });
    }
  });

  test('a container started while no broker is reachable starts and exits normally', async () => {
    const container = await createContainer({ cmd: sh('echo started'), driver: PLUGIN, opts: { backend: 'kafka', 'kafka-brokers': '127.0.0.1:1', 'kafka-topic': TOPIC } });
    await container.start();
    assert.equal(await waitExit(container, 30_000), 0);
  });

  test(`the plugin killed (SIGKILL) while ${LINES} lines are printed and shipped loses nothing`, async (t: TestContext) => {
    const container = await createContainer({ cmd: PACED, driver: PLUGIN, opts: { backend: 'kafka', 'kafka-brokers': mock.bootstrap, 'kafka-topic': TOPIC, 'kafka-format': 'raw' } });
    await container.start();
    const exited = waitExit(container, 120_000);
    await waitUntil(async () => (await recordsOf(container.id)).length > 0, 'the first records', 30_000);
    const atKill = (await recordsOf(container.id)).length;
    const { how } = await killPlugin();
    assert.ok(atKill < LINES, `all ${LINES} lines had arrived before the kill`);
    assert.equal(await exited, 0);
    let got: ConsumedRecord[] = [];
    const records = await waitUntil(async () => {
      got = await recordsOf(container.id);
      return new Set(got.map((r) => r.value)).size >= LINES && got;
    }, `${LINES} records`, 90_000).catch((err: Error) => {
      const values = new Set(got.map((r) => Number(r.value)));
      const missing = Array.from({ length: LINES }, (_, i) => i + 1).filter((n) => !values.has(n));
      throw new Error(
        `${err.message}: ${got.length} records, ${values.size} distinct, offsets ${got[0]?.offset}..${got.at(-1)?.offset}, ` +
          `${missing.length} missing (first ${missing.slice(0, 3).join(', ')}, last ${missing.at(-1)})`,
      );
    });
    assert.equal(new Set(records.map((r) => r.partition)).size, 1);
    const { duplicates } = checkSequence(records.map((r) => r.value));
    t.diagnostic(`killed with ${atKill} of ${LINES} lines delivered, ${how}; all arrived, in order, ${duplicates} duplicates`);
  });

  test('over TLS with SCRAM-SHA-512 credentials as plugin settings: every line consumed back, every connection authenticated', async () => {
    const material = makeTlsMaterial(path.join(dir, 'tls'));
    fs.mkdirSync(path.join(DATA_DIR, TLS_FOLDER), { recursive: true });
    fs.copyFileSync(material.ca, path.join(DATA_DIR, TLS_FOLDER, 'ca.pem'));
    await mock.proxy.useTls(material);
    const password = 'e2e-scram-secret';
    mock.proxy.sasl = { username: 'logship-e2e', password, mechanisms: ['SCRAM-SHA-512'] };
    let restore: (() => Promise<void>) | undefined;
    try {
      restore = await changePluginSettings({ KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'logship-e2e', KAFKA_SASL_PASSWORD: password });
      const connections = mock.proxy.connections;
      const logins = mock.proxy.saslLogins.length;
      const count = 2000;
      const container = await createContainer({
        cmd: sh(`seq 1 ${count}`),
        driver: PLUGIN,
        opts: { backend: 'kafka', 'kafka-brokers': mock.bootstrap, 'kafka-topic': TOPIC, 'kafka-format': 'raw', 'kafka-tls': 'true', 'kafka-tls-ca-cert': `/var/lib/logship/${TLS_FOLDER}/ca.pem` },
      });
      await container.start();
      assert.equal(await waitExit(container, 60_000), 0);
      const records = await waitUntil(async () => {
        const got = await recordsOf(container.id);
        return got.length >= count && got;
      }, `${count} records`, 60_000);
      assert.deepEqual(records.map((r) => r.value), Array.from({ length: count }, (_, i) => String(i + 1)));
      const made = mock.proxy.connections - connections;
      assert.ok(made >= 1, 'over the TLS listeners');
      assert.deepEqual(mock.proxy.saslLogins.slice(logins), Array.from({ length: made }, () => ({ username: 'logship-e2e', mechanism: 'SCRAM-SHA-512' })), 'every connection authenticated');
      assert.equal(mock.proxy.saslFailures, 0);
    } finally {
      // The plugin settings the other tests (and files) expect: none.
      await restore?.();
      mock.proxy.sasl = null;
      await mock.proxy.useTls(null);
      fs.rmSync(path.join(DATA_DIR, TLS_FOLDER), { recursive: true, force: true });
    }
  });
});
