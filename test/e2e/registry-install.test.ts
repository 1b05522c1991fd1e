// Installing the plugin the operator's way: `make push` to a private TLS registry on 127.0.0.1,
// then `docker plugin install` from it, then logging through the installed copy.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { assertNoDaemonError, assertSameBytes } from './lib/compare.ts';
import { removeContainers, runToExit, sh } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { readLogs, seqText } from './lib/logs.ts';
import { startRegistry, type Registry } from './lib/registry.ts';
import { findStoreDir } from './lib/store.ts';

const exec = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

async function sh$(cmd: string, args: string[], timeoutMs = 180_000): Promise<string> {
  try {
    const { stdout, stderr } = await exec(cmd, args, { cwd: REPO_ROOT, maxBuffer: 64 << 20, timeout: timeoutMs });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('install from a private registry', () => {
  let dir = '';
  let dataDir = '';
  let registry: Registry | undefined;
  let installed = '';

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-e2e-registry-'));
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-e2e-data-'));
    registry = await startRegistry(dir);
  });

  after(async () => {
    await removeContainers();
    if (installed) {
      await exec('docker', ['plugin', 'disable', '-f', installed]).catch(() => {});
      await exec('docker', ['plugin', 'rm', '-f', installed]).catch(() => {});
    }
    await registry?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('make push, docker plugin install, then log through it', async () => {
    assert.ok(registry);
    const ref = `${registry.address}/${PLUGIN.includes(':') ? PLUGIN : `${PLUGIN}:latest`}`;

    await sh$('make', ['--no-print-directory', 'push', `REGISTRY=${registry.address}`, `PLUGIN=${PLUGIN}`]);
    // make push removes its local copy; the local logship stays.
    const list = await sh$('docker', ['plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}']);
    assert.doesNotMatch(list, new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `, 'm'), 'make push left its copy installed');
    assert.match(list, new RegExp(`^${PLUGIN} true$`, 'm'), `${PLUGIN} is still installed and enabled`);

    installed = ref;
    // The operator's command, with the data mount pointed at a folder of its own.
    await sh$('docker', ['plugin', 'install', '--grant-all-permissions', ref, `data.source=${dataDir}`]);
    const enabled = (await sh$('docker', ['plugin', 'inspect', '-f', '{{.Enabled}}', ref])).trim();
    assert.equal(enabled, 'true', 'the installed plugin is enabled');

    const { id } = await runToExit({ cmd: sh('seq 1 1000; echo "from the registry" >&2'), driver: ref });
    const logs = await readLogs(id);
    assertNoDaemonError(logs, 'docker logs');
    assertSameBytes(logs.stdout, seqText(1, 1000), 'stdout');
    assertSameBytes(logs.stderr, 'from the registry\n', 'stderr');
    const tail = await readLogs(id, { tail: 3 });
    // The last 3 records: the stderr line and two stdout lines, or (as the daemon's stdout and
    // stderr copiers race) three stdout lines.
    const tailOut = tail.stdout.toString('utf8');
    assert.ok(tailOut === seqText(998, 1000) || (tailOut === seqText(999, 1000) && tail.stderr.toString() === 'from the registry\n'),
      `--tail 3: ${JSON.stringify(tailOut)} ${JSON.stringify(tail.stderr.toString())}`);
    // Its store went to the data.source given at install.
    assert.ok(findStoreDir(id, dataDir), `no store for the container under ${dataDir}`);
  });
});
