import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecordEncoder, anyValue, otlpFactory, otlpMessages, partialRejections, resourceAttributes } from '../../src/backends/otlp.ts';
import { NO_ENVIRONMENT, configureBackend } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import { context, line } from './backend-context.ts';

const parseOtlpOptions = (opts: Record<string, string>, env: Record<string, string>) => configureBackend(otlpFactory, opts, { proxy: NO_ENVIRONMENT.proxy, env });

describe('otlp options', () => {
  it('defaults to http/protobuf on localhost:4318/v1/logs, 10 s, no compression', () => {
    const config = parseOtlpOptions({}, {});
    assert.equal(config.protocol, 'http/protobuf');
    assert.equal(config.url.href, 'http://localhost:4318/v1/logs');
    assert.equal(config.timeoutMs, 10_000);
    assert.equal(config.gzip, false);
    assert.equal(parseOtlpOptions({ 'otlp-protocol': 'grpc' }, {}).url.href, 'http://localhost:4317/');
  });

  it('adds /v1/logs to a base path as the SDKs do, but takes the logs setting as it is', () => {
    assert.equal(parseOtlpOptions({ 'otlp-endpoint': 'https://otel.example:4318/prefix/' }, {}).url.href, 'https://otel.example:4318/prefix/v1/logs');
    assert.equal(parseOtlpOptions({ 'otlp-endpoint': 'http://c:4318/v1/logs' }, {}).url.href, 'http://c:4318/v1/logs');
    assert.equal(parseOtlpOptions({}, { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://c:9/custom' }).url.href, 'http://c:9/custom');
    assert.equal(parseOtlpOptions({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:9' }).url.href, 'http://c:9/v1/logs');
  });

  it('takes the SDK variables as plugin settings; a log-opt wins, the _LOGS_ form over the general one', () => {
    const env = {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=2',
      OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'b=3',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=a%20b',
    };
    const config = parseOtlpOptions({ 'otlp-headers': 'C=4' }, env);
    assert.equal(config.protocol, 'grpc');
    assert.deepEqual(config.headers, { a: '1', b: '3', c: '4' });
    assert.equal(config.timeoutMs, 2500);
    assert.equal(config.gzip, true);
    assert.deepEqual(config.resource, [['deployment.environment', 'prod'], ['team', 'a b']]);
    assert.equal(parseOtlpOptions({ 'otlp-protocol': 'http/json', 'otlp-timeout': '1s' }, env).protocol, 'http/json');
  });

  it('never shows a header value, and names what is wrong', () => {
    const secret = 'Bearer%20very-secret-token';
    for (const bad of [`authorization=${secret},novalue`, `bad header=${secret}`, `authorization=${secret}%0A`, `authorization=%E0%A4%A`]) {
      assert.throws(
        () => parseOtlpOptions({ 'otlp-headers': bad }, {}),
        (err: Error) => err instanceof InvalidOptionError && err.message.includes("'otlp-headers'") && !err.message.includes('very-secret'),
      );
    }
    assert.throws(() => parseOtlpOptions({ 'otlp-endpoint': 'http://u:pw-secret@c:4318' }, {}), (err: Error) => !err.message.includes('pw-secret'));
    assert.throws(() => parseOtlpOptions({ 'otlp-protocol': 'thrift' }, {}), /http\/protobuf, http\/json, grpc/);
    assert.throws(() => parseOtlpOptions({ 'otlp-tls-ca-file': '/ca.pem' }, {}), /not https/);
  });
});

describe('otlp records', () => {
  it('puts the container on the resource by the semantic conventions; settings fill in, never override', () => {
    const ctx = context({ imageName: 'registry:5000/team/app:1.2', info: { ...context().info, labels: { 'com.docker.compose.service': 'api', 'com.docker.compose.project': 'shop' } } });
    const attrs = Object.fromEntries(resourceAttributes(ctx, [['host.name', 'other'], ['deployment.environment', 'prod']]).map((kv) => [kv.key, kv.value]));
    assert.deepEqual(attrs['container.image.name'], { stringValue: 'registry:5000/team/app' });
    assert.deepEqual(attrs['container.image.tags'], { arrayValue: { values: [{ stringValue: '1.2' }] } });
    assert.deepEqual(attrs['service.name'], { stringValue: 'api' });
    assert.deepEqual(attrs['service.namespace'], { stringValue: 'shop' });
    assert.deepEqual(attrs['host.name'], { stringValue: 'vm' });
    assert.deepEqual(attrs['deployment.environment'], { stringValue: 'prod' });
    const digest = Object.fromEntries(resourceAttributes(context({ imageName: 'app@sha256:' + 'b'.repeat(64) }), []).map((kv) => [kv.key, kv.value]));
    assert.deepEqual(digest['container.image.name'], { stringValue: 'app' });
    assert.equal(digest['container.image.tags'], undefined);
    assert.deepEqual(digest['service.name'], { stringValue: 'bk-test' });
  });

  it('maps JSON values to AnyValue: integers as int64 strings, other numbers as doubles, null as empty', () => {
    assert.deepEqual(anyValue({ i: 3, d: 0.5, big: 2 ** 60, s: 'x', b: false, n: null, a: [1] }), {
      kvlistValue: {
        values: [
          { key: 'i', value: { intValue: '3' } },
          { key: 'd', value: { doubleValue: 0.5 } },
          { key: 'big', value: { doubleValue: 2 ** 60 } },
          { key: 's', value: { stringValue: 'x' } },
          { key: 'b', value: { boolValue: false } },
          { key: 'n', value: {} },
          { key: 'a', value: { arrayValue: { values: [{ intValue: '1' }] } } },
        ],
      },
    });
  });

  it('encodes protobuf that decodes back to the same request, and OTLP/JSON with int64 as strings', () => {
    const encoder = new RecordEncoder(context(), []);
    const lines = [line('hello', 'stdout', '2026-11-22T10:00:00Z', 123)];
    const decoded = otlpMessages().request.toObject(otlpMessages().request.decode(encoder.encode(lines, 'http/protobuf')), { longs: String, enums: Number }) as {
      resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Array<{ timeUnixNano: string; severityNumber: number; body: { stringValue: string } }> }> }>;
    };
    const record = decoded.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
    assert.equal(record.timeUnixNano, String(lines[0]!.timeNano));
    assert.equal(record.severityNumber, 9);
    assert.equal(record.body.stringValue, 'hello');
    const json = JSON.parse(encoder.encode(lines, 'http/json').toString()) as typeof decoded;
    assert.equal(json.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.timeUnixNano, String(lines[0]!.timeNano));
  });

  it("writes plain lines' protobuf byte for byte as protobufjs encodes the same request", () => {
    const container = context({ attributes: [['team', 'a'], ['region', 'eu-west-1']] });
    const encoder = new RecordEncoder(container, [['deployment.environment', 'prod']]);
    const observed = 1_764_000_000_123_456_789n;
    const lines = [
      line('hello', 'stdout', '2026-11-22T10:00:00Z', 123),
      line('', 'stderr', '2026-11-22T10:00:01Z'),
      line('é ✓ 😀 '.repeat(40), 'stdout', '2026-11-22T10:00:02Z', 999_999_999),
      line(Buffer.from([0x61, 0xff, 0xc3, 0x28, 0x62]), 'stderr', '2026-11-22T10:00:03Z', 1), // not UTF-8: replaced, as a string of it is
      line('x'.repeat(20_000), 'stdout', '2026-11-22T10:00:04Z'), // lengths of 2 and 3 varint bytes
    ];
    const tree = (batch: typeof lines): Buffer => Buffer.from(otlpMessages().request.encode(encoder.request(batch, observed) as never).finish());
    assert.deepEqual(encoder.encode(lines, 'http/protobuf', observed), tree(lines));
    assert.deepEqual(encoder.encode(lines.slice(0, 1), 'http/protobuf', observed), tree(lines.slice(0, 1)));
    const many = Array.from({ length: 3000 }, (_, i) => line(String(i), i % 3 ? 'stdout' : 'stderr', '2026-11-22T10:00:00Z', i));
    assert.deepEqual(encoder.encode(many, 'http/protobuf', observed), tree(many));
  });

  it('tells a partial success as that many rejected lines, the last of the request', () => {
    assert.deepEqual(partialRejections(2, 5, 'quota').map((r) => r.index), [3, 4]);
    assert.deepEqual(partialRejections(9, 2, '').map((r) => r.index), [0, 1]);
    assert.deepEqual(partialRejections(0, 2, ''), []);
  });
});
