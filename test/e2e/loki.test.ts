// backend=loki and backend=otlp through the real engine and plugin, to the test receivers
// (test/integration/lib/loki-endpoint.ts, otlp-receiver.ts): the fields as documented; the
// outage (the receiver down 10 s while 100,000 lines are printed: all arrive, in order, the
// container not slowed); a container started while the receiver is unreachable starts and
// exits normally; a plugin killed (SIGKILL) mid-shipping loses nothing. Cases run concurrently.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PLUGIN } from './lib/docker-client.ts';
import { killPlugin } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES, PACED, checkSequence } from './lib/sequence.ts';
import { LokiEndpoint } from '../integration/lib/loki-endpoint.ts';
import { OtlpReceiver, plain } from '../integration/lib/otlp-receiver.ts';
import { waitUntil } from '../integration/lib/servers.ts';

const loki = new LokiEndpoint({ tenantRequired: true });
const otlp = new OtlpReceiver();

before(async () => {
  await loki.listen();
  await otlp.start();
});

after(async () => {
  await removeContainers();
  await loki.close();
  await otlp.stop();
  assert.deepEqual(loki.violations, [], 'the Loki endpoint saw pushes no Loki would take');
  assert.deepEqual(otlp.violations, [], 'the OTLP receiver saw records without a time');
});

const inspect = (format: string, id: string): string => execFileSync('docker', ['inspect', '-f', format, id], { encoding: 'utf8' }).trim();
const lokiOpts = (extra: Record<string, string> = {}) => ({ backend: 'loki', 'loki-url': loki.url, 'loki-tenant-id': 'e2e', 'loki-external-labels': 'cid={{.FullID}},container_name={{.Name}}', ...extra });
const otlpOpts = (protocol: string) => ({ backend: 'otlp', 'otlp-protocol': protocol, 'otlp-endpoint': protocol === 'grpc' ? otlp.grpcUrl : otlp.httpUrl });
const otlpLines = (id: string): string[] => otlp.records().filter((r) => r.resource['container.id'] === id).map((r) => String(plain(r.body)));

type Run = { id: string; ms: number };

async function run(cmd: string[], opts: Record<string, string>, labels: Record<string, string> = {}): Promise<Run> {
  const container = await createContainer({ cmd, driver: PLUGIN, opts, labels });
  const started = Date.now();
  await container.start();
  assert.equal(await waitExit(container, 120_000), 0);
  return { id: container.id, ms: Date.now() - started };
}

describe('backend=loki and backend=otlp through the engine', () => {
  test('fields as documented: Loki labels and entries; OTLP resource and records over http/protobuf and grpc', async () => {
    await Promise.all([
      (async () => {
        const { id } = await run(sh('echo out-line; echo err-line >&2'), lokiOpts(), { 'com.docker.compose.service': 'web', 'com.docker.compose.project': 'shop' });
        const entries = await waitUntil(() => {
          const found = loki.entries({ cid: id }, 'e2e');
          return found.length >= 2 ? found : undefined;
        }, 'both entries at Loki');
        const out = entries.find((e) => e.line === 'out-line')!;
        const err = entries.find((e) => e.line === 'err-line')!;
        const name = inspect('{{.Name}}', id).slice(1);
        assert.deepEqual({ ...out.labels, host: undefined }, { cid: id, container_name: name, compose_service: 'web', compose_project: 'shop', source: 'stdout', host: undefined });
        assert.ok(out.labels.host!.length > 0);
        assert.equal(err.labels.source, 'stderr');
        assert.ok(Math.abs(Number(out.timeNano / 1_000_000n) - Date.now()) < 120_000);
      })(),
      ...['http/protobuf', 'grpc'].map(async (protocol) => {
        const { id } = await run(sh('echo out-line; echo err-line >&2'), otlpOpts(protocol));
        const records = await waitUntil(() => {
          const found = otlp.records().filter((r) => r.resource['container.id'] === id);
          return found.length >= 2 ? found : undefined;
        }, `both records over ${protocol}`);
        const name = inspect('{{.Name}}', id).slice(1);
        const image = inspect('{{.Config.Image}}', id);
        const out = records.find((r) => plain(r.body) === 'out-line')!;
        const err = records.find((r) => plain(r.body) === 'err-line')!;
        assert.deepEqual({ ...out.resource, 'host.name': undefined }, {
          'container.id': id,
          'container.name': name,
          'container.image.name': image.replace(/:[^:/]*$/, ''),
          ...(/:[^:/]*$/.test(image) ? { 'container.image.tags': [image.split(':').at(-1)] } : {}),
          'container.image.id': inspect('{{.Image}}', id),
          'container.runtime.name': 'docker',
          'host.name': undefined,
          'service.name': name,
        });
        assert.deepEqual([out.severityText, err.severityText], ['INFO', 'ERROR']);
        assert.deepEqual(err.attributes!.map((a) => [a.key, plain(a.value)]), [['log.iostream', 'stderr']]);
      }),
    ]);
  });

  test(`the receiver down 10 s while ${LINES} lines are printed: all arrive in order, the container not slowed; a container started while it is unreachable starts normally`, async () => {
    await loki.close();
    await otlp.stop();
    const started = Date.now();
    const runs = [run(PACED, lokiOpts({ 'loki-min-backoff': '200ms', 'loki-max-backoff': '1s' })), run(PACED, otlpOpts('grpc')), run(sh('echo while-down'), lokiOpts())];
    await sleep(10_000);
    await loki.listen();
    await otlp.start();
    const [lokiRun, otlpRun, downRun] = (await Promise.all(runs)) as [Run, Run, Run];
    const lines = await waitUntil(() => {
      const got = loki.entries({ cid: lokiRun.id }, 'e2e').map((e) => e.line);
      return got.length >= LINES ? got : undefined;
    }, `${LINES} entries at Loki`, 120_000);
    checkSequence(lines);
    const records = await waitUntil(() => {
      const got = otlpLines(otlpRun.id);
      return new Set(got).size >= LINES ? got : undefined;
    }, `${LINES} records at the collector`, 120_000);
    checkSequence(records);
    await waitUntil(() => loki.entries({ cid: downRun.id }, 'e2e').length === 1, 'the line of the container started while Loki was down');
    // PACED takes about 10 s by itself: not waiting on the receiver, it is done well before the outage's end plus delivery.
    for (const r of [lokiRun, otlpRun]) assert.ok(r.ms < 30_000, `the container ran ${r.ms} ms`);
    assert.ok(downRun.ms < 10_000, `the container started while Loki was down ran ${downRun.ms} ms`);
    console.log(`outage: loki container ${lokiRun.ms} ms, otlp container ${otlpRun.ms} ms, all delivered ${Date.now() - started} ms after the start`);
  });

  test(`a plugin killed (SIGKILL) mid-shipping loses nothing (loki and otlp)`, async () => {
    // Started, not awaited: the kill comes while the lines are being shipped.
    const containers = await Promise.all([createContainer({ cmd: PACED, driver: PLUGIN, opts: lokiOpts() }), createContainer({ cmd: PACED, driver: PLUGIN, opts: otlpOpts('http/protobuf') })]);
    await Promise.all(containers.map((c) => c.start()));
    const [lokiRun, otlpRun] = containers as [{ id: string }, { id: string }];
    await waitUntil(() => loki.entries({ cid: lokiRun.id }, 'e2e').length > 0 && otlpLines(otlpRun.id).length > 0, 'the first lines at both', 30_000);
    const before = [loki.entries({ cid: lokiRun.id }, 'e2e').length, new Set(otlpLines(otlpRun.id)).size];
    const { killed, restarted } = await killPlugin();
    const lokiLines = await waitUntil(() => {
      const got = loki.entries({ cid: lokiRun.id }, 'e2e').map((e) => e.line);
      return got.length >= LINES ? got : undefined;
    }, `${LINES} entries at Loki after the kill`, 120_000);
    checkSequence(lokiLines);
    const records = await waitUntil(() => {
      const got = otlpLines(otlpRun.id);
      return new Set(got).size >= LINES ? got : undefined;
    }, `${LINES} records after the kill`, 120_000);
    const { duplicates } = checkSequence(records);
    for (const c of containers) assert.equal(await waitExit(c, 60_000), 0);
    console.log(`kill: plugin ${killed} -> ${restarted}; before it loki had ${before[0]}, otlp ${before[1]} of ${LINES}; all arrived, otlp ${duplicates} sent twice (OTLP has no dedup)`);
  });
});
