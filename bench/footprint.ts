// What a plugin costs to install and to run, against the discard-only plugin (the floor: the same
// Node, a program that only drains FIFOs) in the same run, on the local engine.
//
//   make bench-footprint    (or, after `make plugin`: npm run bench:footprint)
//
// For each plugin folder of PLUGIN_DIRS (default plugin; a comma list compares builds, e.g. an
// older one's and this one's) and for the floor:
// 1. size: the rootfs as files (apparent size), gzipped as a tarball (`tar c | gzip -6`), and as
//    it is pushed: `docker plugin push` to a private registry on 127.0.0.1 (Debian's
//    docker-registry), the sizes its manifest lists (the engine's Go gzip: a few % larger);
// 2. start: the seconds `docker plugin enable` takes (the engine waits for the plugin's socket to
//    answer), median of ROUNDS enables;
// 3. memory: the plugin process's RSS 2 s after it started, and with IDLE containers attached and
//    silent (each printed one line).
// Env: PLUGIN_DIRS (plugin), ROUNDS (5), IDLE (100).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type Docker from 'dockerode';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { ensureTestImage } from '../test/e2e/lib/image.ts';
import { startRegistry, type Registry } from '../test/e2e/lib/registry.ts';
import { PluginProcess } from './plugin-process.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PLUGIN_DIRS = (process.env.PLUGIN_DIRS ?? 'plugin').split(',').map((d) => path.resolve(ROOT, d.trim()));
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const IDLE = Number(process.env.IDLE ?? 100);
const MB = 1e6;

interface Footprint {
  label: string;
  rootfsBytes: number;
  gzipBytes: number;
  pushedBytes: number;
  enableSeconds: number;
  rssStartMb: number;
  rssIdleMb: number;
}

// Beside the plugin folders, on their mount: the copies are hard links.
const work = fs.mkdtempSync(path.join(ROOT, 'build', 'footprint-'));
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function du(dir: string): number {
  return Number(run('du', ['-sb', dir]).split('\t')[0]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The manifest's sizes (config and layers) of ref, pushed to the registry. */
function pushedSize(registry: Registry, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: registry.host,
        port: registry.port,
        path: `/v2/${name}/manifests/latest`,
        ca: fs.readFileSync(registry.caPath),
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          try {
            const m = JSON.parse(body) as { config: { size: number }; layers: { size: number }[] };
            resolve(m.config.size + m.layers.reduce((n, l) => n + l.size, 0));
          } catch (err) {
            reject(new Error(`manifest of ${name}: ${String(err)}: ${body.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('error', reject);
  });
}

/** A hard-linked copy with a fresh release file (a layer unlike any other: see `make push`). */
function copyOf(dir: string, label: string): string {
  const copy = path.join(work, label);
  run('cp', ['-al', dir, copy]);
  const release = path.join(copy, 'rootfs', 'etc', 'logship-release');
  const text = fs.existsSync(release) ? fs.readFileSync(release, 'utf8') : '';
  fs.rmSync(release, { force: true });
  fs.writeFileSync(release, `${text}footprint ${label} ${new Date().toISOString()}\n`);
  return copy;
}

async function measure(label: string, dir: string, registry: Registry, image: string): Promise<Footprint> {
  const name = `${registry.address}/logship-footprint-${label}:latest`;
  const data = fs.mkdtempSync(path.join(work, `data-${label}-`));
  const copy = copyOf(dir, label);
  run('docker', ['plugin', 'create', name, copy]);
  try {
    run('docker', ['plugin', 'push', name]);
    const pushedBytes = await pushedSize(registry, `logship-footprint-${label}`);
    const hasData = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).mounts?.some((m: { name?: string }) => m.name === 'data');
    if (hasData) run('docker', ['plugin', 'set', name, `data.source=${data}`]);
    const enables: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = process.hrtime.bigint();
      run('docker', ['plugin', 'enable', '--timeout', '0', name]);
      enables.push(Number(process.hrtime.bigint() - t0) / 1e9);
      if (i < ROUNDS - 1) run('docker', ['plugin', 'disable', '-f', name]);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const plugin = await PluginProcess.find(name);
    const rssStartMb = plugin.rssMb();

    const containers: Docker.Container[] = [];
    try {
      for (let i = 0; i < IDLE; i += 10) {
        await Promise.all(
          Array.from({ length: Math.min(10, IDLE - i) }, async () => {
            const c = await docker.createContainer({
              Image: image,
              Cmd: ['sh', '-c', 'echo attached; exec sleep 3600'],
              Labels: { 'logship-bench': 'true' },
              HostConfig: { LogConfig: { Type: name, Config: {} }, NetworkMode: 'none' },
            });
            containers.push(c);
            await c.start();
          }),
        );
      }
      await new Promise((r) => setTimeout(r, 3000));
      const rssIdleMb = plugin.rssMb();
      const gzipBytes = Number(execFileSync('sh', ['-c', 'tar -C "$0" -cf - . | gzip -6 | wc -c', path.join(dir, 'rootfs')], { encoding: 'utf8' }));
      return { label, rootfsBytes: du(path.join(dir, 'rootfs')), gzipBytes, pushedBytes, enableSeconds: median(enables), rssStartMb, rssIdleMb };
    } finally {
      for (let i = 0; i < containers.length; i += 20) {
        await Promise.all(containers.slice(i, i + 20).map((c) => c.remove({ force: true }).catch(() => {})));
      }
    }
  } finally {
    try {
      run('docker', ['plugin', 'disable', '-f', name]);
    } catch {
      // not enabled
    }
    run('docker', ['plugin', 'rm', '-f', name]);
  }
}

const image = await ensureTestImage();
// logship's journal mount needs its source, as `make install` makes it.
fs.mkdirSync('/run/systemd/journal', { recursive: true });
for (const dir of PLUGIN_DIRS) {
  if (!fs.existsSync(path.join(dir, 'rootfs'))) throw new Error(`${dir} is not a plugin folder (no rootfs): run 'make plugin'`);
}
// The floor: the discard-only plugin, assembled from plugin/ (bench/discard-plugin/install.sh).
const floorDir = path.join(ROOT, 'build', 'footprint-discard');
run('bench/discard-plugin/install.sh', ['--assemble', floorDir]);

const registry = await startRegistry(fs.mkdtempSync(path.join(work, 'registry-')));
const results: Footprint[] = [];
try {
  results.push(await measure('floor', floorDir, registry, image));
  for (const [i, dir] of PLUGIN_DIRS.entries()) {
    results.push(await measure(PLUGIN_DIRS.length > 1 ? `${i + 1}` : 'logship', dir, registry, image));
  }
} finally {
  await registry.stop();
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(floorDir, { recursive: true, force: true });
}

const floor = results[0]!;
console.log(`\nfootprint (${ROUNDS} enables, ${IDLE} idle containers; the floor is the discard-only plugin, the same Node)`);
for (const r of results) {
  const name = r.label === 'floor' ? 'floor (discard)' : r.label === 'logship' ? path.relative(ROOT, PLUGIN_DIRS[0]!) : path.relative(ROOT, PLUGIN_DIRS[Number(r.label) - 1]!);
  const vs = (x: number, f: number) => (r === floor ? '' : ` (${(x / f).toFixed(2)}x)`);
  console.log(
    `  ${name.padEnd(28)} rootfs ${(r.rootfsBytes / MB).toFixed(1)} MB, gzipped ${(r.gzipBytes / MB).toFixed(2)} MB, pushed ${(r.pushedBytes / MB).toFixed(2)} MB; ` +
      `enable ${r.enableSeconds.toFixed(2)} s${vs(r.enableSeconds, floor.enableSeconds)}; ` +
      `RSS ${r.rssStartMb.toFixed(1)} MB at start${vs(r.rssStartMb, floor.rssStartMb)}, ` +
      `${r.rssIdleMb.toFixed(1)} MB with ${IDLE} idle containers${vs(r.rssIdleMb, floor.rssIdleMb)}`,
  );
}
