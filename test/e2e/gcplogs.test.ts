// gcplogs through the real engine and plugin: containers run with `--log-opt backend=gcplogs`
// and Docker's option names ship to the test's Cloud Logging endpoint (plaintext gRPC on
// loopback, through logship's gcp-endpoint). The plugin's GCE_METADATA_HOST points at a fake
// metadata server, so the project and the instance are discovered as on GCE. The endpoint
// throttles, fails and goes down for 10 s while a container prints 100,000 lines: all
// arrive, in order, and the container never waits.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { PLUGIN } from './lib/docker-client.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES, PACED, checkSequence } from './lib/sequence.ts';
import { changePluginSettings } from './lib/plugin.ts';
import { CloudLoggingEndpoint } from '../integration/lib/cloud-logging-endpoint.ts';
import { GceMetadataServer, METADATA } from '../integration/lib/gce-metadata-server.ts';
import { waitUntil } from '../integration/lib/servers.ts';

const endpoint = new CloudLoggingEndpoint(15020);
const metadata = new GceMetadataServer(15021);
const OPTS = { backend: 'gcplogs', 'gcp-endpoint': `http://${endpoint.address}` };

/** Puts the plugin's GCE_METADATA_HOST back (the suite keeps it on loopback: scripts/test.sh). */
let restoreSettings: (() => Promise<void>) | undefined;

before(async () => {
  await endpoint.start();
  await metadata.start();
  restoreSettings = await changePluginSettings({ GCE_METADATA_HOST: metadata.host });
});

after(async () => {
  await removeContainers();
  try {
    await restoreSettings?.();
  } finally {
    endpoint.stop();
    await metadata.stop();
  }
});

async function runContainer(cmd: string[], opts: Record<string, string>): Promise<{ id: string; ms: number }> {
  const container = await createContainer({ cmd, driver: PLUGIN, opts });
  const started = Date.now();
  await container.start();
  assert.equal(await waitExit(container, 120_000), 0);
  return { id: container.id, ms: Date.now() - started };
}

function entriesOf(id: string) {
  return endpoint.written.filter((e) => (e.jsonPayload.container as { id?: string } | undefined)?.id === id);
}

describe('gcplogs through the engine', () => {
  test("entries as Docker's gcplogs writes them, plus severity; project and instance from the metadata server", async () => {
    const { id } = await runContainer(sh('echo out-line; echo err-line >&2'), { ...OPTS, 'gcp-log-cmd': 'true', labels: 'logship-e2e' });
    const entries = await waitUntil(() => (entriesOf(id).length >= 2 ? entriesOf(id) : undefined), 'both entries', 30_000);
    const info = JSON.parse(execFileSync('docker', ['inspect', id], { encoding: 'utf8' }))[0];
    const request = endpoint.accepted.find((r) => r.entries.some((e) => (e.jsonPayload.container as { id: string }).id === id))!;
    assert.equal(request.logName, `projects/${METADATA.project}/logs/gcplogs-docker-driver`);
    assert.deepEqual(request.resource, { type: 'gce_instance', labels: { instance_id: METADATA.id, zone: 'europe-west1-b' } });
    const out = entries.find((e) => e.jsonPayload.message === 'out-line')!;
    const err = entries.find((e) => e.jsonPayload.message === 'err-line')!;
    assert.deepEqual(out.jsonPayload, {
      instance: { zone: 'europe-west1-b', name: METADATA.name, id: METADATA.id },
      container: {
        name: info.Name,
        id,
        imageName: info.Config.Image,
        imageId: info.Image,
        created: info.Created,
        command: 'sh -c echo out-line; echo err-line >&2',
        metadata: { 'logship-e2e': 'true' },
      },
      message: 'out-line',
    });
    assert.equal(out.severity, 'INFO');
    assert.equal(err.severity, 'ERROR');
    assert.ok(metadata.requests.some((r) => r.startsWith('/computeMetadata/v1/project/project-id')), 'the project came from the metadata server');
  });

  test('a bad option fails `docker run`, naming it', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'gcp-log-cmd': 'maybe' }, /invalid value 'maybe' for log opt 'gcp-log-cmd'/],
      [{ 'gcp-endpoint': 'ftp://x/y' }, /log opt 'gcp-endpoint': expected host:port/],
      [{ 'gcp-project': 'Not A Project' }, /log opt 'gcp-project'/],
      [{ 'gcp-no-such': 'x' }, /unknown log opt 'gcp-no-such'/],
    ];
    for (const [opts, expected] of cases) {
      const c = await createContainer({ cmd: sh('echo should not run'), driver: PLUGIN, opts: { ...OPTS, ...opts } });
      const message = await c.start().then(
        () => '',
        (e: { json?: { message?: string }; message: string }) => String(e.json?.message ?? e.message),
      );
      assert.match(message, expected, `start error: ${message}`);
      assert.equal((await c.inspect()).State.Status, 'created', 'the container did not run');
    }
  });

  test(`throttled, failing and down for 10 s while a container prints ${LINES} lines: every line arrives, in order`, async (t: TestContext) => {
    // Throttled from the first send, down from 1.5 s to 11.5 s, then 5xx errors once shipping
    // has resumed (the engine's backoff starts again from 1 s after a batch goes through).
    endpoint.failNext(grpc.status.RESOURCE_EXHAUSTED, 2);
    const callsBefore = endpoint.calls;
    const container = await createContainer({ cmd: PACED, driver: PLUGIN, opts: { ...OPTS, 'gcp-project': 'e2e-project' } });
    const started = Date.now();
    await container.start();
    const exited = waitExit(container, 120_000).then((code) => ({ code, ms: Date.now() - started }));
    await sleep(1500);
    endpoint.stop();
    const downAt = Date.now();
    await sleep(10_000);
    await endpoint.start();
    const downMs = Date.now() - downAt;
    const resumedWith = entriesOf(container.id).length;
    await waitUntil(() => entriesOf(container.id).length > resumedWith, 'shipping to resume after the outage', 60_000);
    endpoint.failNext(grpc.status.UNAVAILABLE, 1);
    endpoint.failNext(grpc.status.INTERNAL, 1);
    const { code, ms } = await exited;
    assert.equal(code, 0);
    assert.ok(ms < 20_000, `the container ran ${ms} ms: it waited on delivery`);
    const messages = await waitUntil(
      () => {
        const found = entriesOf(container.id).map((e) => e.jsonPayload.message as string);
        return new Set(found).size >= LINES ? found : undefined;
      },
      `${LINES} lines at the endpoint`,
      90_000,
    ).catch((err: Error) => {
      const found = new Set(entriesOf(container.id).map((e) => Number(e.jsonPayload.message)));
      throw new Error(`${err.message}: ${found.size} distinct arrived`);
    });
    const { duplicates } = checkSequence(messages);
    assert.deepEqual(endpoint.violations, [], 'a request broke the API limits or its order');
    t.diagnostic(
      `endpoint down ${downMs} ms, 4 injected errors; container ran ${ms} ms (10 s of it sleeps); all ${LINES} lines in order, ` +
        `${duplicates} duplicates, ${endpoint.calls - callsBefore} calls, complete ${Date.now() - started} ms after the start`,
    );
  });
});
