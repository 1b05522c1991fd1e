// gelf and splunk through the real engine, with Docker's own gelf and splunk drivers as the
// oracle: the same container through both ends in the same fields, but where the README
// documents an improvement. Then the outage case (the receiver down 10 s while 100,000 lines
// are printed: all arrive, in order), a plugin killed mid-shipping (nothing lost) and a
// container started while the receiver is down. Cases run concurrently.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PLUGIN } from './lib/docker-client.ts';
import { killPlugin } from './lib/plugin.ts';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { LINES, PACED, checkSequence } from './lib/sequence.ts';
import { GelfServer, type GelfMessage } from '../integration/lib/gelf-server.ts';
import { HecServer } from '../integration/lib/hec-server.ts';
import { waitUntil } from '../integration/lib/servers.ts';

const GELF_PORT = 12261;
const HEC_PORT = 18188;
const TOKEN = 'e2e-hec-token-5150';
const gelf = new GelfServer(GELF_PORT);
const hec = new HecServer({ port: HEC_PORT, token: TOKEN });

before(async () => {
  await gelf.start();
  await hec.listen();
});

after(async () => {
  await removeContainers();
  await gelf.stop();
  await hec.close();
  assert.deepEqual([...gelf.violations, ...hec.violations], []);
});

async function run(cmd: string[], driver: string, opts: Record<string, string>): Promise<string> {
  const container = await createContainer({ cmd, driver, opts });
  await container.start();
  assert.equal(await waitExit(container, 120_000), 0);
  return container.id;
}

const SCRIPT = sh('echo out-line; echo err-line >&2; echo "<b>&amp</b>"; echo; printf partial');
const messagesOf = (id: string): GelfMessage[] => gelf.messages((m) => m._container_id === id);
/** A GELF message without what differs from container to container. */
function comparable(m: GelfMessage): Record<string, unknown> {
  const { timestamp, _container_id, _container_name, _created, _tag, ...rest } = m;
  void _container_id, void _container_name, void _created, void _tag;
  assert.equal(typeof timestamp, 'number');
  return rest;
}

describe('gelf and splunk through the engine, Docker\'s drivers the oracle', () => {
  test('gelf over tcp and udp: the same messages as Docker\'s gelf driver', async () => {
    await Promise.all(
      (['tcp', 'udp'] as const).map(async (transport) => {
        const address = `${transport}://127.0.0.1:${GELF_PORT}`;
        const opts = { labels: 'logship-e2e' };
        const [dockerId, oursId] = await Promise.all([
          run(SCRIPT, 'gelf', { ...opts, 'gelf-address': address }),
          run(SCRIPT, PLUGIN, { ...opts, backend: 'gelf', 'gelf-address': address }),
        ]);
        const [docker, ours] = await Promise.all(
          [dockerId, oursId].map((id) => waitUntil(() => messagesOf(id).length >= 4 && messagesOf(id), `4 messages from ${id.slice(0, 12)}`, 30_000)),
        );
        const sort = (ms: GelfMessage[]) => ms.map(comparable).sort((a, b) => String(a.short_message).localeCompare(String(b.short_message)));
        assert.deepEqual(sort(ours!), sort(docker!), transport);
        assert.deepEqual(Object.keys(ours![0]!), Object.keys(docker![0]!), 'Go\'s key order');
        assert.equal(ours![0]!._container_id, oursId);
      }),
    );
  });

  test('splunk, inline, json and raw: the same events as Docker\'s splunk driver', async () => {
    await Promise.all(
      (['inline', 'json', 'raw'] as const).map(async (format) => {
        const opts = { 'splunk-url': hec.url, 'splunk-token': TOKEN, 'splunk-format': format, 'splunk-source': 'src', 'splunk-sourcetype': 'st', tag: `${format}-{{.ID}}` };
        const [dockerId, oursId] = await Promise.all([run(SCRIPT, 'splunk', opts), run(SCRIPT, PLUGIN, { ...opts, backend: 'splunk' })]);
        const events = (id: string) => hec.events.filter((e) => JSON.stringify(e.event).includes(`${format}-${id.slice(0, 12)}`));
        const count = format === 'raw' ? 4 : 5; // raw: the blank line is not sent, by either
        const [docker, ours] = await Promise.all(
          [dockerId, oursId].map((id) => waitUntil(() => events(id).length >= count && events(id), `${count} events`, 30_000)),
        );
        const strip = (e: (typeof hec.events)[number], id: string) =>
          JSON.parse(JSON.stringify({ ...e, time: undefined, channel: undefined }).replaceAll(id.slice(0, 12), 'ID'));
        const sort = (list: unknown[]) => list.map((x) => JSON.stringify(x)).sort();
        assert.deepEqual(sort(ours!.map((e) => strip(e, oursId))), sort(docker!.map((e) => strip(e, dockerId))), format);
        for (const e of ours!) assert.match(String(e.time), /^\d+\.\d{6}$/);
      }),
    );
  });

  test('splunk, an empty tag: no tag, as Docker\'s splunk driver (inline, raw)', async () => {
    await Promise.all(
      (['inline', 'raw'] as const).map(async (format) => {
        const opts = (who: string) => ({ 'splunk-url': hec.url, 'splunk-token': TOKEN, 'splunk-format': format, 'splunk-source': `notag-${format}-${who}`, tag: '' });
        await Promise.all([run(SCRIPT, 'splunk', opts('docker')), run(SCRIPT, PLUGIN, { ...opts('ours'), backend: 'splunk' })]);
        const events = (who: string) => hec.events.filter((e) => e.source === `notag-${format}-${who}`);
        const count = format === 'raw' ? 4 : 5;
        const [docker, ours] = await Promise.all(['docker', 'ours'].map((who) => waitUntil(() => events(who).length >= count && events(who), `${count} events`, 30_000)));
        const strip = (e: (typeof hec.events)[number]) => JSON.stringify({ ...e, time: undefined, channel: undefined, source: undefined });
        assert.deepEqual(ours!.map(strip).sort(), docker!.map(strip).sort(), format);
        for (const e of ours!) assert.ok(typeof e.event === 'string' ? !/^[0-9a-f]{12} /.test(e.event) : !('tag' in (e.event as object)), format);
      }),
    );
  });

  test('a container started while neither receiver listens starts normally (Docker\'s gelf tcp and splunk drivers fail it)', async () => {
    const down = [
      { backend: 'gelf', 'gelf-address': 'tcp://127.0.0.1:1' },
      { backend: 'splunk', 'splunk-url': 'http://127.0.0.1:1', 'splunk-token': TOKEN },
    ];
    await Promise.all(down.map((opts) => run(sh('echo started'), PLUGIN, opts)));
  });

  const receivers = [
    {
      name: 'gelf (tcp)',
      opts: { backend: 'gelf', 'gelf-address': `tcp://127.0.0.1:${GELF_PORT}`, 'gelf-tcp-reconnect-delay': '0' },
      stop: () => gelf.stop(),
      start: () => gelf.start(),
      lines: (id: string) => messagesOf(id).map((m) => m.short_message),
    },
    {
      name: 'splunk',
      opts: { backend: 'splunk', 'splunk-url': `http://127.0.0.1:${HEC_PORT}`, 'splunk-token': TOKEN },
      stop: () => hec.close(),
      start: () => hec.listen(),
      lines: (id: string) => hec.events.filter((e) => (e.event as { tag?: string }).tag === id.slice(0, 12)).map((e) => String((e.event as { line: unknown }).line)),
    },
  ];

  test(`down for 10 s while a container prints ${LINES} lines: every line arrives, in order (gelf, splunk at once)`, async (t: TestContext) => {
    const containers = await Promise.all(receivers.map((o) => createContainer({ cmd: PACED, driver: PLUGIN, opts: o.opts })));
    const started = Date.now();
    await Promise.all(containers.map((c) => c.start()));
    await sleep(1500);
    await Promise.all(receivers.map((o) => o.stop()));
    const exited = Promise.all(containers.map((c) => waitExit(c, 120_000).then((code) => ({ code, ms: Date.now() - started }))));
    await sleep(10_000);
    await Promise.all(receivers.map((o) => o.start()));
    const runs = await exited;
    for (const { code } of runs) assert.equal(code, 0);
    await Promise.all(
      receivers.map(async (o, i) => {
        const id = containers[i]!.id;
        const lines = await waitUntil(() => new Set(o.lines(id)).size >= LINES && o.lines(id), `${LINES} lines at ${o.name}`, 90_000);
        const { duplicates } = checkSequence(lines);
        t.diagnostic(`${o.name}: container ran ${runs[i]!.ms} ms (9 s of it sleeps); all ${LINES} lines in order, ${duplicates} duplicates, complete ${Date.now() - started} ms after the start`);
      }),
    );
  });

  test(`a plugin killed (SIGKILL) while ${LINES} lines are printed and shipped loses nothing (gelf tcp, splunk at once)`, async (t: TestContext) => {
    const containers = await Promise.all(receivers.map((o) => createContainer({ cmd: PACED, driver: PLUGIN, opts: o.opts })));
    await Promise.all(containers.map((c) => c.start()));
    const exited = Promise.all(containers.map((c) => waitExit(c, 120_000)));
    const count = (i: number) => new Set(receivers[i]!.lines(containers[i]!.id)).size;
    await waitUntil(() => receivers.every((_, i) => count(i) > 0), 'the first lines at both receivers', 30_000);
    const atKill = receivers.map((_, i) => count(i));
    const { how } = await killPlugin();
    // Else the kill fell after the shipping and proves nothing.
    for (const [i, n] of atKill.entries()) assert.ok(n < LINES, `${receivers[i]!.name}: all ${LINES} lines had arrived before the kill`);
    for (const code of await exited) assert.equal(code, 0);
    await Promise.all(
      receivers.map(async (o, i) => {
        const id = containers[i]!.id;
        const lines = await waitUntil(() => new Set(o.lines(id)).size >= LINES && o.lines(id), `${LINES} lines at ${o.name}`, 90_000);
        const { duplicates } = checkSequence(lines);
        t.diagnostic(
          `${o.name}: killed with ${atKill[i]} of ${LINES} lines delivered, ${how}; ` +
            `all arrived, in order, ${duplicates} duplicates` +
            (o.name.startsWith('gelf') ? `; ${gelf.cutAtClose} connections cut inside a frame` : ''),
        );
      }),
    );
  });
});
