// What differs between the engines logship runs on, checked on the engine under test:
// - its own drivers as the oracle of test/fixtures/engine-log-opts.ts: they accept every option
//   the table lists for its version and refuse the ones only other versions know (`docker create`
//   validates log-opts); logship, in a container on this engine, takes those added since 20.10;
// - the open-file limit the engine gives the plugin's process, which Node raises to the hard one;
// - `docker logs -f` clients that go away: the daemon closes its ReadLogs request at the next
//   line, and the plugin's follower ends with it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createContainer, pollUntil, removeContainers, runToExit, sh } from './lib/containers.ts';
import { docker, PLUGIN } from './lib/docker-client.ts';
import { ensureTestImage } from './lib/image.ts';
import { openLogStream } from './lib/logs.ts';
import { pluginId, pluginPid } from './lib/plugin.ts';
import { readFileLimit } from '../../src/observability/file-limit.ts';
import { ENGINE_VERSIONS, logOptsFor, majorMinor, sampleConfig, type Driver } from '../fixtures/engine-log-opts.ts';

const run = promisify(execFile);

let version = '';
let image = '';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-e2e-engine-options-'));
const pem = path.join(dir, 'client.pem');
fs.writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');

/** Whether the engine's `docker create` takes the log config; the refusal's message if not. */
async function engineAccepts(driver: string, config: Record<string, string>): Promise<string | true> {
  try {
    const c = await docker.createContainer({
      Image: image,
      Cmd: ['true'],
      Labels: { 'logship-e2e': 'true' },
      HostConfig: { LogConfig: { Type: driver, Config: config }, NetworkMode: 'none' },
    });
    await c.remove({ force: true });
    return true;
  } catch (err) {
    return String((err as { json?: { message?: string } }).json?.message ?? err);
  }
}

describe('the engine’s own log-opts', () => {
  before(async () => {
    version = majorMinor((await docker.version()).Version);
    image = await ensureTestImage();
  });
  after(async () => {
    await removeContainers();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('its drivers accept what the table lists for its version, and refuse what only other versions know', async (t) => {
    const table = logOptsFor(version);
    const everKnown = new Map<Driver, Set<string>>();
    for (const v of ENGINE_VERSIONS) {
      for (const [d, keys] of Object.entries(logOptsFor(v)) as [Driver, string[]][]) {
        everKnown.set(d, new Set([...(everKnown.get(d) ?? []), ...keys]));
      }
    }
    // A distribution may build the engine without a driver (Debian's 28.5 has no gcplogs).
    const available = new Set(((await docker.info()) as { Plugins: { Log: string[] } }).Plugins.Log);
    const checks: { driver: Driver; key: string; accepted: boolean }[] = [];
    for (const [driver, keys] of Object.entries(table) as [Driver, string[]][]) {
      if (driver !== 'daemon' && !available.has(driver)) {
        t.diagnostic(`Docker ${version} has no ${driver} driver (it has: ${[...available].join(' ')}): its options are not checked here`);
        continue;
      }
      for (const key of keys) checks.push({ driver, key, accepted: true });
      for (const key of everKnown.get(driver) ?? []) if (!keys.includes(key)) checks.push({ driver, key, accepted: false });
    }
    const wrong: string[] = [];
    // A few at a time: each is a create and a remove.
    for (let i = 0; i < checks.length; i += 8) {
      await Promise.all(checks.slice(i, i + 8).map(async ({ driver, key, accepted }) => {
        // The daemon's own keys go with any driver; json-file is the default one.
        const result = await engineAccepts(driver === 'daemon' ? 'json-file' : driver, sampleConfig(driver, key, pem));
        if (accepted && result !== true) wrong.push(`${driver} ${key}: refused (${result})`);
        if (!accepted && result === true) wrong.push(`${driver} ${key}: accepted`);
      }));
    }
    t.diagnostic(`Docker ${version}: ${checks.filter((c) => c.accepted).length} options accepted, ${checks.filter((c) => !c.accepted).length} of other versions refused`);
    assert.deepEqual(wrong.sort(), [], `Docker ${version}'s drivers disagree with test/fixtures/engine-log-opts.ts`);
  });

  test('logship takes, in a running container, the options added to its drivers since 20.10', async () => {
    const base = logOptsFor('20.10');
    const table = logOptsFor(version);
    const shipping: Driver[] = ['fluentd', 'awslogs'];
    for (const driver of shipping) {
      const added = table[driver].filter((k) => !base[driver].includes(k));
      if (added.length === 0) continue;
      // Every option at once; a receiver that is down fails nothing at `docker run`.
      const opts: Record<string, string> = { backend: driver };
      for (const key of added) Object.assign(opts, sampleConfig(driver, key, pem));
      if (driver === 'awslogs') Object.assign(opts, { 'awslogs-region': 'eu-west-1', 'awslogs-endpoint': 'http://127.0.0.1:9' });
      await runToExit({ driver: PLUGIN, opts, cmd: sh('echo hello') });
    }
  });
});

async function pluginProcess(): Promise<number> {
  const id = await pluginId();
  return pollUntil('the plugin process', () => pluginPid(id));
}

function status(pid: number, field: string): string {
  return new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
}

describe('the plugin process on this engine', () => {
  after(() => removeContainers());

  test('runs with the open-file limit raised to the hard one, whatever soft limit the engine gave it', async (t) => {
    const pid = await pluginProcess();
    const plugin = readFileLimit(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    const shim = readFileLimit(fs.readFileSync(`/proc/${status(pid, 'PPid')}/limits`, 'utf8'));
    assert.ok(plugin && shim);
    t.diagnostic(`Docker ${(await docker.version()).Version}: the shim runs with ${shim.soft}/${shim.hard} open files, the plugin with ${plugin.soft}/${plugin.hard}`);
    assert.equal(plugin.hard, shim.hard);
    assert.equal(plugin.soft, plugin.hard);
  });

  test('warns in the daemon log, with the numbers, when its open files near the limit', async (t) => {
    const daemonLog = process.env.LOGSHIP_DOCKERD_LOG;
    if (!daemonLog) return t.skip('LOGSHIP_DOCKERD_LOG (the engine\'s log, which has the plugin\'s) is not set');
    const pid = await pluginProcess();
    const before = fs.readFileSync(daemonLog, 'utf8').length;
    const open = fs.readdirSync(`/proc/${pid}/fd`).length;
    const original = readFileLimit(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))!;
    // A limit the files already open fill to 85%, set under the running process.
    const low = Math.ceil(open / 0.85);
    await run('prlimit', ['--pid', String(pid), `--nofile=${low}:${original.hard}`]);
    try {
      const warning = await pollUntil('the plugin to warn about open files', () => {
        const line = fs.readFileSync(daemonLog, 'utf8').slice(before).split('\n').find((l) => l.includes('open files near the limit'));
        return line;
      }, 25_000, 500);
      assert.match(warning, new RegExp(`openFiles\\\\?":\\s*\\d+.*limit\\\\?":\\s*${low}\\b`));
      assert.match(warning, /roomForContainers/);
    } finally {
      await run('prlimit', ['--pid', String(pid), `--nofile=${original.soft}:${original.hard}`]);
    }
  });

  test('a docker logs -f client that goes away ends the follower at the next line', async () => {
    const pid = await pluginProcess();
    const c = await createContainer({ driver: PLUGIN, cmd: sh('i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done') });
    await c.start();
    const sockets = () => fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false; // closed meanwhile
      }
    }).length;
    await new Promise((r) => setTimeout(r, 500));
    const clients = Array.from({ length: 3 }, () => new AbortController());
    const streams = await Promise.all(clients.map((a) => openLogStream(c.id, { follow: true, tail: 0, signal: a.signal })));
    // Each follower is a connection from the daemon to the plugin's socket (one may be a
    // keep-alive connection it had open already), and each is closed when the follower ends.
    let lines = 0;
    for (const s of streams) s.on('data', () => lines++).on('error', () => {});
    await pollUntil('the followers to stream', () => (lines >= 6 ? true : undefined), 10_000, 100);
    const following = sockets();
    assert.ok(following >= 3, `${following} sockets for 3 followers`);
    for (const a of clients) a.abort();
    let now = following;
    await pollUntil(`the followers to end (${following} sockets while following)`, () => ((now = sockets()) <= following - 3 ? true : undefined), 10_000, 100)
      .catch((err: Error) => { throw new Error(`${err.message}: ${now} sockets`); });
    await c.kill().catch(() => {});
  });
});
