// The awslogs backend (the real AWS SDK) against a CloudWatch Logs endpoint that speaks the
// JSON 1.1 protocol and enforces PutLogEvents' limits: group and stream creation as the
// options say, batches cut within the limits (big lines, invalid UTF-8, a span over 24 h,
// lines out of order), throttling, 5xx and an outage failing the send (transient) for the
// engine to retry, puts that went through not sent again, sequence tokens,
// DataAlreadyAccepted, rejected events and the json/emf header.
// The plugin settings as the plugin reads them at start (Settings.backends).
import { backendEnvironment } from '../../src/settings.ts';
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { awslogsFactory, instanceRegion } from '../../src/backends/awslogs.ts';
import { SendError } from '../../src/delivery/backend.ts';
import { context, line } from '../unit/backend-context.ts';
import { CloudWatchEndpoint, MAX_BATCH_BYTES } from './lib/cloudwatch-endpoint.ts';
import type { ContainerContext } from '../../src/shaping/container.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

const IMDS_PORT = 14568;
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDLOGSHIPTEST', AWS_SECRET_ACCESS_KEY: 'logship-test-secret' };
let endpoint: CloudWatchEndpoint;
const saved: Record<string, string | undefined> = {};

before(async () => {
  // The plugin's environment, as `docker plugin set` gives it: static keys, empty session token.
  for (const [key, value] of Object.entries({ ...CREDENTIALS, AWS_SESSION_TOKEN: '', AWS_REGION: '' })) {
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  endpoint = new CloudWatchEndpoint();
  await endpoint.start();
});

after(async () => {
  await endpoint?.stop();
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

beforeEach(() => {
  endpoint.groups.clear();
  endpoint.requests.length = 0;
  endpoint.strictTokens = false;
});

afterEach(() => {
  assert.deepEqual(endpoint.violations.splice(0), [], 'the endpoint saw requests that break the service limits');
});

const signal = new AbortController().signal;
const backends: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

function backend(opts: Record<string, string>, ctx: ContainerContext = context()) {
  const b = awslogsFactory.create(
    configureBackend(awslogsFactory, { 'awslogs-region': 'us-east-1', 'awslogs-endpoint': endpoint.url, 'awslogs-group': 'g', 'awslogs-stream': 's', ...opts }),
    ctx,
  );
  backends.push(b);
  return b;
}

const now = (offsetMs = 0): string => new Date(Date.now() + offsetMs).toISOString();
const numbered = (from: number, count: number, iso = now()): OutgoingLine[] =>
  Array.from({ length: count }, (_, i) => line(String(from + i), 'stdout', iso));
const messages = (group = 'g', stream = 's'): string[] => endpoint.events(group, stream).map((e) => e.message);
const operations = (): string[] => endpoint.requests.map((r) => `${r.operation} ${r.status}`);
const transient = (pattern: RegExp) => (err: unknown) => err instanceof SendError && err.transient && pattern.test(err.message);

describe('awslogs backend → CloudWatch endpoint: creation', () => {
  it('creates the stream in an existing group at the first send, not before', async () => {
    endpoint.createGroup('g');
    const b = backend({});
    assert.deepEqual(operations(), []);
    await b.send([line('hello', 'stdout', '2026-11-21T23:06:40.123Z')], signal);
    assert.deepEqual(operations(), ['CreateLogStream 200', 'PutLogEvents 200']);
    assert.deepEqual(endpoint.events('g', 's').map(({ timestamp, message }) => ({ timestamp, message })), [
      { timestamp: Date.parse('2026-11-21T23:06:40.123Z'), message: 'hello' },
    ]);
    await b.send([line('again', 'stdout', now())], signal);
    assert.deepEqual(operations().slice(2), ['PutLogEvents 200'], 'the stream is created once');
  });

  it('with awslogs-create-group, creates the group on ResourceNotFound, then the stream (as Docker)', async () => {
    await backend({ 'awslogs-create-group': 'true' }).send([line('x', 'stdout', now())], signal);
    assert.deepEqual(operations(), ['CreateLogStream 400', 'CreateLogGroup 200', 'CreateLogStream 200', 'PutLogEvents 200']);
    assert.deepEqual(messages(), ['x']);
  });

  it('an existing stream is fine', async () => {
    endpoint.createGroup('g');
    await backend({}).send([line('one', 'stdout', now())], signal);
    await backend({}).send([line('two', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['one', 'two']);
    assert.ok(operations().includes('CreateLogStream 400'));
  });

  it('without awslogs-create-group, a missing group rejects the send, naming it, until the group exists', async () => {
    const b = backend({});
    // Transient: creating the group loses nothing.
    await assert.rejects(b.send([line('waits', 'stdout', now())], signal), transient(/CreateLogStream to g\/s: ResourceNotFoundException/));
    endpoint.createGroup('g');
    await b.send([line('waits', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['waits']);
  });

  it('with awslogs-create-stream=false, never creates the stream', async () => {
    endpoint.createGroup('g');
    const b = backend({ 'awslogs-create-stream': 'false' });
    await assert.rejects(b.send([line('x', 'stdout', now())], signal), transient(/PutLogEvents to g\/s: ResourceNotFoundException/));
    assert.deepEqual(operations(), ['PutLogEvents 400']);
  });

  it('re-creates a stream (and group) deleted since, then puts', async () => {
    const b = backend({ 'awslogs-create-group': 'true' });
    await b.send([line('before', 'stdout', now())], signal);
    endpoint.groups.clear();
    await b.send([line('after', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['after']);
  });

  it('names the stream by the full container id unless awslogs-stream or tag is set', async () => {
    endpoint.createGroup('g');
    const ctx = context({ tag: 'my-tag' });
    const b = awslogsFactory.create(configureBackend(awslogsFactory, { 'awslogs-region': 'us-east-1', 'awslogs-endpoint': endpoint.url, 'awslogs-group': 'g' }), ctx);
    backends.push(b);
    await b.send([line('by-id', 'stdout', now())], signal);
    assert.deepEqual(messages('g', ctx.id), ['by-id']);
  });
});

describe('awslogs backend → CloudWatch endpoint: limits', () => {
  beforeEach(() => endpoint.createGroup('g'));

  it('an engine batch of 10,000 lines goes in one put', async () => {
    await backend({}).send(numbered(1, 10_000), signal);
    assert.deepEqual(endpoint.requests.filter((r) => r.operation === 'PutLogEvents').map((r) => r.events), [10_000]);
    assert.deepEqual(messages(), Array.from({ length: 10_000 }, (_, i) => String(i + 1)));
  });

  it('a line over 262,118 bytes becomes several events, cut at characters, in order', async () => {
    const text = ('é'.repeat(99_999) + 'x').repeat(3); // 600,000 bytes, a 2-byte character at every cut point
    await backend({}).send([line(text, 'stdout', now()), line('next', 'stdout', now())], signal);
    const got = messages();
    assert.equal(got.at(-1), 'next');
    assert.equal(got.slice(0, -1).join(''), text);
    assert.ok(got.every((m) => Buffer.byteLength(m) <= 262_118));
  });

  it('invalid UTF-8 that grows past 1 MiB when converted is cut into several puts', async () => {
    // Within the engine's count (raw bytes + 26 ≤ 1 MiB), three times that once each 0xff is U+FFFD.
    const raw = Buffer.alloc(200_000, 0xff);
    const lines = Array.from({ length: 5 }, (_, i) => line(Buffer.concat([Buffer.from(`${i}:`), raw]), 'stdout', now()));
    assert.ok(lines.reduce((n, l) => n + l.line.length + 26, 0) <= MAX_BATCH_BYTES);
    await backend({}).send(lines, signal);
    const puts = endpoint.requests.filter((r) => r.operation === 'PutLogEvents');
    assert.ok(puts.length >= 3, `${puts.length} puts`);
    const got = messages();
    assert.equal(got.length, 15); // each line: 600,002 bytes → 3 events
    assert.deepEqual(
      got.filter((m) => /^\d:/.test(m)).map((m) => m[0]),
      ['0', '1', '2', '3', '4'],
    );
    assert.ok(got.every((m) => /^(\d:)?\uFFFD+$/.test(m)));
  });

  it('a batch spanning more than 24 hours goes in several puts', async () => {
    const lines = [line('old', 'stdout', now(-30 * 3_600_000)), line('mid', 'stdout', now(-5 * 3_600_000)), line('new', 'stdout', now())];
    await backend({}).send(lines, signal);
    assert.equal(endpoint.requests.filter((r) => r.operation === 'PutLogEvents').length, 2);
    assert.deepEqual(messages(), ['old', 'mid', 'new']);
  });

  it('lines out of time order (stdout and stderr) are sorted, equal times kept in order', async () => {
    const t = Date.now();
    const at = (ms: number): string => new Date(t + ms).toISOString();
    await backend({}).send([line('b', 'stdout', at(2)), line('a1', 'stderr', at(1)), line('c', 'stdout', at(3)), line('a2', 'stdout', at(1))], signal);
    assert.deepEqual(messages(), ['a1', 'a2', 'b', 'c']);
  });

  it('parse-json lines go as their JSON object, without the blanks around it; a multiline event ends in a newline', async () => {
    await backend({}).send([{ ...line('  {"a": 1}  ', 'stdout', now()), fields: { a: 1 } }], signal);
    await backend({ 'awslogs-stream': 'ml', 'awslogs-multiline-pattern': '^\\S' }).send([line('Error\n  at x', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['{"a": 1}']);
    assert.deepEqual(messages('g', 'ml'), ['Error\n  at x\n']);
  });
});

describe('awslogs backend → CloudWatch endpoint: failures', () => {
  beforeEach(() => endpoint.createGroup('g'));

  for (const error of ['ThrottlingException', 'ServiceUnavailableException'] as const) {
    it(`${error}: the send rejects for the engine to retry; the retry delivers once`, async () => {
      const b = backend({});
      endpoint.inject(error, 2); // the SDK's own retry takes one
      const lines = numbered(1, 100);
      await assert.rejects(b.send(lines, signal), transient(new RegExp(`PutLogEvents to g/s: ${error}`)));
      assert.deepEqual(messages(), []);
      await b.send(lines, signal);
      assert.deepEqual(messages(), lines.map((l) => l.line.toString()));
    });
  }

  it('a put that fails after one that went through: the lines of the failed puts are the ones to send again', async () => {
    const b = backend({});
    const lines = numbered(1, 25_000);
    await b.send(lines.slice(0, 1), signal); // the stream exists: the next requests are all puts
    endpoint.requests.length = 0;
    endpoint.groups.get('g')!.get('s')!.events.length = 0;
    // The second put of three fails (and the SDK's retry of it).
    endpoint.inject('ServiceUnavailableException', 2, 1);
    const result = await b.send(lines, signal);
    assert.equal(messages().length, 10_000);
    assert.deepEqual(result.retry?.lines, lines.map((_, i) => i).slice(10_000));
    assert.match(result.retry!.reason, /request 2 of 3 failed: .*ServiceUnavailableException/);
    // What the engine does: only those lines again.
    assert.deepEqual(await b.send(result.retry!.lines!.map((i) => lines[i]!), signal), {});
    const got = messages().map(Number);
    assert.equal(new Set(got).size, 25_000);
    assert.equal(got.length, 25_000, 'no put sent twice');
    assert.deepEqual(got, [...got].sort((x, y) => x - y));
  });

  it('an outage (nothing listening) rejects the send quickly; after it, the send delivers', async () => {
    const b = backend({});
    await b.send([line('before', 'stdout', now())], signal);
    await endpoint.stop();
    try {
      const started = Date.now();
      await assert.rejects(b.send([line('during', 'stdout', now())], signal), transient(/PutLogEvents to g\/s: .*ECONNREFUSED/));
      assert.ok(Date.now() - started < 5000);
    } finally {
      await endpoint.start();
    }
    await b.send([line('during', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['before', 'during']);
  });

  it('an aborted send rejects at once', async () => {
    const b = backend({});
    await endpoint.stop();
    try {
      await assert.rejects(b.send([line('x', 'stdout', now())], AbortSignal.abort(new Error('plugin shutdown'))), /abort|shutdown/i);
    } finally {
      await endpoint.start();
    }
  });

  it('strict sequence tokens: a second writer to the stream is told the token and retries with it', async () => {
    endpoint.strictTokens = true;
    const first = backend({});
    const second = backend({});
    await first.send([line('1', 'stdout', now())], signal);
    await second.send([line('2', 'stdout', now())], signal);
    await first.send([line('3', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['1', '2', '3']);
    assert.equal(endpoint.requests.filter((r) => r.operation === 'PutLogEvents' && r.status === 400).length, 2);
  });

  it('DataAlreadyAcceptedException counts as delivered', async () => {
    const b = backend({});
    await b.send([line('1', 'stdout', now())], signal);
    endpoint.inject('DataAlreadyAcceptedException');
    await b.send([line('1-again', 'stdout', now())], signal);
    await b.send([line('2', 'stdout', now())], signal);
    assert.deepEqual(messages(), ['1', '2']);
  });

  it('events the service rejects (too old, too new) are rejected lines, not sent again', async () => {
    const b = backend({});
    const result = await b.send(
      [line('ancient', 'stdout', now(-15 * 24 * 3_600_000)), line('ok', 'stdout', now()), line('future', 'stdout', now(3 * 3_600_000))],
      signal,
    );
    assert.deepEqual(messages(), ['ok']);
    assert.deepEqual(result.rejected?.map((r) => [r.index, r.code]), [[0, 'too_old'], [2, 'too_new']]);
    assert.equal(result.retry, undefined);
    assert.equal(endpoint.requests.filter((r) => r.operation === 'PutLogEvents').length, 2, 'one put per 24 h, none again');
  });
});

describe('awslogs backend → CloudWatch endpoint: requests', () => {
  beforeEach(() => endpoint.createGroup('g'));

  it('awslogs-format=json/emf sends the x-amzn-logs-format header; otherwise none', async () => {
    await backend({ 'awslogs-format': 'json/emf' }).send([line('{"_aws":{}}', 'stdout', now())], signal);
    assert.ok(endpoint.requests.length > 0 && endpoint.requests.every((r) => r.logsFormat === 'json/emf'));
    endpoint.requests.length = 0;
    await backend({ 'awslogs-stream': 'plain' }).send([line('x', 'stdout', now())], signal);
    assert.ok(endpoint.requests.every((r) => r.logsFormat === undefined));
  });

  it('takes the region from the plugin environment when awslogs-region is not set, signing for it', async () => {
    process.env.AWS_REGION = 'eu-north-1';
    try {
      const b = awslogsFactory.create(configureBackend(awslogsFactory, { 'awslogs-endpoint': endpoint.url, 'awslogs-group': 'g', 'awslogs-stream': 's' }, backendEnvironment(process.env)), context());
      backends.push(b);
      await b.send([line('regional', 'stdout', now())], signal);
    } finally {
      process.env.AWS_REGION = '';
    }
    assert.deepEqual(messages(), ['regional']);
    assert.deepEqual(new Set(endpoint.requests.map((r) => r.region)), new Set(['eu-north-1']));
  });

  it('without awslogs-region nor AWS_REGION, reads the region from EC2 instance metadata (IMDSv2) at the first send', async () => {
    const token = 'imds-session-token';
    const imds = http.createServer((req, res) => {
      if (req.method === 'PUT' && req.url === '/latest/api/token' && req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return void res.end(token);
      if (req.method === 'GET' && req.url === '/latest/meta-data/placement/region' && req.headers['x-aws-ec2-metadata-token'] === token) {
        return void res.end('ap-southeast-2');
      }
      res.writeHead(401).end();
    });
    await new Promise<void>((resolve) => imds.listen(IMDS_PORT, '127.0.0.1', resolve));
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `http://127.0.0.1:${IMDS_PORT}/`;
    try {
      const b = awslogsFactory.create(configureBackend(awslogsFactory, { 'awslogs-endpoint': endpoint.url, 'awslogs-group': 'g', 'awslogs-stream': 's' }, backendEnvironment(process.env)), context());
      backends.push(b);
      await b.send([line('from imds', 'stdout', now())], signal);
      assert.deepEqual(messages(), ['from imds']);
      assert.deepEqual(new Set(endpoint.requests.map((r) => r.region)), new Set(['ap-southeast-2']));
      // Metadata down or disabled: the send fails, saying what to set.
      imds.closeAllConnections();
      await new Promise((resolve) => imds.close(resolve));
      await assert.rejects(instanceRegion(signal), /set log opt 'awslogs-region' or the plugin's AWS_REGION; EC2 instance metadata did not answer/);
      await assert.rejects(instanceRegion(signal, { AWS_EC2_METADATA_DISABLED: 'true' }), /disabled/);
    } finally {
      delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      if (imds.listening) imds.close();
    }
  });

  it("signs with the plugin environment's static credentials", async () => {
    await backend({}).send([line('signed', 'stdout', now())], signal);
    assert.deepEqual(new Set(endpoint.requests.map((r) => `${r.accessKeyId} ${r.region}`)), new Set(['AKIDLOGSHIPTEST us-east-1']));
  });

  it('what was put reads back through GetLogEvents', async () => {
    await backend({}).send([line('read back', 'stdout', now())], signal);
    const client = new CloudWatchLogsClient({ region: 'us-east-1', endpoint: endpoint.url, credentials: { accessKeyId: 'AKID', secretAccessKey: 's' } });
    try {
      const out = await client.send(new GetLogEventsCommand({ logGroupName: 'g', logStreamName: 's' }));
      assert.deepEqual(out.events?.map((e) => e.message), ['read back']);
    } finally {
      client.destroy();
    }
  });
});
