// Multiline events and JSON logs through the real engine and plugin: containers print Java,
// Python and Go traces between ordinary lines (with `multiline-preset`, and one with
// `multiline-pattern`), or JSON lines with `parse-json=true`, shipping to every receiver in
// RECEIVERS at once (one container, `backend=` their comma list). Each trace arrives as ONE
// event with the exact text, the ordinary lines as their own, JSON lines as fields; and
// `docker logs` of the same container is byte-identical to json-file's for the same output.
//
// To cover another backend, add a receiver to RECEIVERS: its options, how to read a
// container's events back, and how it presents a JSON line's fields.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { assertSameLogs, runPair } from './lib/compare.ts';
import { removeContainers, sh } from './lib/containers.ts';
import { type PluginJournald, startPluginJournald } from './lib/plugin.ts';
import { FluentReceiver, type Journald, scratchDir, waitUntil } from '../integration/lib/servers.ts';

const FLUENTD_PORT = 24400;
const JOURNAL_NAMESPACE = 'logship-shaping-e2e';

/** One event as a receiver got it: its stream, text, and the fields a JSON line added (null: none). */
interface Shipped {
  source: 'stdout' | 'stderr';
  text: string;
  fields: Record<string, unknown> | null;
}

interface Receiver {
  name: string;
  opts: Record<string, string>;
  /** Everything received for the container, in arrival order. */
  events(id: string): Shipped[];
  /** How this backend presents the fields of a JSON line (its own keys win a clash). */
  expectedFields(json: Record<string, unknown>): Record<string, unknown>;
}

let dir: string;
let fluent: FluentReceiver;
let journald: Journald;
let pluginJournald: PluginJournald | undefined;

const FLUENTD_OWN_KEYS = ['container_id', 'container_name', 'source', 'log'];
// What logship's journald backend writes itself, and what journald adds (`_*`, `__*`).
const JOURNAL_OWN_FIELDS = /^(?:_.*|MESSAGE|PRIORITY|SYSLOG_TIMESTAMP|SYSLOG_IDENTIFIER|CONTAINER_ID|CONTAINER_ID_FULL|CONTAINER_NAME|CONTAINER_TAG|IMAGE_NAME|CONTAINER_PARTIAL_.*)$/;

/** journalctl's JSON gives a value that is not printable UTF-8 as an array of bytes. */
const journalText = (value: unknown): string => (Array.isArray(value) ? Buffer.from(value as number[]).toString('utf8') : String(value));

const RECEIVERS: Receiver[] = [
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
];

before(async () => {
  dir = scratchDir('shaping-e2e');
  fluent = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: FLUENTD_PORT } });
  await fluent.listen();
  pluginJournald = await startPluginJournald(JOURNAL_NAMESPACE, path.join(dir, 'journald.out'));
  journald = pluginJournald.journald;
});

after(async () => {
  await removeContainers();
  try {
    await pluginJournald?.stop();
  } finally {
    await fluent?.close();
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

/** Each stream's events, in order (a receiver may interleave the two streams). */
function assertEvents(got: Map<Receiver, Shipped[]>, expected: Omit<Shipped, 'fields'>[]): void {
  for (const [receiver, events] of got) {
    for (const source of ['stdout', 'stderr'] as const) {
      assert.deepEqual(
        events.filter((e) => e.source === source).map((e) => e.text),
        expected.filter((e) => e.source === source).map((e) => e.text),
        `${receiver.name}, ${source}`,
      );
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
          [lines[0], receiver.expectedFields(objects[0]!)],
          ['plain text', null],
          ['[1,2]', null],
          ['{"broken": ', null],
          [lines[4], receiver.expectedFields(objects[1]!)],
        ],
        receiver.name,
      );
    }
  });
});
