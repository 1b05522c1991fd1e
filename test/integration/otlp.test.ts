// backend=otlp against the OTLP receiver (test/integration/lib/otlp-receiver.ts): the three
// protocols (gRPC to @grpc/grpc-js's server), gzip, headers, the semantic-convention fields,
// a partial success counted as rejected, 503 / UNAVAILABLE transient, and a cross-check with
// OpenTelemetry's own exporter (@opentelemetry/exporter-logs-otlp-proto, through the SDK's
// simple processor) decoding to the same record.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { otlpFactory, resourceAttributes } from '../../src/backends/otlp.ts';
import { SendError } from '../../src/delivery/backend.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { context } from '../unit/backend-context.ts';
import { OtlpReceiver, plain } from './lib/otlp-receiver.ts';

const now = (): bigint => BigInt(Date.now()) * 1_000_000n;
const out = (text: string, source: 'stdout' | 'stderr' = 'stdout', fields?: Record<string, unknown>): OutgoingLine => ({
  source,
  timeNano: now(),
  line: Buffer.from(text),
  ...(fields ? { fields } : {}),
});
const signal = () => AbortSignal.timeout(10_000);

describe('otlp backend', () => {
  const receiver = new OtlpReceiver();
  before(() => receiver.start());
  after(async () => {
    await receiver.stop();
    assert.deepEqual(receiver.violations, []);
  });
  const endpointOf = (protocol: string) => (protocol === 'grpc' ? receiver.grpcUrl : receiver.httpUrl);
  const backend = (name: string, opts: Record<string, string>, labels: Record<string, string> = {}) =>
    otlpFactory.create(
      configureBackend(otlpFactory, opts),
      context({ name, attributes: [['tier', 'front']], info: { ...context().info, name: `/${name}`, labels } }),
    );

  for (const protocol of ['http/protobuf', 'http/json', 'grpc']) {
    for (const compression of ['none', 'gzip']) {
      it(`exports over ${protocol} (${compression}) with the documented fields`, async () => {
        const name = `c-${protocol.replace('/', '-')}-${compression}`;
        const b = backend(name, { 'otlp-endpoint': endpointOf(protocol), 'otlp-protocol': protocol, 'otlp-compression': compression, 'otlp-headers': 'x-token=a%2Cb' }, { 'com.docker.compose.service': 'api' });
        const lines = [out('hello'), out('boom', 'stderr'), out('{"a":1}', 'stdout', { a: 1, b: [true, null], c: { d: 'e' }, f: 1.5 })];
        assert.deepEqual(await b.send(lines, signal()), {});
        await b.close();
        const got = receiver.received.at(-1)!;
        assert.equal(got.via, protocol);
        assert.equal(got.headers['x-token'], 'a,b');
        const records = receiver.records().filter((r) => r.resource['container.name'] === name);
        assert.equal(records.length, 3);
        assert.deepEqual(records[0]!.resource, {
          'container.id': context().id,
          'container.name': name,
          'container.image.name': 'bb',
          'container.image.tags': ['local'],
          'container.image.id': 'sha256:' + 'a'.repeat(64),
          'container.runtime.name': 'docker',
          'host.name': 'vm',
          'service.name': 'api',
        });
        assert.deepEqual(records.map((r) => [r.severityNumber, r.severityText, plain(r.body)]), [
          [9, 'INFO', 'hello'],
          [17, 'ERROR', 'boom'],
          [9, 'INFO', { a: 1, b: [true, null], c: { d: 'e' }, f: 1.5 }],
        ]);
        assert.equal(records[0]!.timeUnixNano, String(lines[0]!.timeNano));
        assert.ok(BigInt(records[0]!.observedTimeUnixNano!) >= lines[0]!.timeNano);
        assert.deepEqual(records[1]!.attributes!.map((a) => [a.key, plain(a.value)]), [['log.iostream', 'stderr'], ['tier', 'front']]);
      });
    }
  }

  for (const protocol of ['http/protobuf', 'grpc']) {
    it(`${protocol}: a partial success is that many lines rejected; 503 / UNAVAILABLE and a wrong credential are transient, never quoted`, async () => {
      const b = backend('partial', { 'otlp-endpoint': endpointOf(protocol), 'otlp-protocol': protocol, 'otlp-headers': 'authorization=Bearer%20right-token' });
      receiver.refuseRecords((r) => plain(r.body) === 'bad');
      const result = await b.send([out('ok'), out('bad'), out('ok2')], signal());
      receiver.refuseRecords(null);
      assert.equal(result.rejected?.length, 1);
      assert.match(result.rejected![0]!.reason, /refused 1 of 3/);
      receiver.fail(1);
      await assert.rejects(b.send([out('x')], signal()), (err: SendError) => err.transient);
      receiver.required = ['authorization', 'Bearer other-token'];
      await assert.rejects(b.send([out('x')], signal()), (err: SendError) => err.transient && !err.message.includes('right-token'));
      receiver.required = null;
      assert.deepEqual(await b.send([out('x')], signal()), {});
      await b.close();
    });
  }

  it('a collector that is not there is a transient failure (grpc and http)', async () => {
    for (const protocol of ['grpc', 'http/protobuf']) {
      const b = backend('down', { 'otlp-endpoint': 'http://127.0.0.1:9', 'otlp-protocol': protocol });
      await assert.rejects(b.send([out('x')], signal()), (err: SendError) => err.transient);
      await b.close();
    }
  });

  it("decodes to the same record as OpenTelemetry's own exporter", async () => {
    const ctx = context({ name: 'cross', attributes: [['tier', 'front']] });
    const attributes = Object.fromEntries(resourceAttributes(ctx, []).map((kv) => [kv.key, plain(kv.value as Record<string, unknown>)])) as Record<string, string | string[]>;
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(attributes),
      processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${receiver.httpUrl}/v1/logs` }) })],
    });
    const line = out('the same line', 'stderr');
    const ms = Number(line.timeNano / 1_000_000n);
    provider.getLogger('logship').emit({
      timestamp: ms,
      observedTimestamp: ms,
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      body: 'the same line',
      attributes: { 'log.iostream': 'stderr', tier: 'front' },
    });
    await provider.forceFlush();
    await provider.shutdown();
    const theirs = receiver.received.at(-1)!.request.resourceLogs![0]!;
    const b = otlpFactory.create(configureBackend(otlpFactory, { 'otlp-endpoint': receiver.httpUrl }), ctx);
    assert.deepEqual(await b.send([line], signal()), {});
    await b.close();
    const ours = receiver.received.at(-1)!.request.resourceLogs![0]!;
    const shape = (rl: typeof ours) => {
      const rec = rl.scopeLogs![0]!.logRecords![0]!;
      return {
        resource: Object.fromEntries((rl.resource!.attributes ?? []).map((a) => [a.key, plain(a.value)])),
        scope: rl.scopeLogs![0]!.scope!.name,
        record: { time: rec.timeUnixNano, severity: [rec.severityNumber, rec.severityText], body: plain(rec.body), attributes: Object.fromEntries(rec.attributes!.map((a) => [a.key, plain(a.value)])) },
      };
    };
    assert.deepEqual(shape(ours), shape(theirs));
  });
});
