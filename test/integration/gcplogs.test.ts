// The gcplogs backend (the real @google-cloud/logging client) against the test's Cloud
// Logging endpoint over plaintext gRPC on loopback. No metadata server here (detection off,
// and its address a closed loopback port: nothing may leave loopback), so the instance comes
// from gcp-meta-* as Docker does off GCE.
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { v2 } from '@google-cloud/logging';
import { gcplogsFactory, LOG_NAME, MAX_FIELDS_LINE_BYTES, MAX_MESSAGE_BYTES, } from '../../src/backends/gcplogs.ts';
import { type Backend, type SendResult, SendError } from '../../src/delivery/backend.ts';
import { context, line } from '../unit/backend-context.ts';
import { CloudLoggingEndpoint, MAX_ENTRIES } from './lib/cloud-logging-endpoint.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GCE_METADATA_HOST = '127.0.0.1:15019';

const PORT = 15010;
const signal = new AbortController().signal;
let endpoint: CloudLoggingEndpoint;
const backends: Backend[] = [];

function backend(opts: Record<string, string> = {}, ctx = context()): Backend {
  const config = configureBackend(gcplogsFactory, { 'gcp-project': 'test-project', 'gcp-endpoint': `http://${endpoint.address}`, ...opts });
  const created = gcplogsFactory.create(config, ctx);
  backends.push(created);
  return created;
}

/** Until the receiver takes the batch, with a short pause, as the engine would on a transient error. */
async function sendUntilTaken(b: Backend, lines: OutgoingLine[]): Promise<SendResult> {
  for (;;) {
    try {
      return await b.send(lines, signal);
    } catch (err) {
      assert.ok(err instanceof SendError && err.transient, `${String(err)} is transient`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

before(async () => {
  endpoint = new CloudLoggingEndpoint(PORT);
  await endpoint.start();
});

afterEach(() => assert.deepEqual(endpoint.violations, [], 'the endpoint saw a request over its limits or out of order'));

after(async () => {
  await Promise.all(backends.map((b) => b.close()));
  endpoint?.stop();
});

describe('gcplogs backend → Cloud Logging endpoint (gRPC)', () => {
  it("writes Docker's entries: log name, gce_instance from gcp-meta-*, jsonPayload, timestamp, severity", async () => {
    const ctx = context({ name: 'bk-gcp', attributes: [['foo', 'bar'], ['E1', 'xyz']] });
    const b = backend({ 'gcp-meta-zone': 'us-central1-a', 'gcp-meta-name': 'vm-1', 'gcp-meta-id': '987654321', 'gcp-log-cmd': 'true' }, ctx);
    const before = endpoint.accepted.length;
    await b.send([line('hello-gcplogs', 'stdout', '2026-11-21T23:06:40Z', 123456789), line('oops', 'stderr', '2026-11-21T23:06:41Z')], signal);
    const [request, ...more] = endpoint.accepted.slice(before);
    assert.equal(more.length, 0);
    assert.equal(request!.logName, `projects/test-project/logs/${LOG_NAME}`);
    assert.deepEqual(request!.resource, { type: 'gce_instance', labels: { instance_id: '987654321', zone: 'us-central1-a' } });
    assert.equal(request!.entries.length, 2, 'no diagnostic entry beside the lines');
    const [out, err] = request!.entries;
    assert.deepEqual(out!.jsonPayload, {
      instance: { zone: 'us-central1-a', name: 'vm-1', id: '987654321' },
      container: {
        name: '/bk-gcp',
        id: ctx.id,
        imageName: 'bb:local',
        imageId: ctx.imageId,
        created: ctx.created,
        command: '/bin/sh -c echo hi',
        metadata: { foo: 'bar', E1: 'xyz' },
      },
      message: 'hello-gcplogs',
    });
    assert.deepEqual(out!.timestamp, { seconds: String(Date.parse('2026-11-21T23:06:40Z') / 1000), nanos: 123456789 });
    assert.equal(out!.severity, 'INFO');
    assert.equal(err!.severity, 'ERROR');
    assert.equal(err!.jsonPayload.message, 'oops');
    assert.equal(request!.authorization, undefined, 'plaintext gRPC carries no credentials');
  });

  it("without gcp-meta-* and off GCE the resource is the project's (global) and there is no instance, as Docker's", async () => {
    const before = endpoint.accepted.length;
    await backend().send([line('x', 'stdout', '2026-11-21T23:06:40Z')], signal);
    const request = endpoint.accepted[before]!;
    assert.deepEqual(request.resource, { type: 'global', labels: { project_id: 'test-project' } });
    assert.equal(request.entries[0]!.jsonPayload.instance, undefined);
    assert.equal((request.entries[0]!.jsonPayload.container as Record<string, unknown>).command, undefined, 'no command without gcp-log-cmd');
  });

  it('without gcp-project and without a metadata server, the send fails saying exactly that (the engine retries)', async () => {
    const config = configureBackend(gcplogsFactory, { 'gcp-endpoint': `http://${endpoint.address}` });
    const b = gcplogsFactory.create(config, context());
    backends.push(b);
    const calls = endpoint.calls;
    await assert.rejects(b.send([line('x', 'stdout', '2026-11-21T23:06:40Z')], signal), /log opt 'gcp-project' is not set and no GCE metadata server answered/);
    assert.equal(endpoint.calls, calls, 'nothing was sent');
  });

  it('merges parse-json fields beside Docker keys, which win a clash', async () => {
    const before = endpoint.accepted.length;
    const parsed = { ...line('{"level":"warn","message":"theirs"}', 'stdout', '2026-11-21T23:06:40Z'), fields: { level: 'warn', n: 3, nested: { a: [1, null] }, message: 'theirs' } };
    await backend().send([parsed], signal);
    const payload = endpoint.accepted[before]!.entries[0]!.jsonPayload;
    assert.equal(payload.level, 'warn');
    assert.equal(payload.n, 3);
    assert.deepEqual(payload.nested, { a: [1, null] });
    assert.equal(payload.message, '{"level":"warn","message":"theirs"}');
  });

  it('writes a batch whose lines are not in time order (a multiline event closed late) with its entries in time order', async () => {
    const before = endpoint.written.length;
    await backend().send(
      [line('err 2', 'stderr', '2026-11-21T23:06:42Z'), line('out event', 'stdout', '2026-11-21T23:06:41Z'), line('err 3', 'stderr', '2026-11-21T23:06:42Z')],
      signal,
    );
    assert.deepEqual(endpoint.written.slice(before).map((e) => e.jsonPayload.message), ['out event', 'err 2', 'err 3']);
  });

  it('splits a line longer than a LogEntry may be into linked entries, whole and in order', async () => {
    const before = endpoint.written.length;
    const long = 'é'.repeat(MAX_MESSAGE_BYTES) + 'end'; // two bytes a character: cuts fall inside none
    await backend().send([line(long, 'stdout', '2026-11-21T23:06:40Z'), line('after', 'stdout', '2026-11-21T23:06:41Z')], signal);
    const entries = endpoint.written.slice(before);
    assert.equal(entries.length, 4);
    const pieces = entries.slice(0, 3);
    assert.equal(pieces.map((e) => e.jsonPayload.message).join(''), long);
    const uid = pieces[0]!.split!.uid;
    pieces.forEach((e, i) => assert.deepEqual(e.split, { uid, index: i, totalSplits: 3 }));
    assert.equal(entries[3]!.jsonPayload.message, 'after');
  });

  it('fails transiently on throttling, 5xx and permission errors, one call each (no retries of its own), then delivers', async () => {
    const b = backend();
    const lines = [line('retried', 'stdout', '2026-11-21T23:06:40Z')];
    const codes = [grpc.status.RESOURCE_EXHAUSTED, grpc.status.UNAVAILABLE, grpc.status.INTERNAL, grpc.status.DEADLINE_EXCEEDED, grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED, grpc.status.NOT_FOUND];
    for (const code of codes) {
      endpoint.failNext(code, 1);
      const calls = endpoint.calls;
      await assert.rejects(b.send(lines, signal), (err: SendError) => err.transient && (err.cause as { code?: number }).code === code);
      assert.equal(endpoint.calls, calls + 1, `${grpc.status[code]}: one call per send`);
    }
    endpoint.failNext(grpc.status.INVALID_ARGUMENT, 1);
    await assert.rejects(b.send(lines, signal), (err: SendError) => !err.transient, 'a request the API calls invalid is not transient: the engine bisects');
    const before = endpoint.written.length;
    await b.send(lines, signal);
    assert.deepEqual(endpoint.messages().slice(before), ['retried']);
  });

  it('reports entries the API rejects one by one as rejected lines and writes the rest in the same call', async () => {
    endpoint.rejectEntries((e) => e.jsonPayload.message === 'poison');
    const before = endpoint.written.length;
    const calls = endpoint.calls;
    // Out of time order in the batch: the rejection still names the poison line's own index.
    const lines = [line('a', 'stdout', '2026-11-21T23:06:41Z'), line('poison', 'stdout', '2026-11-21T23:06:40Z'), line('b', 'stdout', '2026-11-21T23:06:42Z')];
    const result = await backend().send(lines, signal);
    assert.equal(endpoint.calls, calls + 1);
    assert.deepEqual(endpoint.messages().slice(before), ['a', 'b']);
    assert.deepEqual(result.rejected?.map((r) => [r.index, r.code]), [[1, 'invalid']]);
    assert.equal(result.retry, undefined);
  });

  // Finding 11 of issue 11: with a flat 1 KiB per entry, 500 short lines of a container with
  // ~20 KB of labels made a request over 10 MB, refused and retried forever.
  it("sizes requests from what each entry carries: 500 lines with 20 KB of attributes stay within 10 MB", async () => {
    const attributes = Array.from({ length: 20 }, (_, i) => [`label-${i}`, 'v'.repeat(1000)] as const);
    const lines = Array.from({ length: 500 }, (_, i) => line(`short ${i}`, 'stdout', '2026-11-21T23:06:40Z', i));
    const before = endpoint.written.length;
    const requests = endpoint.accepted.length;
    const result = await backend({}, context({ attributes })).send(lines, signal);
    assert.deepEqual(result, {});
    assert.deepEqual(endpoint.messages().slice(before), lines.map((l) => l.line.toString()));
    assert.ok(endpoint.accepted.length - requests >= 2, 'the batch went as several requests');
  });

  it('a full batch of 1000 lines with a split line goes as requests of at most 1000 entries', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => line(i === 500 ? 'x'.repeat(400 * 1024) : `short ${i}`, 'stdout', '2026-11-21T23:06:40Z', i));
    const before = endpoint.written.length;
    const requests = endpoint.accepted.length;
    const result = await backend().send(lines, signal);
    assert.deepEqual(result, {});
    // The endpoint refuses a request over 1000 entries: the 400 KiB line's three entries push the tail into a second request.
    assert.equal(endpoint.written.length - before, 1002);
    assert.equal(endpoint.accepted.length - requests, 2);
  });

  it('a full outage rejects until the endpoint is back; signal aborts a send', async () => {
    const b = backend();
    endpoint.stop();
    await assert.rejects(b.send([line('during', 'stdout', '2026-11-21T23:06:40Z')], signal));
    const controller = new AbortController();
    const pending = b.send([line('aborted', 'stdout', '2026-11-21T23:06:40Z')], controller.signal);
    controller.abort();
    await assert.rejects(pending, /abort/i);
    await endpoint.start();
    const before = endpoint.written.length;
    await sendUntilTaken(b, [line('after outage', 'stdout', '2026-11-21T23:06:41Z')]);
    assert.deepEqual(endpoint.messages().slice(before), ['after outage']);
  });

  it('the endpoint itself refuses an entry over 256 KiB and entries out of time order, recording both', async () => {
    const client = new v2.LoggingServiceV2Client({ apiEndpoint: '127.0.0.1', port: PORT, sslCreds: grpc.credentials.createInsecure() });
    const entry = (message: string, seconds: number) => ({ timestamp: { seconds }, textPayload: message });
    try {
      await assert.rejects(
        client.writeLogEntries({ logName: 'projects/p/logs/l', entries: [entry('x'.repeat(300 * 1024), 2), entry('older', 1)] }, { retry: { retryCodes: [] } }),
        (err: { code?: number }) => err.code === grpc.status.INVALID_ARGUMENT,
      );
    } finally {
      await client.close();
    }
    const seen = endpoint.violations.splice(0);
    assert.equal(seen.length, 2, seen.join('; '));
    assert.match(seen[0]!, /entry 0 of \d+ bytes over 262144/);
    assert.match(seen[1]!, /entry 1 is older than entry 0/);
  });

  it('a full batch at the limits the engine is given stays within the API limits', async () => {
    const limits = gcplogsFactory.batchLimits(configureBackend(gcplogsFactory, {}));
    assert.ok(limits.maxLines <= MAX_ENTRIES);
    // As many lines as the engine puts in one batch, of the size that fills maxBytes.
    const size = Math.floor(limits.maxBytes / limits.maxLines) - (limits.lineOverheadBytes ?? 0);
    const text = 'x'.repeat(size - 8);
    const lines = Array.from({ length: limits.maxLines }, (_, i) => {
      const json = `{"i":${String(i).padStart(4, '0')}`;
      return { ...line(json + text.slice(json.length + 1) + '}', 'stdout', '2026-11-21T23:06:40Z', i), fields: { i, pad: text } };
    });
    const before = endpoint.written.length;
    await backend({}, context({ attributes: [['team', 'logs'], ['env', 'prod']] })).send(lines, signal);
    assert.equal(endpoint.written.length - before, limits.maxLines);
  });

  it('a full batch of parse-json lines of numbers, whose fields weigh several times their text, stays within the API limits', async () => {
    const limits = gcplogsFactory.batchLimits(configureBackend(gcplogsFactory, {}));
    // `0,` is two bytes of JSON and an eleven-byte Value in the entry's Struct.
    const numbers = (i: number, bytes: number): OutgoingLine => {
      const values = Array.from({ length: Math.floor((bytes - 24) / 2) }, () => 0);
      const text = JSON.stringify({ i, values });
      return { ...line(text, 'stdout', '2026-11-21T23:06:40Z', i), fields: JSON.parse(text) };
    };
    const size = Math.floor(limits.maxBytes / limits.maxLines) - (limits.lineOverheadBytes ?? 0);
    const lines = [
      numbers(0, MAX_FIELDS_LINE_BYTES),
      numbers(1, MAX_MESSAGE_BYTES / 2),
      ...Array.from({ length: limits.maxLines - 2 }, (_, i) => numbers(i + 2, size)),
    ];
    const before = endpoint.written.length;
    await backend().send(lines, signal);
    const written = endpoint.written.slice(before);
    assert.deepEqual(written.map((e) => e.jsonPayload.message), lines.map((l) => l.line.toString()));
    assert.deepEqual(written[0]!.jsonPayload.values, lines[0]!.fields!.values, 'the longest line with its fields keeps them');
    assert.equal(written[1]!.jsonPayload.values, undefined, 'a longer one goes as its message alone');
  });
});
