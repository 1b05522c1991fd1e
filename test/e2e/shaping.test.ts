// Multiline events and JSON logs through the real engine and plugin: containers print Java,
// Python and Go traces between ordinary lines (with `multiline-preset`, and one with
// `multiline-pattern`), or JSON lines with `parse-json=true`, shipping to every backend at
// once (one container, `backend=` all of RECEIVERS): rsyslog over tls, a forward server,
// journald, and the test endpoints of CloudWatch Logs, Cloud Logging and Elasticsearch. Each
// trace arrives as ONE event with the exact text, the ordinary lines as their own, JSON lines
// as fields; and `docker logs` of the same container is byte-identical to json-file's.
// awslogs' own awslogs-datetime-format goes through the same stage, with Docker's framing.
//
// To cover another backend, add a receiver to RECEIVERS: its options, how to read a
// container's events back, and how it presents a JSON line's fields.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { assertSameLogs, runPair } from './lib/compare.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { DATA_DIR, PLUGIN } from './lib/docker-client.ts';
import { type PluginJournald, changePluginSettings, startPluginJournald } from './lib/plugin.ts';
import { CloudLoggingEndpoint } from '../integration/lib/cloud-logging-endpoint.ts';
import { CloudWatchEndpoint } from '../integration/lib/cloudwatch-endpoint.ts';
import { ElasticsearchEndpoint } from '../integration/lib/elasticsearch-endpoint.ts';
import { FluentReceiver, type Journald, Rsyslog, SYSLOG_TLS_PORT, makeTlsMaterial, scratchDir, waitUntil } from '../integration/lib/servers.ts';

const FLUENTD_PORT = 24400;
const CLOUDWATCH_PORT = 14570;
const CLOUD_LOGGING_PORT = 15030;
const ELASTICSEARCH_PORT = 19230;
const JOURNAL_NAMESPACE = 'logship-shaping-e2e';
const CLOUDWATCH_GROUP = 'shaping-e2e';
/** Folders under the data mount, where the plugin reads the syslog CA (rsyslog itself runs from the scratch folder). */
const TLS_FOLDER = 'shaping-e2e-tls';
const AWS_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDSHAPINGE2E', AWS_SECRET_ACCESS_KEY: 'shaping-e2e-secret' };

/**
 * One event as a receiver got it: its stream (null where the backend does not carry it, as
 * CloudWatch's events do not), text, and the fields a JSON line added (null: none).
 */
interface Shipped {
  source: 'stdout' | 'stderr' | null;
  text: string;
  fields: Record<string, unknown> | null;
}

interface Receiver {
  name: string;
  opts: Record<string, string>;
  /** Everything received for the container, in arrival order. */
  events(id: string): Shipped[];
  /** How this backend presents the fields of a JSON line (its own keys win a clash); null: it has none. */
  expectedFields(json: Record<string, unknown>): Record<string, unknown> | null;
  /** The text this backend carries for a JSON line, when not the line itself. */
  jsonText?(line: string): string;
}

let dir: string;
let fluent: FluentReceiver;
let journald: Journald;
let pluginJournald: PluginJournald | undefined;
let rsyslog: Rsyslog;
let cloudWatch: CloudWatchEndpoint;
let cloudLogging: CloudLoggingEndpoint;
let elasticsearch: ElasticsearchEndpoint;
/** Puts the plugin's own settings back (the AWS credentials are set for this file). */
let restoreSettings: (() => Promise<void>) | undefined;

const FLUENTD_OWN_KEYS = ['container_id', 'container_name', 'source', 'log'];
// What logship's journald backend writes itself, and what journald adds (`_*`, `__*`).
const JOURNAL_OWN_FIELDS = /^(?:_.*|MESSAGE|PRIORITY|SYSLOG_TIMESTAMP|SYSLOG_IDENTIFIER|CONTAINER_ID|CONTAINER_ID_FULL|CONTAINER_NAME|CONTAINER_TAG|IMAGE_NAME|CONTAINER_PARTIAL_.*)$/;

/** journalctl's JSON gives a value that is not printable UTF-8 as an array of bytes. */
const journalText = (value: unknown): string => (Array.isArray(value) ? Buffer.from(value as number[]).toString('utf8') : String(value));

const withoutKeys = (json: Record<string, unknown>, own: readonly string[]) => Object.fromEntries(Object.entries(json).filter(([key]) => !own.includes(key)));
const fieldsOrNull = (entries: [string, unknown][]) => (entries.length > 0 ? Object.fromEntries(entries) : null);
const GCPLOGS_OWN_KEYS = ['instance', 'container', 'message'];
const ELASTICSEARCH_OWN_KEYS = ['@timestamp', 'message', 'stream', 'tag', 'container', 'host', 'labels'];

/** A CloudWatch message that is a JSON object: what parse-json made of a JSON line. */
function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const RECEIVERS: Receiver[] = [
  {
    name: 'syslog',
    // rfc5424 over tls is octet-counted, so a message may hold newlines (Docker's framing).
    opts: { 'syslog-address': `tcp+tls://localhost:${SYSLOG_TLS_PORT}`, 'syslog-format': 'rfc5424', 'syslog-tls-ca-cert': `/var/lib/logship/${TLS_FOLDER}/ca.pem` },
    events: (id) =>
      rsyslog
        .parsed()
        .filter((m) => m['app-name'] === id.slice(0, 12))
        // rsyslog shows control characters it received as #ooo (octal); the wire carried the bytes.
        .map((m) => ({ source: m.syslogseverity === '3' ? 'stderr' : 'stdout', text: m.msg.replace(/#(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), fields: null })),
    expectedFields: () => null,
  },
  {
    name: 'fluentd',
    opts: { 'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`, 'fluentd-request-ack': 'true' },
    events: (id) =>
      fluent.received
        .filter((e) => e.record.container_id === id)
        .map(({ record }) => {
          const extra = Object.entries(record).filter(([key]) => !FLUENTD_OWN_KEYS.includes(key));
          return { source: record.source as Shipped['source'], text: String(record.log), fields: extra.length > 0 ? Object.fromEntries(extra) : null };
        }),
    expectedFields: (json) => Object.fromEntries(Object.entries(json).filter(([key]) => !FLUENTD_OWN_KEYS.includes(key))),
  },
  {
    name: 'journald',
    opts: {},
    events: (id) =>
      journald.entries(`CONTAINER_ID_FULL=${id}`).map((entry) => {
        const extra = Object.entries(entry).filter(([key]) => !JOURNAL_OWN_FIELDS.test(key));
        return {
          source: entry.PRIORITY === '3' ? 'stderr' : 'stdout',
          text: journalText(entry.MESSAGE),
          fields: extra.length > 0 ? Object.fromEntries(extra.map(([k, v]) => [k, journalText(v)])) : null,
        };
      }),
    // Upper case, `[A-Z0-9_]`, text values, nested ones as compact JSON; never the driver's own.
    expectedFields: (json) =>
      Object.fromEntries(
        Object.entries(json)
          .map(([key, value]) => [key.toUpperCase().replace(/[^A-Z0-9]/g, '_'), typeof value === 'string' ? value : JSON.stringify(value)] as const)
          .filter(([key]) => !JOURNAL_OWN_FIELDS.test(key)),
      ),
  },
  {
    name: 'awslogs',
    opts: { 'awslogs-region': 'us-east-1', 'awslogs-endpoint': `http://127.0.0.1:${CLOUDWATCH_PORT}`, 'awslogs-group': CLOUDWATCH_GROUP, 'awslogs-create-group': 'true', 'awslogs-force-flush-interval-seconds': '1' },
    // The stream is the full container id (no tag set); an event is the message alone.
    events: (id) => cloudWatch.events(CLOUDWATCH_GROUP, id).map((e) => ({ source: null, text: e.message, fields: e.message.startsWith('{') ? jsonObject(e.message) : null })),
    expectedFields: (json) => json,
    jsonText: (line) => line.trim(),
  },
  {
    name: 'gcplogs',
    opts: { 'gcp-project': 'shaping-e2e', 'gcp-endpoint': `http://127.0.0.1:${CLOUD_LOGGING_PORT}` },
    events: (id) =>
      cloudLogging.written
        .filter((e) => (e.jsonPayload.container as { id?: string } | undefined)?.id === id)
        .map((e) => ({
          source: e.severity === 'ERROR' ? 'stderr' : 'stdout',
          text: String(e.jsonPayload.message),
          fields: fieldsOrNull(Object.entries(e.jsonPayload).filter(([key]) => !GCPLOGS_OWN_KEYS.includes(key))),
        })),
    expectedFields: (json) => withoutKeys(json, GCPLOGS_OWN_KEYS),
  },
  {
    name: 'elasticsearch',
    opts: { 'elasticsearch-url': `http://127.0.0.1:${ELASTICSEARCH_PORT}` },
    events: (id) =>
      elasticsearch.stored
        .filter((d) => (d.source.container as { id?: string } | undefined)?.id === id)
        .map(({ source }) => ({
          source: source.stream as Shipped['source'],
          text: String(source.message),
          fields: fieldsOrNull(Object.entries(source).filter(([key]) => !ELASTICSEARCH_OWN_KEYS.includes(key))),
        })),
    expectedFields: (json) => withoutKeys(json, ELASTICSEARCH_OWN_KEYS),
  },
];

before(async () => {
  dir = scratchDir('shaping-e2e');
  const tls = makeTlsMaterial(path.join(dir, 'tls'));
  fs.mkdirSync(path.join(DATA_DIR, TLS_FOLDER), { recursive: true });
  fs.copyFileSync(tls.ca, path.join(DATA_DIR, TLS_FOLDER, 'ca.pem'));
  rsyslog = new Rsyslog(path.join(dir, 'rsyslog'), tls);
  await rsyslog.start();
  fluent = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: FLUENTD_PORT } });
  await fluent.listen();
  cloudWatch = new CloudWatchEndpoint({ port: CLOUDWATCH_PORT });
  await cloudWatch.start();
  cloudLogging = new CloudLoggingEndpoint(CLOUD_LOGGING_PORT);
  await cloudLogging.start();
  elasticsearch = new ElasticsearchEndpoint({ mode: 'elasticsearch', port: ELASTICSEARCH_PORT });
  await elasticsearch.listen();
  // The credentials are the plugin's settings; the journal mount is switched after them
  // (each change restarts the plugin).
  restoreSettings = await changePluginSettings(AWS_CREDENTIALS);
  pluginJournald = await startPluginJournald(JOURNAL_NAMESPACE, path.join(dir, 'journald.out'));
  journald = pluginJournald.journald;
});

after(async () => {
  await removeContainers();
  try {
    await pluginJournald?.stop();
    await restoreSettings?.();
  } finally {
    await fluent?.close();
    await rsyslog?.stop();
    await cloudWatch?.stop();
    cloudLogging?.stop();
    await elasticsearch?.close();
    for (const [name, violations] of [
      ['CloudWatch', cloudWatch?.violations ?? []],
      ['Cloud Logging', cloudLogging?.violations ?? []],
      ['Elasticsearch', elasticsearch?.violations ?? []],
    ] as const) {
      assert.deepEqual(violations, [], `${name}: requests that break the service's rules`);
    }
    fs.rmSync(path.join(DATA_DIR, TLS_FOLDER), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

const trace = (name: string): string => fs.readFileSync(new URL(`../fixtures/traces/${name}.txt`, import.meta.url), 'utf8').replace(/\n$/, '');

/** Shell that prints `text` exactly (a quoted here-document), to stderr with `toStderr`. */
function print(text: string, toStderr = false): string {
  assert.ok(!text.includes('\nEOF\n'));
  return `cat ${toStderr ? '>&2 ' : ''}<<'EOF'\n${text}\nEOF\n`;
}

const out = (text: string): Omit<Shipped, 'fields'> => ({ source: 'stdout', text });
const err = (text: string): Omit<Shipped, 'fields'> => ({ source: 'stderr', text });

/**
 * Runs `script` under logship (shipping to every receiver, with `opts`) and json-file,
 * checks `docker logs` is the same, and returns each receiver's events once `count` arrived.
 */
async function shipped(script: string, opts: Record<string, string>, count: number): Promise<Map<Receiver, Shipped[]>> {
  const logshipOpts = { backend: RECEIVERS.map((r) => r.name).join(','), ...Object.assign({}, ...RECEIVERS.map((r) => r.opts)), ...opts };
  const pair = await runPair(sh(script), { logshipOpts });
  await assertSameLogs(pair);
  const id = pair.logship.id;
  const got = new Map<Receiver, Shipped[]>();
  for (const receiver of RECEIVERS) {
    await waitUntil(() => receiver.events(id).length >= count, `${count} events at ${receiver.name}`, 30_000);
  }
  await sleep(500); // anything extra (a trace cut into pieces) would arrive by now
  for (const receiver of RECEIVERS) got.set(receiver, receiver.events(id));
  return got;
}

/**
 * Each stream's events, in order (a receiver may interleave the two streams); where the
 * backend does not carry the stream, all events, in any order (CloudWatch sorts by time).
 */
function assertEvents(got: Map<Receiver, Shipped[]>, expected: Omit<Shipped, 'fields'>[]): void {
  for (const [receiver, events] of got) {
    if (events.some((e) => e.source === null)) {
      assert.deepEqual(events.map((e) => e.text).sort(), expected.map((e) => e.text).sort(), receiver.name);
    } else {
      for (const source of ['stdout', 'stderr'] as const) {
        assert.deepEqual(
          events.filter((e) => e.source === source).map((e) => e.text),
          expected.filter((e) => e.source === source).map((e) => e.text),
          `${receiver.name}, ${source}`,
        );
      }
    }
    assert.ok(events.every((e) => e.fields === null), `${receiver.name}: no fields without parse-json`);
  }
}

describe('multiline events and JSON logs through the engine', () => {
  test('multiline-preset=java: each stack trace is one event, the ordinary lines their own', async () => {
    const script = [
      'echo "starting orders"',
      'sleep 0.2',
      print(trace('java-uncaught')),
      'echo "shutting down"',
      'echo "err before" >&2',
      print(trace('java-logback'), true),
      'echo "err after" >&2',
    ].join('\n');
    const expected = [
      out('starting orders'),
      out(trace('java-uncaught')),
      out('shutting down'),
      err('err before'),
      err(trace('java-logback')),
      err('err after'),
    ];
    assertEvents(await shipped(script, { 'multiline-preset': 'java' }, expected.length), expected);
  });

  test('multiline-preset=python: a logged traceback joins its message; an uncaught chained one is one event', async () => {
    const script = [
      'echo "order received"',
      print(trace('python-logging')),
      'echo "next order"',
      'echo "worker started" >&2',
      'sleep 0.2',
      print(trace('python-uncaught'), true),
      'echo "worker restarted" >&2',
    ].join('\n');
    const expected = [
      out('order received'),
      out(trace('python-logging')),
      out('next order'),
      err('worker started'),
      err(trace('python-uncaught')),
      err('worker restarted'),
    ];
    assertEvents(await shipped(script, { 'multiline-preset': 'python' }, expected.length), expected);
  });

  test('multiline-preset=go: a panic through its goroutines is one event', async () => {
    const script = ['echo "listening on :8080" >&2', print(trace('go-recovered'), true), 'echo restarting >&2'].join('\n');
    const expected = [err('listening on :8080'), err(trace('go-recovered')), err('restarting')];
    assertEvents(await shipped(script, { 'multiline-preset': 'go' }, expected.length), expected);
  });

  test('multiline-pattern: a matching line starts an event; lines before the first match go alone', async () => {
    const script = [
      'echo "banner"',
      'echo "2026-12-01 19:40:12 INFO started"',
      'echo "2026-12-01 19:40:13 WARN slow query:"',
      'echo "  SELECT *"',
      'echo "    FROM orders"',
      'echo "2026-12-01 19:40:14 INFO done"',
    ].join('\n');
    const expected = [
      out('banner'),
      out('2026-12-01 19:40:12 INFO started'),
      out('2026-12-01 19:40:13 WARN slow query:\n  SELECT *\n    FROM orders'),
      out('2026-12-01 19:40:14 INFO done'),
    ];
    assertEvents(await shipped(script, { 'multiline-pattern': '^\\d{4}-\\d{2}-\\d{2} ', 'multiline-flush-timeout': '300ms' }, expected.length), expected);
  });

  test('parse-json=true: JSON object lines arrive as fields, everything else unchanged', async () => {
    const objects = [
      { level: 'info', msg: 'order saved', n: 3, ok: true, req: { id: 'r1', ms: 12 }, tags: ['a', 'b'] },
      { log: 'spoofed', container_name: 'spoofed', source: 'spoofed', level: 'warn' },
    ];
    const lines = [JSON.stringify(objects[0]), 'plain text', '[1,2]', '{"broken": ', `  ${JSON.stringify(objects[1])}  `];
    const script = lines.map((l) => print(l)).join('');
    const got = await shipped(script, { 'parse-json': 'true' }, lines.length);
    for (const [receiver, events] of got) {
      assert.deepEqual(
        events.map((e) => [e.text, e.fields]),
        [
          [receiver.jsonText?.(lines[0]!) ?? lines[0], receiver.expectedFields(objects[0]!)],
          ['plain text', null],
          ['[1,2]', null],
          ['{"broken": ', null],
          [receiver.jsonText?.(lines[4]!) ?? lines[4], receiver.expectedFields(objects[1]!)],
        ],
        receiver.name,
      );
    }
  });

  test("awslogs-datetime-format: awslogs' own multiline option, with Docker's framing (every line ends in '\\n')", async () => {
    const lines = ['banner', '2026-12-01 19:40:13 WARN slow query:', '  SELECT *', '    FROM orders', '2026-12-01 19:40:14 INFO done'];
    const container = await createContainer({
      cmd: sh(lines.map((l) => print(l)).join('')),
      driver: PLUGIN,
      opts: { backend: 'awslogs', ...RECEIVERS.find((r) => r.name === 'awslogs')!.opts, 'awslogs-datetime-format': '%Y-%m-%d %H:%M:%S' },
    });
    await container.start();
    assert.equal(await waitExit(container, 60_000), 0);
    const expected = ['banner\n', '2026-12-01 19:40:13 WARN slow query:\n  SELECT *\n    FROM orders\n', '2026-12-01 19:40:14 INFO done\n'];
    await waitUntil(() => cloudWatch.events(CLOUDWATCH_GROUP, container.id).length >= expected.length, 'the awslogs events', 30_000);
    await sleep(500); // anything extra (an event cut into pieces) would arrive by now
    assert.deepEqual(cloudWatch.events(CLOUDWATCH_GROUP, container.id).map((e) => e.message), expected);
  });
});
