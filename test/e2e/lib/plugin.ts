// The plugin under test as a process on the host: killing it, force-disabling and enabling it,
// and changing its settings (which the engine allows only while it is disabled).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Journald } from '../../integration/lib/servers.ts';
import { pollUntil } from './containers.ts';
import { PLUGIN } from './docker-client.ts';

const run = promisify(execFile);

export async function pluginId(): Promise<string> {
  return (await run('docker', ['plugin', 'inspect', '-f', '{{.Id}}', PLUGIN])).stdout.trim();
}

/**
 * The PID, on the host, of the plugin's own process. The engine runs a plugin as a containerd
 * task in the `plugins.moby` namespace whose id is the plugin id, so its process is the child
 * of the shim started with `-namespace plugins.moby -id <plugin id>`. (The process's
 * /proc/PID/root shows '/' from the host, so the rootfs path cannot identify it.)
 */
export function pluginPid(id: string): number | undefined {
  const procs = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const read = (pid: string, file: string): string => {
    try {
      return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
    } catch {
      return ''; // exited meanwhile
    }
  };
  const shim = procs.find((pid) => {
    const argv = read(pid, 'cmdline').split('\0');
    const i = argv.indexOf('-id');
    return argv[0]?.includes('containerd-shim') && argv.includes('plugins.moby') && argv[i + 1] === id;
  });
  if (!shim) return undefined;
  const child = procs.find((pid) => /^PPid:\s*(\d+)$/m.exec(read(pid, 'status'))?.[1] === shim);
  return child === undefined ? undefined : Number(child);
}

export interface Kill {
  killed: number;
  restarted: number;
  /**
   * Whether the engine restarted it. Now and then (on 20.10 and 28.5, more often on a busy
   * machine) the engine hears of the exit late or not at all and leaves the plugin without a
   * process: then, after 10 s, it is disabled and enabled again, what an operator would do,
   * and this is false.
   */
  byEngine: boolean;
  /** Which of the two, in words, for a test's diagnostics. */
  how: string;
}

/** kill -9 of the plugin process; resolves once a new one runs in its place and answers. */
export async function killPlugin(): Promise<Kill> {
  const id = await pluginId();
  const killed = pluginPid(id);
  if (killed === undefined) throw new Error(`no process found for plugin ${PLUGIN} (${id})`);
  process.kill(killed, 'SIGKILL');
  const restarted = await waitForRunning(id, killed, 10_000, 2_000);
  if (restarted !== undefined) return { killed, restarted, byEngine: true, how: 'restarted by the engine' };
  // A late restart of the engine's own can still replace the process enabled here: again, then.
  for (let attempt = 1; ; attempt++) {
    await disablePlugin();
    await enablePlugin();
    const pid = await running(id, killed, 5_000);
    if (pid !== undefined) return { killed, restarted: pid, byEngine: false, how: 'not restarted by the engine within 10 s: disabled and enabled' };
    if (attempt === 3) throw new Error(`plugin ${PLUGIN} enabled three times after a kill, and no process of it stayed`);
  }
}

/** `disable -f`; a plugin the engine had already disabled (after a failed restart) is left so. */
export async function disablePlugin(): Promise<void> {
  try {
    await run('docker', ['plugin', 'disable', '-f', PLUGIN]);
  } catch (err) {
    if (!/already disabled/.test(String((err as { stderr?: string }).stderr))) throw err;
  }
}

/**
 * --timeout 0, as `make install` enables it: docker logs -f is not cut after 30 s. Resolves
 * once the plugin is enabled with a process whose socket answers. Right after a forced
 * disable or a kill the engine may still hold the old containerd task and refuse ("id
 * already in use"), or handle the old task's exit late and replace the new process with a
 * restart of its own, which can fail and leave the plugin disabled: every refusal is
 * retried, and a plugin left enabled without a process is disabled first, for up to 90 s.
 */
export async function enablePlugin(): Promise<void> {
  const id = await pluginId();
  const refusals: string[] = [];
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; ) {
    if (await isEnabled()) {
      if ((await waitForRunning(id, undefined, 3_000)) !== undefined) return;
      await disablePlugin();
    }
    try {
      await run('docker', ['plugin', 'enable', '--timeout', '0', PLUGIN]);
    } catch (err) {
      refusals.push(String((err as { stderr?: string }).stderr).trim());
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  throw new Error(`plugin ${PLUGIN} not running 90 s after enabling it; the engine answered: ${refusals.join(' | ')}`);
}

/** The process of an enabled plugin whose socket answers, other than `not`, that is still so `settleMs` later. */
async function running(id: string, not?: number, settleMs = 0): Promise<number | undefined> {
  const answering = async () => {
    const pid = pluginPid(id);
    return pid !== undefined && pid !== not && (await isEnabled()) && (await socketAnswers(id)) ? pid : undefined;
  };
  const pid = await answering();
  if (pid === undefined || settleMs === 0) return pid;
  await new Promise((r) => setTimeout(r, settleMs));
  return (await answering()) === pid ? pid : undefined;
}

/** running(), polled for up to `ms`; undefined if it never was. */
function waitForRunning(id: string, not: number | undefined, ms: number, settleMs = 0): Promise<number | undefined> {
  return pollUntil(`plugin ${PLUGIN} running`, () => running(id, not, settleMs), ms, 250).catch(() => undefined);
}

/** The engine's own check before it marks a plugin enabled: a connection to its socket. */
function socketAnswers(id: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path.join('/run/docker/plugins', id, 'logship.sock'));
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function isEnabled(): Promise<boolean> {
  return (await run('docker', ['plugin', 'inspect', '-f', '{{.Enabled}}', PLUGIN])).stdout.trim() === 'true';
}

/** Applies settings (`KEY=value`, `data.source=...`); resolves to a function that puts the old ones back. */
export async function changePluginSettings(settings: Record<string, string>): Promise<() => Promise<void>> {
  const inspect = JSON.parse((await run('docker', ['plugin', 'inspect', PLUGIN])).stdout)[0] as {
    Settings: { Env: string[]; Mounts: { Name: string; Source: string }[] };
  };
  const previous: Record<string, string> = {};
  for (const key of Object.keys(settings)) {
    if (key.endsWith('.source')) {
      const mount = inspect.Settings.Mounts.find((m) => m.Name === key.slice(0, -'.source'.length));
      previous[key] = mount?.Source ?? '';
    } else {
      const entry = inspect.Settings.Env.find((e) => e.startsWith(`${key}=`));
      previous[key] = entry?.slice(key.length + 1) ?? '';
    }
  }
  const apply = async (values: Record<string, string>) => {
    if (await isEnabled()) await disablePlugin();
    await run('docker', ['plugin', 'set', PLUGIN, ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
    await enablePlugin();
  };
  await apply(settings);
  return () => apply(previous);
}

/** Settings for the duration of fn, with the old ones put back. */
export async function withPluginSettings<T>(settings: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const restore = await changePluginSettings(settings);
  try {
    return await fn();
  } finally {
    await restore();
  }
}

/**
 * One series of the plugin's /metrics at `address` (its METRICS_ADDRESS setting), written as
 * the text format prints it (`name{label="v",...}`, labels in the order the code gives them);
 * 0 while the series is absent.
 */
export async function metricValue(address: string, series: string): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/**
 * Reads and discards whatever the daemon writes into the plugin's FIFOs for `ms`, from the
 * host. Only for a failed test: a plugin that does not read its FIFOs leaves the containers
 * writing into them blocked, and the daemon then hangs on them (even `docker rm -f`).
 */
export async function drainPluginFifos(ms: number): Promise<void> {
  const root = (await run('docker', ['info', '-f', '{{.DockerRootDir}}'])).stdout.trim();
  const dir = path.join(root, 'plugins', await pluginId(), 'rootfs', 'run', 'docker', 'logging');
  const readers = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).map((name) => {
    const fd = fs.openSync(path.join(dir, name), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const socket = new net.Socket({ fd, readable: true, writable: false });
    socket.on('data', () => {});
    socket.on('error', () => {});
    return socket;
  });
  await new Promise((r) => setTimeout(r, ms));
  for (const socket of readers) socket.destroy();
}

export interface PluginJournald {
  journald: Journald;
  /** Points the mount back where it was, then stops journald and removes its state. */
  stop(): Promise<void>;
}

/** A systemd-journald of its own namespace (fresh state), with the plugin's `journal` mount pointed at it. */
export async function startPluginJournald(namespace: string, logFile: string): Promise<PluginJournald> {
  const journald = new Journald(namespace, logFile);
  journald.removeState();
  await journald.start();
  const restore = await changePluginSettings({ 'journal.source': journald.runDir });
  return {
    journald,
    async stop() {
      try {
        await restore();
      } finally {
        await journald.stop();
        journald.removeState();
      }
    },
  };
}
