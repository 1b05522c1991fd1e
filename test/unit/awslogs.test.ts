// The awslogs backend without a network: its options as Docker's driver validates them, the
// events it makes of lines (UTF-8, parse-json, multiline, splitting), how it cuts a batch
// into puts within PutLogEvents' limits, its multiline hook and the stream's name.
import { splitUtf8 } from '../../src/transport/requests.ts';
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_EVENT_BYTES,
  MAX_PUT_BYTES,
  MAX_PUT_EVENTS,
  MAX_PUT_SPAN_MS,
  PER_EVENT_BYTES,
  awslogsFactory,
  configuredRegion,
  planPuts,
  rejectedEvents,
  streamName,
  eventsJson,
  linesOf,
  toEvents,
  withEvents,
} from '../../src/backends/awslogs.ts';
import { BACKENDS } from '../../src/backends/index.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { context, line } from './backend-context.ts';
import { InvalidOptionError } from '../../src/options/values.ts';

const GROUP = { 'awslogs-group': 'g' };
const parse = (opts: Record<string, string>) => configureBackend(awslogsFactory, { ...GROUP, ...opts });
const refuses = (opts: Record<string, string>, pattern: RegExp): void => {
  assert.throws(() => parse(opts), (err: Error) => err instanceof InvalidOptionError && pattern.test(err.message));
};

describe('awslogs options', () => {
  it("has Docker's defaults", () => {
    assert.deepEqual(parse({}), {
      region: null,
      group: 'g',
      stream: null,
      createGroup: false,
      createStream: true,
      multilineStart: null,
      flushIntervalMs: 5000,
      endpoint: null,
      credentialsPath: null,
      format: null,
      // The plugin settings it is handed (none in this test).
      environment: { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: undefined },
    });
  });

  it('reads every option', () => {
    const config = parse({
      'awslogs-region': 'eu-west-3',
      'awslogs-stream': 's',
      'awslogs-create-group': 'true',
      'awslogs-create-stream': 'false',
      'awslogs-multiline-pattern': '^\\[',
      'awslogs-force-flush-interval-seconds': '2',
      'awslogs-max-buffered-events': '100',
      'awslogs-endpoint': 'https://logs.eu-west-3.amazonaws.com',
      'awslogs-credentials-endpoint': '/v2/credentials/abc',
    });
    assert.equal(config.region, 'eu-west-3');
    assert.equal(config.stream, 's');
    assert.equal(config.createGroup, true);
    assert.equal(config.createStream, false);
    assert.equal(config.multilineStart?.pattern(), '^\\[');
    assert.equal(config.flushIntervalMs, 2000);
    assert.equal(config.endpoint, 'https://logs.eu-west-3.amazonaws.com');
    assert.equal(config.credentialsPath, '/v2/credentials/abc');
    assert.equal(parse({ 'awslogs-format': 'json/emf' }).format, 'json/emf');
  });

  it('refuses what Docker refuses, naming the option', () => {
    assert.throws(() => configureBackend(awslogsFactory, {}), /must specify a value for log opt 'awslogs-group'/);
    refuses({ 'awslogs-create-group': 'yes' }, /'awslogs-create-group': expected true or false/);
    refuses({ 'awslogs-create-stream': '2' }, /'awslogs-create-stream'/);
    refuses({ 'awslogs-datetime-format': '%Y', 'awslogs-multiline-pattern': 'x' }, /'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time/);
    refuses({ 'awslogs-format': 'json/emf', 'awslogs-multiline-pattern': 'x' }, /when log opt 'awslogs-format' is set to 'json\/emf'/);
    refuses({ 'awslogs-format': 'json/emf', 'awslogs-datetime-format': '%Y' }, /'awslogs-format'/);
    refuses({ 'awslogs-format': 'json' }, /invalid value 'json' for log opt 'awslogs-format': expected json\/emf/);
    for (const bad of ['0', '-1', '1.5', 'five']) {
      refuses({ 'awslogs-force-flush-interval-seconds': bad }, /'awslogs-force-flush-interval-seconds': must specify a positive integer/);
    }
    refuses({ 'awslogs-max-buffered-events': '0' }, /'awslogs-max-buffered-events': must specify a positive integer/);
    refuses({ 'awslogs-multiline-pattern': '(' }, /invalid value '\(' for log opt 'awslogs-multiline-pattern'/);
    refuses({ 'awslogs-datetime-format': '%Q' }, /'awslogs-datetime-format': '%Q' is not a supported directive/);
    refuses({ 'awslogs-endpoint': 'logs.amazonaws.com' }, /'awslogs-endpoint': expected an http:\/\/ or https:\/\/ URL/);
    refuses({ 'awslogs-region': 'US EAST' }, /'awslogs-region'/);
  });

  it('never quotes an endpoint that carries a password, nor a credentials path', () => {
    for (const [key, value] of [
      ['awslogs-endpoint', 'https://user:hunter2@logs.example'],
      ['awslogs-credentials-endpoint', 'v2/credentials/secret-id'],
    ] as const) {
      assert.throws(
        () => parse({ [key]: value }),
        (err: Error) => err.message.includes(key) && !err.message.includes('hunter2') && !err.message.includes('secret-id'),
      );
    }
  });

  it('are the options of backend=awslogs, and only of it', () => {
    const options = parseLogOptions({ backend: 'awslogs', 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', tag: '{{.Name}}' }, BACKENDS);
    assert.equal(options.backends[0]!.name, 'awslogs');
    assert.deepEqual(options.backends[0]!.limits, { maxLines: 10_000, maxBytes: 1_048_576, lineOverheadBytes: 26, maxDelayMs: 5000 });
    assert.throws(() => parseLogOptions({ 'awslogs-group': 'g' }, BACKENDS), /'awslogs-group' is an option of backend 'awslogs'/);
    assert.throws(() => parseLogOptions({ backend: 'awslogs', 'awslogs-group': 'g', 'awslogs-grup': 'x' }, BACKENDS), /unknown log opt 'awslogs-grup'.*awslogs-group/);
  });

  it('the flush interval is the batch delay', () => {
    assert.equal(awslogsFactory.batchLimits(parse({ 'awslogs-force-flush-interval-seconds': '1' })).maxDelayMs, 1000);
  });
});

describe('awslogs stream name', () => {
  it('is awslogs-stream, else the tag when set, else the full container id', () => {
    const ctx = context({ tag: 'web-1' });
    assert.equal(streamName(parse({ 'awslogs-stream': 's' }), { ...ctx, tagSet: true }), 's');
    assert.equal(streamName(parse({}), { ...ctx, tagSet: true }), 'web-1');
    assert.equal(streamName(parse({}), { ...ctx, tagSet: false }), ctx.id);
  });
});

describe('awslogs multiline hook', () => {
  it('is null without the multiline options', () => {
    assert.equal(awslogsFactory.multiline!(parse({})), null);
  });

  it('gives a first-line matcher from awslogs-multiline-pattern, unanchored', () => {
    const options = awslogsFactory.multiline!(parse({ 'awslogs-multiline-pattern': 'INFO|ERROR', 'awslogs-force-flush-interval-seconds': '3' }))!;
    assert.ok(options.matcher.kind === 'first-line');
    const { pattern } = options.matcher;
    assert.ok(pattern.test('2026-01-01 ERROR boom'));
    assert.ok(!pattern.test('    at Foo.bar'));
    assert.equal(options.flushTimeoutMs, 3000);
    assert.equal(options.maxBytes, 262_118);
    assert.ok(options.maxLines >= options.maxBytes);
  });

  it('gives the datetime format as Docker converts it', () => {
    const options = awslogsFactory.multiline!(parse({ 'awslogs-datetime-format': '\\[%b %d, %Y %H:%M:%S\\]' }))!;
    assert.ok(options.matcher.kind === 'first-line');
    const { pattern } = options.matcher;
    assert.ok(pattern.test('[May 01, 2017 19:00:01] A message was logged'));
    assert.ok(!pattern.test('A message was logged'));
    assert.equal(options.flushTimeoutMs, 5000);
  });
});

const T = '2026-11-21T23:06:40.000Z';

describe('awslogs events', () => {
  it('are the raw line and its time in milliseconds, nothing added (beside the line they come from)', () => {
    assert.deepEqual(toEvents([line('hello', 'stdout', T, 987_654_321), line('err', 'stderr', T)], false), [
      { timestamp: Date.parse(T) + 987, message: 'hello', line: 0 },
      { timestamp: Date.parse(T), message: 'err', line: 1 },
    ]);
  });

  it('turn invalid UTF-8 into U+FFFD (3 bytes each) and leave out empty lines', () => {
    const events = toEvents([line(Buffer.from([0x61, 0xff, 0xfe, 0x62]), 'stdout', T), line('', 'stdout', T)], false);
    assert.deepEqual(events.map((e) => e.message), ['a\uFFFD\uFFFDb']);
    assert.equal(Buffer.byteLength(events[0]!.message!), 8);
  });

  it('carry a parse-json line as its JSON object, the blanks around it left out and nothing re-encoded', () => {
    const text = '{ "level": "info",  "n": 12345678901234567890, "n": 2 }';
    const parsed = { ...line(` \t${text}\r `, 'stdout', T), fields: JSON.parse(text) as Record<string, unknown> };
    assert.deepEqual(toEvents([parsed, line(' plain ', 'stdout', T)], false).map((e) => e.message), [text, ' plain ']);
  });

  it("end in '\\n' when multiline is configured, as Docker's multiline events", () => {
    assert.deepEqual(toEvents([line('a\n  b', 'stdout', T)], true).map((e) => e.message), ['a\n  b\n']);
  });

  it('are split at character boundaries past 262,118 bytes', () => {
    const text = 'x'.repeat(MAX_EVENT_BYTES - 1) + 'é' + 'y'.repeat(10);
    const events = toEvents([line(text, 'stdout', T)], false);
    assert.deepEqual(events.map((e) => Buffer.byteLength(e.message!)), [MAX_EVENT_BYTES - 1, 12]);
    assert.equal(events.map((e) => e.message).join(''), text);
    assert.ok(events.every((e) => e.timestamp === Date.parse(T)));
  });

  it('split 4-byte characters whole', () => {
    const pieces = splitUtf8('😀'.repeat(5), 9);
    assert.deepEqual(pieces, ['😀😀', '😀😀', '😀']);
  });
});

describe('awslogs puts', () => {
  const ev = (timestamp: number, message = 'm') => ({ timestamp, message });

  it('sort by time, keeping the order of equal times', () => {
    const puts = planPuts([ev(3, 'c'), ev(1, 'a1'), ev(2, 'b'), ev(1, 'a2')]);
    assert.deepEqual(puts, [[ev(1, 'a1'), ev(1, 'a2'), ev(2, 'b'), ev(3, 'c')]]);
  });

  it('hold 10,000 events at most', () => {
    const puts = planPuts(Array.from({ length: 25_000 }, (_, i) => ev(i)));
    assert.deepEqual(puts.map((p) => p.length), [MAX_PUT_EVENTS, MAX_PUT_EVENTS, 5000]);
  });

  it('hold 1,048,576 bytes at most, counting 26 per event and the UTF-8 size', () => {
    // Each '\uFFFD' is 3 bytes: an event of 261,000 bytes (87,000 characters), four to a put.
    const big = '\uFFFD'.repeat(87_000);
    const puts = planPuts(Array.from({ length: 10 }, (_, i) => ev(i, big)));
    for (const put of puts) {
      const bytes = put.reduce((n, e) => n + Buffer.byteLength(e.message!) + PER_EVENT_BYTES, 0);
      assert.ok(bytes <= MAX_PUT_BYTES, `${bytes} bytes`);
    }
    assert.deepEqual(puts.map((p) => p.length), [4, 4, 2]);
    const exact = 'x'.repeat(MAX_PUT_BYTES / 2 - PER_EVENT_BYTES);
    assert.deepEqual(planPuts([ev(0, exact), ev(0, exact), ev(0, 'z')]).map((p) => p.length), [2, 1]);
  });

  it('span 24 hours at most', () => {
    const puts = planPuts([ev(0), ev(MAX_PUT_SPAN_MS), ev(MAX_PUT_SPAN_MS + 1), ev(3 * MAX_PUT_SPAN_MS)]);
    assert.deepEqual(puts.map((p) => p.map((e) => e.timestamp)), [[0, MAX_PUT_SPAN_MS], [MAX_PUT_SPAN_MS + 1], [3 * MAX_PUT_SPAN_MS]]);
  });
});

describe('awslogs rejected events', () => {
  it('are the events the indices exclude, each with its code', () => {
    const codes = (info: Parameters<typeof rejectedEvents>[0]): string[] => rejectedEvents(info, 10).map((r) => `${r.event}:${r.code}`);
    assert.deepEqual(codes(undefined), []);
    assert.deepEqual(codes({ tooOldLogEventEndIndex: 3 }), ['0:too_old', '1:too_old', '2:too_old']);
    assert.deepEqual(codes({ tooNewLogEventStartIndex: 8 }), ['8:too_new', '9:too_new']);
    assert.deepEqual(codes({ expiredLogEventEndIndex: 2, tooOldLogEventEndIndex: 4, tooNewLogEventStartIndex: 9 }), ['0:too_old', '1:too_old', '2:too_old', '3:too_old', '9:too_new']);
    assert.equal(rejectedEvents({ tooOldLogEventEndIndex: 6, tooNewLogEventStartIndex: 4 }, 10).length, 10);
    assert.match(rejectedEvents({ expiredLogEventEndIndex: 1 }, 10)[0]!.reason, /retention/);
  });
});

describe('awslogs region and plugin environment', () => {
  it('takes awslogs-region, else AWS_REGION, else AWS_DEFAULT_REGION, else none (instance metadata)', () => {
    assert.equal(configuredRegion(parse({ 'awslogs-region': 'eu-west-1' }), { AWS_REGION: 'us-east-1' }), 'eu-west-1');
    assert.equal(configuredRegion(parse({}), { AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-west-2' }), 'us-east-1');
    assert.equal(configuredRegion(parse({}), { AWS_REGION: '', AWS_DEFAULT_REGION: 'us-west-2' }), 'us-west-2');
    assert.equal(configuredRegion(parse({}), {}), null);
  });
});

describe('awslogs PutLogEvents body', () => {
  // The SDK's own client and serializer, with a request handler that keeps the request and
  // answers as the service does: the body eventsJson fills in against the one the SDK writes.
  async function bodyOf(logEvents: { timestamp: number; message: string }[], fill: string | null): Promise<string> {
    const sdk = await import('@aws-sdk/client-cloudwatch-logs');
    let body = '';
    const client = new sdk.CloudWatchLogsClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
      requestHandler: {
        handle: async (request: { body?: unknown }) => {
          body = typeof request.body === 'string' ? request.body : Buffer.from(request.body as Uint8Array).toString('utf8');
          const { Readable } = await import('node:stream');
          return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: Readable.from([Buffer.from('{}')]) } };
        },
      },
    });
    const command = new sdk.PutLogEventsCommand({ logGroupName: 'g "1"', logStreamName: 'logEvents":[]', logEvents: fill === null ? logEvents : [], sequenceToken: 't' });
    if (fill !== null) {
      const middleware = (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => next({ ...args, request: withEvents(args.request, fill) });
      command.middlewareStack.addRelativeTo(middleware as unknown as Parameters<typeof command.middlewareStack.addRelativeTo>[0], { relation: 'after', toMiddleware: 'serializerMiddleware', name: 'test' });
    }
    await client.send(command);
    client.destroy();
    return body;
  }

  it("is the SDK's own, with the events written by eventsJson", async () => {
    const events = toEvents([line('plain', 'stdout', T), line('quote " backslash \\ tab \t é € 😀 \u2028 \u0001', 'stderr', T, 5_000_000), line(Buffer.from([0x61, 0xff, 0x62]), 'stdout', T)], false);
    const sdkBody = await bodyOf(events.map(({ timestamp, message }) => ({ timestamp, message })), null);
    const filled = await bodyOf([], eventsJson(events));
    assert.deepEqual(JSON.parse(filled), JSON.parse(sdkBody));
    assert.equal(JSON.parse(filled).logEvents.length, 3);
  });

  it('an SDK body without one empty logEvents is refused, never sent without its events', () => {
    assert.throws(() => withEvents({ body: '{"logGroupName":"g"}' }, '[]'), /without one empty logEvents/);
    assert.throws(() => withEvents({ body: Buffer.from('{"logEvents":[],"logEvents":[]}') }, '[]'), /without one empty logEvents/);
    assert.throws(() => withEvents({ body: undefined }, '[]'), /without one empty logEvents/);
    assert.deepEqual(withEvents({ body: '{"logEvents":[],"x":1}' }, '[{"timestamp":1,"message":"m"}]'), { body: '{"logEvents":[{"timestamp":1,"message":"m"}],"x":1}' });
  });
});

describe('awslogs lines of a put', () => {
  it('each line once, in the order its events first appear, whether or not the lines go back', () => {
    const of = (lines: number[]) => linesOf(lines.map((line) => ({ timestamp: 0, message: 'm', line })));
    assert.deepEqual(of([0, 1, 1, 1, 2, 5]), [0, 1, 2, 5]);
    assert.deepEqual(of([3, 0, 0, 3, 1]), [3, 0, 1]);
    assert.deepEqual(of([]), []);
  });
});
