// Running test containers with a given log driver, waiting for them, and removing them afterwards.
import type Docker from 'dockerode';
import { docker } from './docker-client.ts';
import { ensureTestImage } from './image.ts';

export interface ContainerSpec {
  /** argv; a shell script is ['sh', '-c', script]. */
  cmd: string[];
  /** Log driver, e.g. PLUGIN, 'json-file', 'local'. */
  driver: string;
  /** Log opts (--log-opt). */
  opts?: Record<string, string>;
  /** Container labels beside logship-e2e (compose's, for a backend that reads them). */
  labels?: Record<string, string>;
  /** Environment (`NAME=value`), as `docker run -e`. */
  env?: string[];
}

const created = new Set<string>();

export function sh(script: string): string[] {
  return ['sh', '-c', script];
}

const pluginChecks = new Map<string, Promise<void>>();

/** Fails at once, and clearly, when a plugin driver is not installed and enabled (the daemon would retry for 15 s). */
function checkPlugin(driver: string): Promise<void> {
  if (!driver.includes(':') && !driver.includes('/')) return Promise.resolve(); // a built-in driver
  let check = pluginChecks.get(driver);
  if (!check) {
    check = docker
      .getPlugin(driver, undefined)
      .inspect()
      .then(
        (p: { Enabled?: boolean }) => {
          if (!p.Enabled) throw new Error(`the plugin ${driver} is installed but disabled; run 'make install'`);
        },
        (err: { statusCode?: number }) => {
          throw err.statusCode === 404 ? new Error(`the plugin ${driver} is not installed; run 'make install' first`) : err;
        },
      );
    pluginChecks.set(driver, check);
  }
  return check;
}

/** Creates (does not start) a container; it is removed by removeContainers(). */
export async function createContainer(spec: ContainerSpec): Promise<Docker.Container> {
  await checkPlugin(spec.driver);
  const image = await ensureTestImage();
  const container = await docker.createContainer({
    Image: image,
    Cmd: spec.cmd,
    Env: spec.env ?? [],
    Tty: false,
    Labels: { ...spec.labels, 'logship-e2e': 'true' },
    HostConfig: {
      LogConfig: { Type: spec.driver, Config: spec.opts ?? {} },
      NetworkMode: 'none',
    },
  });
  created.add(container.id);
  return container;
}

/** Waits for a started container to exit, failing (and killing it) after timeoutMs. */
export async function waitExit(container: Docker.Container, timeoutMs = 60_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      container.kill().catch(() => {});
      reject(new Error(`container ${container.id.slice(0, 12)} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const result = (await Promise.race([container.wait(), timeout])) as { StatusCode: number };
    return result.StatusCode;
  } finally {
    clearTimeout(timer);
  }
}

export interface Finished {
  container: Docker.Container;
  id: string;
  exitCode: number;
}

/** Creates, starts and waits for a container; fails if it exits non-zero. */
export async function runToExit(spec: ContainerSpec, timeoutMs = 60_000): Promise<Finished> {
  const container = await createContainer(spec);
  await container.start();
  const exitCode = await waitExit(container, timeoutMs);
  if (exitCode !== 0) {
    throw new Error(`container ${container.id.slice(0, 12)} (${spec.driver}: ${spec.cmd.join(' ')}) exited with ${exitCode}`);
  }
  return { container, id: container.id, exitCode };
}

/** Removes every container this process created. */
export async function removeContainers(): Promise<void> {
  const ids = [...created];
  created.clear();
  await Promise.all(
    ids.map(async (id) => {
      try {
        await docker.getContainer(id).remove({ force: true, v: true });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }),
  );
}

/** Polls fn until it returns a value other than undefined, or fails after timeoutMs. */
export async function pollUntil<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
