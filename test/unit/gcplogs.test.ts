// gcplogs without a network: options as Docker's gcplogs names them, the entries' shape,
// the parse-json merge, the cutting of long lines and the reading of per-entry errors.
import { utf8Pieces } from '../../src/transport/requests.ts';
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Entry, protos } from '@google-cloud/logging';
import {
  EntryEncoder,
  MAX_MESSAGE_BYTES,
  containerPayload,
  gcplogsFactory,
  partialErrors,
  target,
} from '../../src/backends/gcplogs.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { BACKENDS } from '../../src/backends/index.ts';
import { context, line } from './backend-context.ts';
import { InvalidOptionError } from '../../src/options/values.ts';

type Value = { stringValue?: string; numberValue?: number; boolValue?: boolean; structValue?: Struct; listValue?: { values: Value[] }; nullValue?: number };
type Struct = { fields: Record<string, Value> };

/** The entry's jsonPayload (a protobuf Struct as the library builds it) as plain JSON. */
function payload(entry: object): Record<string, unknown> {
  const plain = (v: Value): unknown =>
    v.structValue ? toPlain(v.structValue) : v.listValue ? v.listValue.values.map(plain) : 'nullValue' in v ? null : (v.stringValue ?? v.numberValue ?? v.boolValue);
  const toPlain = (s: Struct): Record<string, unknown> => Object.fromEntries(Object.entries(s.fields).map(([k, v]) => [k, plain(v)]));
  return toPlain((entry as { jsonPayload: Struct }).jsonPayload);
}

describe('gcplogs options', () => {
  it("takes Docker's keys, with Docker's defaults", () => {
    assert.deepEqual(configureBackend(gcplogsFactory, {}), { project: null, logCommand: false, instance: null, endpoint: null });
    assert.deepEqual(
      configureBackend(gcplogsFactory, { 'gcp-project': 'my-proj', 'gcp-log-cmd': 'true', 'gcp-meta-zone': 'us-east1-b', 'gcp-meta-id': '42' }),
      { project: 'my-proj', logCommand: true, instance: { zone: 'us-east1-b', name: '', id: '42' }, endpoint: null },
    );
    assert.equal(configureBackend(gcplogsFactory, { 'gcp-log-cmd': 'false' }).logCommand, false);
  });

  it('gcp-endpoint: host:port over TLS, http://host:port in plaintext', () => {
    assert.deepEqual(configureBackend(gcplogsFactory, { 'gcp-endpoint': 'logging.example.com:8443' }).endpoint, { host: 'logging.example.com', port: 8443, plaintext: false });
    assert.deepEqual(configureBackend(gcplogsFactory, { 'gcp-endpoint': 'private.googleapis.com' }).endpoint, { host: 'private.googleapis.com', port: 443, plaintext: false });
    assert.deepEqual(configureBackend(gcplogsFactory, { 'gcp-endpoint': 'http://127.0.0.1:8085' }).endpoint, { host: '127.0.0.1', port: 8085, plaintext: true });
  });

  it('refuses bad values, naming the option and what it accepts', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'gcp-log-cmd': 'yes please' }, /log opt 'gcp-log-cmd': expected true or false/],
      [{ 'gcp-endpoint': 'https://x:1' }, /log opt 'gcp-endpoint': expected host:port .* or http:\/\/host:port/],
      [{ 'gcp-endpoint': 'http://x:99999' }, /log opt 'gcp-endpoint'/],
      [{ 'gcp-project': 'Has Spaces' }, /log opt 'gcp-project': expected a project id/],
      [{ 'gcp-project': '' }, /log opt 'gcp-project'/],
    ];
    for (const [opts, message] of cases) assert.throws(() => configureBackend(gcplogsFactory, opts), (err) => err instanceof InvalidOptionError && message.test(err.message));
  });

  it('never quotes a gcp-endpoint that may carry a password', () => {
    assert.throws(
      () => configureBackend(gcplogsFactory, { 'gcp-endpoint': 'http://user:s3cret@logging.example:8085' }),
      (err: Error) => err instanceof InvalidOptionError && /invalid value \(not shown: it has an @\) for log opt 'gcp-endpoint'/.test(err.message) && !err.message.includes('s3cret'),
    );
  });

  it('is selected by backend=gcplogs; its keys are refused for another backend', () => {
    assert.equal(parseLogOptions({ backend: 'gcplogs', 'gcp-project': 'p' }, BACKENDS).backends[0]!.name, 'gcplogs');
    assert.throws(() => parseLogOptions({ backend: 'syslog', 'gcp-project': 'p' }, BACKENDS), /'gcp-project' is an option of backend 'gcplogs'/);
  });

  it('batches within the API limits: entries per request, request bytes with a per-entry overhead', () => {
    const limits = gcplogsFactory.batchLimits(configureBackend(gcplogsFactory, {}));
    assert.ok(limits.maxLines <= 1000);
    // parse-json may put a line in twice (message and fields): still under 10 MB.
    assert.ok(2 * limits.maxBytes + limits.maxLines * (limits.lineOverheadBytes ?? 0) < 10_000_000);
  });
});

describe('gcplogs entries', () => {
  const ctx = context({ name: 'web', attributes: [['team', 'logs']] });

  it("container keys as Docker's dockerLogEntry: name with '/', empty ones and the command left out unless asked", () => {
    assert.deepEqual(containerPayload(ctx, false), {
      name: '/web',
      id: ctx.id,
      imageName: 'bb:local',
      imageId: ctx.imageId,
      created: ctx.created,
      metadata: { team: 'logs' },
    });
    assert.equal(containerPayload(ctx, true).command, '/bin/sh -c echo hi');
    assert.equal(containerPayload(context({ imageName: '' }), false).imageName, undefined);
    assert.equal(containerPayload(context(), false).metadata, undefined);
  });

  it('the resource: gce_instance with an instance, else the global resource of the project', () => {
    assert.deepEqual(target('p', { zone: 'z', name: 'n', id: '1' }), {
      logName: 'projects/p/logs/gcplogs-docker-driver',
      resource: { type: 'gce_instance', labels: { instance_id: '1', zone: 'z' } },
      instance: { zone: 'z', name: 'n', id: '1' },
    });
    assert.deepEqual(target('p', { zone: 'z', name: '', id: '' }).instance, { zone: 'z' });
    assert.deepEqual(target('p', null), { logName: 'projects/p/logs/gcplogs-docker-driver', resource: { type: 'global', labels: { project_id: 'p' } }, instance: null });
  });

  it('timestamp to the nanosecond, severity INFO for stdout and ERROR for stderr', () => {
    const encoder = new EntryEncoder(ctx, false, null, Entry, protos);
    const [out] = encoder.encode(line('a', 'stdout', '2026-11-21T23:06:40Z', 5)) as Array<Record<string, unknown>>;
    const [err] = encoder.encode(line('b', 'stderr', '2026-11-21T23:06:40Z')) as Array<Record<string, unknown>>;
    assert.deepEqual(out!.timestamp, { seconds: Date.parse('2026-11-21T23:06:40Z') / 1000, nanos: 5 });
    assert.equal(out!.severity, 'INFO');
    assert.equal(err!.severity, 'ERROR');
    assert.equal(payload(out!).message, 'a');
  });

  it("parse-json: the line's keys beside Docker's, Docker's winning a clash, the line kept as message", () => {
    const encoder = new EntryEncoder(ctx, false, { zone: 'z' }, Entry, protos);
    const text = '{"message":"mine","container":"x","instance":1,"level":"warn","n":2}';
    const [entry] = encoder.encode({ ...line(text, 'stdout', '2026-11-21T23:06:40Z'), fields: JSON.parse(text) });
    const p = payload(entry!);
    assert.equal(p.message, text);
    assert.equal(p.level, 'warn');
    assert.equal(p.n, 2);
    assert.deepEqual(p.instance, { zone: 'z' });
    assert.equal((p.container as Record<string, unknown>).name, '/web');
  });

  it('parse-json fields of a line over MAX_FIELDS_LINE_BYTES are left out: the message alone carries it', () => {
    const encoder = new EntryEncoder(ctx, false, null, Entry, protos);
    const text = JSON.stringify({ big: 'x'.repeat(MAX_MESSAGE_BYTES / 2) });
    const [entry, ...more] = encoder.encode({ ...line(text, 'stdout', '2026-11-21T23:06:40Z'), fields: JSON.parse(text) });
    assert.equal(more.length, 0);
    assert.equal(payload(entry!).big, undefined);
    assert.equal(payload(entry!).message, text);
  });

  it('a long line becomes entries linked by LogEntry.split, cut between UTF-8 characters', () => {
    const encoder = new EntryEncoder(ctx, false, null, Entry, protos);
    const text = 'a' + '€'.repeat(MAX_MESSAGE_BYTES / 3 + 10);
    const entries = encoder.encode(line(text, 'stderr', '2026-11-21T23:06:40Z')) as Array<Record<string, unknown>>;
    assert.equal(entries.length, 2);
    assert.equal(entries.map((e) => payload(e).message).join(''), text);
    const [first, second] = entries.map((e) => e.split as { uid: string; index: number; totalSplits: number });
    assert.equal(first!.uid, second!.uid);
    assert.deepEqual([first!.index, second!.index, first!.totalSplits], [0, 1, 2]);
    assert.ok(entries.every((e) => e.severity === 'ERROR'));
  });

  it('utf8Pieces never cuts inside a character', () => {
    const bytes = Buffer.from('ab€€€'); // 2 + 3*3 bytes
    const pieces = utf8Pieces(bytes, 4);
    assert.deepEqual(pieces.map((p) => p.toString()), ['ab', '€', '€', '€']);
    assert.deepEqual(utf8Pieces(Buffer.from('abc'), 4).map(String), ['abc']);
  });

  it('a line that is not UTF-8 goes with U+FFFD in place of the bad bytes, as Go’s JSON encoder does', () => {
    const [entry] = new EntryEncoder(ctx, false, null, Entry, protos).encode(line(Buffer.from([0x61, 0xff, 0x62]), 'stdout', '2026-11-21T23:06:40Z'));
    assert.equal(payload(entry!).message, 'a\ufffdb');
  });
});

describe('gcplogs per-entry errors', () => {
  function errorWith(details: Array<{ type_url: string; value: Uint8Array }>): Error {
    const status = protos.google.rpc.Status.encode({ code: 3, message: 'bad', details }).finish();
    return Object.assign(new Error('3 INVALID_ARGUMENT'), { code: 3, metadata: { get: (key: string) => (key === 'grpc-status-details-bin' ? [Buffer.from(status)] : []) } });
  }

  it('reads WriteLogEntriesPartialErrors from the status details', () => {
    const value = protos.google.logging.v2.WriteLogEntriesPartialErrors.encode({ logEntryErrors: { 2: { code: 3, message: 'bad entry' }, 5: { code: 7 } } }).finish();
    const errors = partialErrors(errorWith([{ type_url: 'type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors', value }]), protos);
    assert.deepEqual([...errors!], [[2, { code: 3, message: 'bad entry' }], [5, { code: 7, message: '' }]]);
  });

  it('none without that detail: the failure is the whole request’s', () => {
    assert.equal(partialErrors(errorWith([]), protos), null);
    assert.equal(partialErrors(new Error('14 UNAVAILABLE'), protos), null);
  });
});
