import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import { PushEncoder, lokiFactory, rejectCodeOf, selector, streamLabels } from '../../src/backends/loki.ts';
import { configureBackend, parseLogOptions } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import { BACKENDS } from '../../src/backends/index.ts';
import { context, line } from './backend-context.ts';

const PUSH = protobuf.loadSync(fileURLToPath(new URL('../../proto/loki/push.proto', import.meta.url))).lookupType('logproto.PushRequest');
const parseLokiOptions = (opts: Record<string, string>) => configureBackend(lokiFactory, opts);
const URL_OPT = { 'loki-url': 'http://loki:3100/loki/api/v1/push' };

describe('loki options', () => {
  it('takes the driver defaults', () => {
    const config = parseLokiOptions(URL_OPT);
    assert.equal(config.format, 'protobuf');
    assert.equal(config.batchBytes, 1024 * 1024);
    assert.equal(config.batchWaitMs, 1000);
    assert.equal(config.timeoutMs, 10_000);
    assert.deepEqual([config.minBackoffMs, config.maxBackoffMs], [500, 300_000]);
    assert.deepEqual(config.externalLabels.map(([name, t]) => [name, t.source]), [['container_name', '{{.Name}}']]);
    assert.deepEqual(lokiFactory.batchLimits(config), { maxLines: 10_000, maxBytes: 1 << 20, maxDelayMs: 1000, lineOverheadBytes: 16 });
    assert.deepEqual(lokiFactory.retryPolicy!(config), { initialDelayMs: 500, maxDelayMs: 300_000 });
  });

  it('requires loki-url, and refuses what it cannot honour with the equivalent named', () => {
    assert.throws(() => parseLokiOptions({}), /must specify a value for log opt 'loki-url'/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-pipeline-stages': '- json: {}' }), /multiline-pattern.*parse-json/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-relabel-config': '[]' }), /loki-external-labels/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-external-labels': 'a=b=c' }), /name=value pairs/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-external-labels': '1x=b' }), /invalid label name '1x'/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-tls-ca-file': '/x' }), /not https/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-batch-wait': 'soon' }), /loki-batch-wait/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-retries': '-1' }), /loki-retries/);
    assert.throws(() => parseLokiOptions({ ...URL_OPT, 'loki-format': 'xml' }), /protobuf or json/);
    assert.doesNotThrow(() => parseLokiOptions({ ...URL_OPT, 'loki-retries': '0', 'no-file': 'true', 'keep-file': 'false' }));
  });

  it('never quotes a URL with credentials', () => {
    assert.throws(
      () => parseLokiOptions({ 'loki-url': 'ftp://user:s3cret@loki/push' }),
      (err: Error) => err instanceof InvalidOptionError && !err.message.includes('s3cret'),
    );
  });

  it('is selected with backend=loki, its keys its own', () => {
    const options = parseLogOptions({ backend: 'loki', ...URL_OPT, 'loki-tenant-id': 't1' }, BACKENDS);
    assert.equal(options.backends[0]!.name, 'loki');
    assert.throws(() => parseLogOptions({ backend: 'otlp', ...URL_OPT }, BACKENDS), /backend 'loki'/);
  });
});

describe('loki labels', () => {
  const ctx = context({
    attributes: [['com.example.team', 'pay'], ['build-id', '7'], ['weird/key', 'x']],
    info: { ...context().info, labels: { 'com.docker.compose.service': 'web', 'com.docker.compose.project': 'shop', 'com.docker.swarm.service.name': 'svc', 'com.docker.stack.namespace': 'stk' } },
  });

  it('adds what the driver adds: external labels, attributes, compose and swarm, host', () => {
    const labels = streamLabels(parseLokiOptions({ ...URL_OPT, 'loki-external-labels': 'container_name={{.Name}},image={{.ImageName}}' }), ctx);
    assert.deepEqual(Object.fromEntries(labels), {
      container_name: 'bk-test',
      image: 'bb:local',
      com_example_team: 'pay',
      build_id: '7',
      weird_key: 'x',
      compose_service: 'web',
      compose_project: 'shop',
      swarm_service: 'svc',
      swarm_stack: 'stk',
      host: 'vm',
    });
  });

  it('prints a selector Loki parses: sorted, quoted, escaped', () => {
    assert.equal(selector(new Map([['b', 'say "hi"\n'], ['a', 'x\\y']])), '{a="x\\\\y", b="say \\"hi\\"\\n"}');
  });
});

describe('loki push encoding', () => {
  const lines = [
    line('second', 'stdout', '2026-11-22T10:00:01Z', 5),
    line('err', 'stderr', '2026-11-22T10:00:00Z'),
    line('first', 'stdout', '2026-11-22T10:00:00Z', 999_999_999),
    line(Buffer.from([0x66, 0xff]), 'stdout', '2026-11-22T10:00:02Z'),
  ];

  it('protobuf with snappy: one stream per source, entries in time order, nanoseconds kept', () => {
    const encoder = new PushEncoder(parseLokiOptions({ ...URL_OPT, 'loki-structured-metadata': 'host' }), context());
    const { body, contentType } = encoder.encode(lines);
    assert.equal(contentType, 'application/x-protobuf');
    const push = PUSH.toObject(PUSH.decode(snappy.uncompress(body)), { longs: String }) as {
      streams: Array<{ labels: string; entries: Array<{ timestamp: { seconds: string; nanos?: number }; line: string; structuredMetadata: Array<{ name: string; value: string }> }> }>;
    };
    assert.deepEqual(push.streams.map((s) => s.labels), ['{container_name="bk-test", source="stdout"}', '{container_name="bk-test", source="stderr"}']);
    const stdout = push.streams[0]!.entries;
    assert.deepEqual(stdout.map((e) => e.line), ['first', 'second', 'f\ufffd']);
    assert.equal(stdout[0]!.timestamp.seconds, String(Date.parse('2026-11-22T10:00:00Z') / 1000));
    assert.equal(stdout[0]!.timestamp.nanos, 999_999_999);
    assert.equal(stdout[1]!.timestamp.nanos, 5);
    assert.deepEqual(stdout[0]!.structuredMetadata, [{ name: 'host', value: 'vm' }]);
  });

  it('JSON: streams of labels, values of [nanoseconds, line, metadata]', () => {
    const encoder = new PushEncoder(parseLokiOptions({ ...URL_OPT, 'loki-format': 'json' }), context());
    const { body, contentType } = encoder.encode(lines.slice(0, 3));
    assert.equal(contentType, 'application/json');
    const t = (iso: string, n: number) => String(BigInt(Date.parse(iso)) * 1_000_000n + BigInt(n));
    assert.deepEqual(JSON.parse(body.toString()), {
      streams: [
        { stream: { container_name: 'bk-test', host: 'vm', source: 'stdout' }, values: [[t('2026-11-22T10:00:00Z', 999_999_999), 'first'], [t('2026-11-22T10:00:01Z', 5), 'second']] },
        { stream: { container_name: 'bk-test', host: 'vm', source: 'stderr' }, values: [[t('2026-11-22T10:00:00Z', 0), 'err']] },
      ],
    });
  });
});

describe('loki refusals', () => {
  it('reads the reason of a 400 as the rejection code', () => {
    assert.equal(rejectCodeOf("entry for stream '{a=\"b\"}' has timestamp too old: 2020-01-01, oldest acceptable timestamp is: 2026-11-15"), 'too_old');
    assert.equal(rejectCodeOf("entry with timestamp 2026 ignored, reason: 'entry out of order',"), 'too_old');
    assert.equal(rejectCodeOf('entry too far behind, entry timestamp is: x, oldest acceptable timestamp is: y'), 'too_old');
    assert.equal(rejectCodeOf("entry for stream '{a=\"b\"}' has timestamp too new: 2030"), 'too_new');
    assert.equal(rejectCodeOf("max entry size '262144' bytes exceeded for stream '{}' while adding an entry with length '300000' bytes"), 'too_large');
    assert.equal(rejectCodeOf('error at least one label pair is required per stream'), 'invalid');
  });
});
