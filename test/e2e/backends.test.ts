// The backends through the real engine: containers run with `--log-driver <plugin> --log-opt
// backend=...` ship to a real rsyslog, a forward-protocol server and systemd-journald (its own
// namespace, mounted into the plugin as its journal directory). For each: the fields arrive;
// the receiver is down for 10 s while a container prints 100,000 lines, and every line still
// arrives, in order, without the container waiting; a plugin killed mid-shipping loses nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import { DATA_DIR, PLUGIN } from './lib/docker-client.ts';
import { type PluginJournald, killPlugin, startPluginJournald } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES, PACED, checkSequence } from './lib/sequence.ts';
import {
  FLUENTD_PORT,
  FluentReceiver,
  Journald,
  Rsyslog,
  SYSLOG_PORT,
  SYSLOG_TLS_PORT,
  makeTlsMaterial,
  scratchDir,
  waitUntil,
} from '../integration/lib/servers.ts';

const JOURNAL_NAMESPACE = 'logship-bk-e2e';
const RSYSLOG_DIR = 'bk-e2e-rsyslog';
/** The data folder as the plugin sees it (config.json's `data` mount). */
const DATA_IN_PLUGIN = '/var/lib/logship';

let dir: string;
let rsyslog: Rsyslog;
let fluent: FluentReceiver | null = null;
let journald: Journald;
let pluginJournald: PluginJournald | undefined;
/** The CA as the plugin sees it: under its data mount. */
let caInPlugin: string;

async function startFluent(): Promise<FluentReceiver> {
  const receiver = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: FLUENTD_PORT } });
  await receiver.listen();
  return receiver;
}

before(async () => {
  dir = scratchDir('e2e');
  const tls = makeTlsMaterial(path.join(dir, 'tls'));
  const caDir = path.join(DATA_DIR, 'bk-e2e-tls');
  fs.mkdirSync(caDir, { recursive: true });
  fs.copyFileSync(tls.ca, path.join(caDir, 'ca.pem'));
  caInPlugin = `${DATA_IN_PLUGIN}/bk-e2e-tls/ca.pem`;
  // Under the data folder: the plugin reaches rsyslog's unix sockets through its data mount.
  rsyslog = new Rsyslog(path.join(DATA_DIR, RSYSLOG_DIR), tls);
  await rsyslog.start();
  fluent = await startFluent();
  pluginJournald = await startPluginJournald(JOURNAL_NAMESPACE, path.join(dir, 'journald.out'));
  journald = pluginJournald.journald;
});

after(async () => {
  await removeContainers();
  try {
    await pluginJournald?.stop();
  } finally {
    await rsyslog?.stop();
    await fluent?.close();
    fs.rmSync(path.join(DATA_DIR, 'bk-e2e-tls'), { recursive: true, force: true });
    fs.rmSync(path.join(DATA_DIR, RSYSLOG_DIR), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function runContainer(cmd: string[], opts: Record<string, string>): Promise<{ id: string; tag: string; ms: number }> {
  const container = await createContainer({ cmd, driver: PLUGIN, opts });
  const started = Date.now();
  await container.start();
  assert.equal(await waitExit(container, 120_000), 0);
  return { id: container.id, tag: container.id.slice(0, 12), ms: Date.now() - started };
}

interface Receiver {
  name: string;
  opts: Record<string, string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The lines of a container (tagged by its short id), in arrival order. */
  lines(tag: string, id: string): string[];
}

const receivers: Receiver[] = [
  {
    name: 'syslog (tcp+tls, rfc5424)',
    opts: {
      backend: 'syslog',
      'syslog-address': `tcp+tls://localhost:${SYSLOG_TLS_PORT}`,
      'syslog-format': 'rfc5424',
      'syslog-tls-ca-cert': '', // set in before(), once the CA exists
    },
    stop: () => rsyslog.stop(),
    start: () => rsyslog.start(),
    // `<PRI>1 TIME HOST TAG PID TAG - MSG`
    lines: (tag) =>
      rsyslog
        .rawLines()
        .map((raw) => raw.split(' '))
        .filter((fields) => fields[3] === tag)
        .map((fields) => fields.slice(7).join(' ')),
  },
  {
    name: 'fluentd (tcp, request-ack)',
    opts: { backend: 'fluentd', 'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`, 'fluentd-request-ack': 'true', 'fluentd-retry-wait': '500ms' },
    stop: async () => {
      await fluent?.close();
      drainFluent();
      fluent = null;
    },
    start: async () => {
      fluent = await startFluent();
    },
    lines: (tag) => (fluent ? receivedBy(tag) : []),
  },
  {
    name: 'journald',
    opts: { backend: 'journald' },
    stop: () => journald.stop(),
    start: () => journald.start(),
    lines: (_tag, id) => journald.messages(`CONTAINER_ID_FULL=${id}`),
  },
];

// Everything the forward server received, across its restarts.
const fluentLog: { tag: string; record: Record<string, string> }[] = [];
function drainFluent(): void {
  if (fluent) for (const entry of fluent.received.splice(0)) fluentLog.push({ tag: entry.tag, record: entry.record });
}
function fluentRecords(tag: string): Record<string, string>[] {
  drainFluent();
  return fluentLog.filter((e) => e.tag === tag).map((e) => e.record);
}
function receivedBy(tag: string): string[] {
  return fluentRecords(tag).map((r) => r.log!);
}

async function waitForAll(receiver: Receiver, tag: string, id: string, timeoutMs = 90_000): Promise<string[]> {
  let lines: string[] = [];
  try {
    return await waitUntil(
      () => {
        lines = receiver.lines(tag, id);
        return new Set(lines).size >= LINES ? lines : undefined;
      },
      `${LINES} lines at ${receiver.name}`,
      timeoutMs,
    );
  } catch (err) {
    const distinct = new Set(lines.map(Number));
    let missing = 1;
    while (distinct.has(missing)) missing++;
    throw new Error(`${(err as Error).message}: ${lines.length} arrived, ${distinct.size} distinct, first missing ${missing}, last '${lines.at(-1)}'`);
  }
}

describe('backends through the engine', () => {
  before(() => {
    receivers[0]!.opts['syslog-tls-ca-cert'] = caInPlugin;
  });

  test('syslog over tcp, rfc5424: the fields arrive', async () => {
    const { tag } = await runContainer(sh('echo out-line; echo err-line >&2'), {
      backend: 'syslog',
      'syslog-address': `tcp://127.0.0.1:${SYSLOG_PORT}`,
      'syslog-format': 'rfc5424micro',
      'syslog-facility': 'local3',
    });
    const messages = await waitUntil(() => {
      const found = rsyslog.parsed().filter((m) => m['app-name'] === tag);
      return found.length >= 2 ? found : undefined;
    }, 'both syslog messages');
    const out = messages.find((m) => m.msg.trim() === 'out-line');
    const err = messages.find((m) => m.msg.trim() === 'err-line');
    assert.ok(out && err, JSON.stringify(messages));
    assert.equal(out.msgid, tag);
    assert.equal(out.syslogfacility, '19');
    assert.equal(out.syslogseverity, '6');
    assert.equal(err.syslogseverity, '3');
  });

  test('syslog: every transport and format, each from its own container', async () => {
    const transports: Record<string, Record<string, string>> = {
      udp: { 'syslog-address': `udp://127.0.0.1:${SYSLOG_PORT}` },
      tcp: { 'syslog-address': `tcp://127.0.0.1:${SYSLOG_PORT}` },
      'tcp+tls': { 'syslog-address': `tcp+tls://localhost:${SYSLOG_TLS_PORT}`, 'syslog-tls-ca-cert': caInPlugin },
      unix: { 'syslog-address': `unix://${DATA_IN_PLUGIN}/${RSYSLOG_DIR}/stream.sock` },
      unixgram: { 'syslog-address': `unixgram://${DATA_IN_PLUGIN}/${RSYSLOG_DIR}/dgram.sock` },
    };
    const cases = Object.entries(transports).flatMap(([transport, address]) =>
      ['', 'rfc3164', 'rfc5424', 'rfc5424micro'].map((format) => ({ transport, format, address })),
    );
    await Promise.all(
      cases.map(async ({ transport, format, address }) => {
        const marker = `bk-e2e-${transport}-${format || 'default'}=`; // '=': no marker is a prefix of another
        const { tag } = await runContainer(sh(`echo ${marker} out; echo ${marker} err >&2`), {
          backend: 'syslog',
          ...address,
          'syslog-format': format,
          'syslog-facility': 'daemon',
        });
        const messages = await rsyslog.waitFor(marker, 2, 30_000);
        const out = messages.find((m) => m.msg.trim() === `${marker} out`);
        const err = messages.find((m) => m.msg.trim() === `${marker} err`);
        assert.ok(out && err, `${marker}: ${JSON.stringify(messages)}`);
        assert.equal(out.syslogfacility, '3', marker);
        assert.equal(out.syslogseverity, '6', marker);
        assert.equal(err.syslogseverity, '3', marker);
        assert.equal(out.programname, tag, marker);
        if (format.startsWith('rfc5424')) assert.equal(out.msgid, tag, marker);
      }),
    );
  });

  test('fluentd: the record Docker sends arrives, with attributes', async () => {
    const { id } = await runContainer(sh('echo out-line; echo err-line >&2'), {
      backend: 'fluentd',
      'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`,
      'fluentd-request-ack': 'true',
      tag: 'docker.{{.ID}}',
      labels: 'logship-e2e',
    });
    const tag = `docker.${id.slice(0, 12)}`;
    const records = await waitUntil(() => {
      const found = fluentRecords(tag);
      return found.length >= 2 ? found : undefined;
    }, 'both fluentd records');
    const out = records.find((r) => r.log === 'out-line');
    assert.ok(out && records.some((r) => r.log === 'err-line' && r.source === 'stderr'));
    assert.equal(out.source, 'stdout');
    assert.equal(out.container_id, id);
    assert.match(out.container_name!, /^\/./);
    assert.equal(out['logship-e2e'], 'true');
  });

  test('journald: the fields arrive', async () => {
    const { id } = await runContainer(sh('echo out-line; echo err-line >&2'), { backend: 'journald', labels: 'logship-e2e' });
    const entries = await waitUntil(() => {
      const found = journald.entries(`CONTAINER_ID_FULL=${id}`);
      return found.length >= 2 ? found : undefined;
    }, 'both journal entries');
    const out = entries.find((e) => e.MESSAGE === 'out-line');
    const err = entries.find((e) => e.MESSAGE === 'err-line');
    assert.ok(out && err);
    assert.equal(out.PRIORITY, '6');
    assert.equal(err.PRIORITY, '3');
    assert.equal(out.CONTAINER_ID, id.slice(0, 12));
    assert.equal(out.CONTAINER_TAG, id.slice(0, 12));
    assert.equal(out.SYSLOG_IDENTIFIER, id.slice(0, 12));
    assert.equal(out.LOGSHIP_E2E, 'true');
    assert.equal(typeof out.CONTAINER_NAME, 'string');
  });

  for (const receiver of receivers) {
    test(`${receiver.name}: down for 10 s while a container prints ${LINES} lines; every line arrives, in order`, async (t: TestContext) => {
      const container = await createContainer({ cmd: PACED, driver: PLUGIN, opts: receiver.opts });
      const started = Date.now();
      await container.start();
      await sleep(1500);
      await receiver.stop();
      const downAt = Date.now();
      const exited = waitExit(container, 120_000).then((code) => ({ code, ms: Date.now() - started }));
      await sleep(10_000);
      await receiver.start();
      const downMs = Date.now() - downAt;
      const { code, ms } = await exited;
      assert.equal(code, 0);
      const tag = container.id.slice(0, 12);
      const lines = await waitForAll(receiver, tag, container.id);
      const { duplicates } = checkSequence(lines);
      t.diagnostic(
        `${receiver.name}: receiver down ${downMs} ms; container ran ${ms} ms (10 s of it sleeps); ` +
          `all ${LINES} lines in order, ${duplicates} duplicates, complete ${Date.now() - started} ms after the start`,
      );
    });
  }

  for (const receiver of receivers) {
    test(`${receiver.name}: a plugin killed (SIGKILL) mid-shipping loses nothing`, async (t: TestContext) => {
      const { tag, id } = await runContainer(sh(`seq 1 ${LINES}`), receiver.opts);
      const arrived = await waitUntil(() => {
        const n = receiver.lines(tag, id).length;
        return n > 0 ? n : undefined;
      }, 'the first lines', 30_000);
      const { how } = await killPlugin();
      const lines = await waitForAll(receiver, tag, id);
      // rsyslog handles each connection on its own thread: what the killed plugin's connection
      // still carried may be written after the first lines of the new one.
      const { duplicates, reordered } = checkSequence(lines, !receiver.name.startsWith('syslog'));
      t.diagnostic(
        `${receiver.name}: killed with ${arrived} of ${LINES} lines delivered, ${how}; all arrived, ` +
          `${duplicates} duplicates, ${reordered} written by the receiver after a later line`,
      );
    });
  }
});
