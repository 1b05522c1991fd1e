// backend=awslogs through the real engine and plugin, with Docker's awslogs option names,
// against the CloudWatch endpoint the test starts (static test credentials set as the
// plugin's environment): the group and stream are created, messages and timestamps arrive,
// the stream is named as Docker names it; 100,000 lines arrive in order with nothing lost
// and no container waiting through throttling and a 10 s outage; a bad option fails
// `docker run` naming it, and a down endpoint does not.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import { PLUGIN } from './lib/docker-client.ts';
import { changePluginSettings } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES, PACED, checkSequence } from './lib/sequence.ts';
import { CloudWatchEndpoint } from '../integration/lib/cloudwatch-endpoint.ts';
import { waitUntil } from '../integration/lib/servers.ts';

const PORT = 14567;
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDLOGSHIPE2E', AWS_SECRET_ACCESS_KEY: 'logship-e2e-secret' };

let endpoint: CloudWatchEndpoint;
const run = Date.now().toString(36);

/** Puts the plugin's credentials back as they were. */
let restoreSettings: (() => Promise<void>) | undefined;

before(async () => {
  endpoint = new CloudWatchEndpoint({ port: PORT });
  await endpoint.start();
  restoreSettings = await changePluginSettings(CREDENTIALS);
});

after(async () => {
  await removeContainers();
  try {
    await restoreSettings?.();
  } finally {
    await endpoint?.stop();
  }
});

afterEach(() => {
  assert.deepEqual(endpoint.violations.splice(0), [], 'the endpoint saw requests that break the service limits');
});

const opts = (group: string, extra: Record<string, string> = {}): Record<string, string> => ({
  backend: 'awslogs',
  'awslogs-region': 'us-east-1',
  'awslogs-endpoint': endpoint.url,
  'awslogs-group': group,
  'awslogs-create-group': 'true',
  'awslogs-force-flush-interval-seconds': '1',
  ...extra,
});

describe('backend=awslogs through the engine', () => {
  test('the group and stream are created; messages, times and the stream names are Docker\'s', async () => {
    const group = `e2e-${run}-fields`;
    const started = Date.now();
    const [byId, byTag, byStream] = await Promise.all(
      [{}, { tag: 'app.{{.Name}}' }, { 'awslogs-stream': 'fixed-stream' }].map(async (extra) => {
        const container = await createContainer({ cmd: sh('echo out-line; echo err-line >&2'), driver: PLUGIN, opts: opts(group, extra) });
        await container.start();
        assert.equal(await waitExit(container, 60_000), 0);
        const name = (await container.inspect()).Name.replace(/^\//, '');
        return { id: container.id, name };
      }),
    );
    const ended = Date.now();
    const streams = {
      [byId!.id]: 'the full container id by default',
      [`app.${byTag!.name}`]: 'the tag when it is set',
      'fixed-stream': 'awslogs-stream',
    };
    for (const [stream, rule] of Object.entries(streams)) {
      const events = await waitUntil(() => {
        const found = endpoint.events(group, stream);
        return found.length >= 2 ? found : undefined;
      }, `both events in stream ${stream} (${rule})`, 30_000);
      assert.deepEqual(events.map((e) => e.message).sort(), ['err-line', 'out-line'], rule);
      for (const e of events) assert.ok(e.timestamp >= started - 1000 && e.timestamp <= ended + 1000, `${e.timestamp} within the run`);
    }
    assert.deepEqual([...endpoint.groups.get(group)!.keys()].sort(), Object.keys(streams).sort());
    assert.ok(endpoint.requests.every((r) => r.accessKeyId === CREDENTIALS.AWS_ACCESS_KEY_ID && r.region === 'us-east-1'));
  });

  test(`throttled and down for 10 s while a container prints ${LINES} lines: every line arrives, in order`, async (t: TestContext) => {
    const group = `e2e-${run}-outage`;
    endpoint.inject('ThrottlingException', 6);
    const container = await createContainer({ cmd: PACED, driver: PLUGIN, opts: opts(group, { 'awslogs-stream': 'lines' }) });
    const started = Date.now();
    await container.start();
    const exited = waitExit(container, 120_000).then((code) => ({ code, ms: Date.now() - started }));
    await sleep(2500);
    await endpoint.stop();
    await sleep(10_000);
    await endpoint.start();
    // Throttled again once shipping has resumed (a fresh batch: the outage's long backoff is over).
    const putsBefore = endpoint.requests.length;
    await waitUntil(() => endpoint.requests.slice(putsBefore).some((r) => r.operation === 'PutLogEvents' && r.status === 200), 'a put after the outage', 60_000);
    endpoint.inject('ThrottlingException', 4);
    const { code, ms } = await exited;
    assert.equal(code, 0);
    // The sleeps take 10 s: a container that waited on the outage would take 10 s more.
    assert.ok(ms < 17_000, `the container ran ${ms} ms`);
    const messages = await waitUntil(() => {
      const found = endpoint.events(group, 'lines').map((e) => e.message);
      return new Set(found).size >= LINES && found;
    }, `${LINES} lines`, 90_000);
    const { duplicates } = checkSequence(messages);
    const throttled = endpoint.requests.filter((r) => r.status === 400 && r.operation === 'PutLogEvents').length;
    assert.equal(throttled, 10 - endpoint.pendingInjections, 'each throttled put was retried');
    assert.ok(throttled >= 6);
    t.diagnostic(
      `container ran ${ms} ms (10 s of sleeps); ${throttled} puts throttled, endpoint down 10 s; all ${LINES} lines in order, ` +
        `${duplicates} duplicates, complete ${Date.now() - started} ms after the start`,
    );
  });

  test('a bad option fails docker run, naming it; a down endpoint does not', async () => {
    for (const [extra, pattern] of [
      [{ 'awslogs-create-group': 'maybe' }, /awslogs-create-group/],
      [{ 'awslogs-format': 'json/emf', 'awslogs-multiline-pattern': '^x' }, /awslogs-format/],
      [{ 'awslogs-grup': 'x' }, /unknown log opt 'awslogs-grup'/],
    ] as const) {
      const container = await createContainer({ cmd: sh('echo never'), driver: PLUGIN, opts: opts('g', extra) });
      await assert.rejects(container.start(), (err: Error) => pattern.test(err.message), JSON.stringify(extra));
    }
    const missing = await createContainer({ cmd: sh('echo never'), driver: PLUGIN, opts: { backend: 'awslogs', 'awslogs-region': 'us-east-1' } });
    await assert.rejects(missing.start(), /must specify a value for log opt 'awslogs-group'/);
    // Docker's driver fails here ("failed to create Cloudwatch log stream"); logship ships once the endpoint is up.
    const group = `e2e-${run}-down`;
    await endpoint.stop();
    try {
      const down = await createContainer({ cmd: sh('echo while-down'), driver: PLUGIN, opts: opts(group) });
      await down.start();
      assert.equal(await waitExit(down, 30_000), 0);
      await sleep(1500);
      await endpoint.start();
      const events = await waitUntil(() => endpoint.events(group, down.id).length > 0 && endpoint.events(group, down.id), 'the line logged while the endpoint was down', 60_000);
      assert.deepEqual(events.map((e) => e.message), ['while-down']);
    } finally {
      await endpoint.start();
    }
  });
});
