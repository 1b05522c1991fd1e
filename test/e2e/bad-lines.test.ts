// A bad line never stops a backend, through the real engine and plugin (issue 11): a line of
// JSON nested deeper than the encoders take, with parse-json, to fluentd (finding 2: its
// msgpack encoder threw and the batch was retried forever), and a 300 KB line to syslog over
// unix datagrams, Docker's default transport (finding 3: EMSGSIZE at every retry, the
// datagrams before it sent again each time). The lines after each arrive, in order, once;
// the bad line ships as plain text or cut to a datagram, as the README says, counted in
// /metrics.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DATA_DIR, PLUGIN } from './lib/docker-client.ts';
import { changePluginSettings, metricValue } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { FluentReceiver, Rsyslog, makeTlsMaterial, scratchDir, waitUntil } from '../integration/lib/servers.ts';

const FLUENTD_PORT = 24354;
const METRICS_ADDRESS = '127.0.0.1:19291';
/** Under the data folder: the plugin reaches rsyslog's datagram socket through its data mount. */
const RSYSLOG_DIR = 'bad-lines-e2e-rsyslog';
const DATA_IN_PLUGIN = '/var/lib/logship';
const LINES = 2000;

let dir: string;
let fluent: FluentReceiver;
let rsyslog: Rsyslog;
let restoreSettings: (() => Promise<void>) | undefined;

before(async () => {
  dir = scratchDir('bad-lines-e2e');
  fluent = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: FLUENTD_PORT } });
  await fluent.listen();
  rsyslog = new Rsyslog(path.join(DATA_DIR, RSYSLOG_DIR), makeTlsMaterial(path.join(dir, 'tls')));
  await rsyslog.start();
  // Enabled again with it: the counters start from zero.
  restoreSettings = await changePluginSettings({ METRICS_ADDRESS });
});

after(async () => {
  await removeContainers();
  try {
    await restoreSettings?.();
  } finally {
    await fluent?.close();
    await rsyslog?.stop();
    fs.rmSync(path.join(DATA_DIR, RSYSLOG_DIR), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

const series = (name: string): Promise<number> => metricValue(METRICS_ADDRESS, name);

/** Prints 1..LINES with `bad` (a shell command printing one line) after line LINES/2. */
async function run(bad: string, opts: Record<string, string>): Promise<string> {
  const half = LINES / 2;
  const container = await createContainer({ cmd: sh(`seq 1 ${half}; ${bad}; seq ${half + 1} ${LINES}`), driver: PLUGIN, opts });
  await container.start();
  assert.equal(await waitExit(container, 120_000), 0);
  return container.id;
}

const numbers = (): string[] => Array.from({ length: LINES }, (_, i) => String(i + 1));

describe('a bad line does not stop the lines after it', () => {
  test('parse-json to fluentd: a line nested 200 deep ships as plain text, counted; every other line arrives, in order, once', async () => {
    const deep = '{"a":'.repeat(200) + '1' + '}'.repeat(200);
    const id = await run(`awk 'BEGIN { for (i = 0; i < 200; i++) printf "{\\"a\\":"; printf "1"; for (i = 0; i < 200; i++) printf "}"; print "" }'`, {
      backend: 'fluentd',
      'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`,
      'fluentd-request-ack': 'true',
      'parse-json': 'true',
    });
    const tag = id.slice(0, 12);
    const logs = await waitUntil(() => {
      const found = fluent.received.filter((e) => e.tag === tag).map((e) => String(e.record.log));
      return found.length >= LINES + 1 ? found : undefined;
    }, `${LINES + 1} records`, 60_000);
    assert.deepEqual(logs.filter((l) => l !== deep), numbers());
    assert.equal(logs.indexOf(deep), LINES / 2, 'the deep line in its place, as text');
    const record = fluent.received.find((e) => e.tag === tag && e.record.log === deep)!.record;
    assert.equal(record.a, undefined, 'without its fields');
    assert.equal(await series('logship_backend_json_too_deep_total{backend="fluentd"}'), 1);
  });

  test('syslog over unixgram: a 300 KB line is cut to one datagram, counted; every other line arrives, in order, once', async () => {
    const id = await run(`head -c 300000 /dev/zero | tr '\\0' x; echo`, {
      backend: 'syslog',
      'syslog-address': `unixgram://${DATA_IN_PLUGIN}/${RSYSLOG_DIR}/dgram.sock`,
    });
    const tag = id.slice(0, 12);
    const messages = await waitUntil(() => {
      const found = rsyslog.parsed().filter((m) => m.programname === tag).map((m) => m.msg.trim());
      return found.length >= LINES + 1 ? found : undefined;
    }, `${LINES + 1} syslog messages`, 60_000);
    const cut = messages.filter((m) => m.startsWith('x'));
    assert.equal(cut.length, 1);
    assert.ok(cut[0]!.length > 60_000 && cut[0]!.length < 65_507, `${cut[0]!.length} bytes`);
    assert.equal(messages.indexOf(cut[0]!), LINES / 2, 'the cut line in its place');
    assert.deepEqual(messages.filter((m) => !m.startsWith('x')), numbers());
    assert.equal(await series('logship_backend_lines_truncated_total{backend="syslog"}'), 1);
    assert.equal(await series('logship_backend_lines_rejected_total{backend="syslog",reason="too_large"}'), 0);
  });
});
