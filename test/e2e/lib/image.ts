// The test image: Debian's static /bin/busybox (package busybox-static) with a symlink per applet,
// put into a tarball and loaded with `docker import`. No registry, no Dockerfile. The tag carries a
// hash of the busybox binary, so the image is imported once and reused across runs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker } from './docker-client.ts';

const REPO = 'logship-e2e-busybox';

function findBusybox(): string {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    if (fs.existsSync(candidate)) return fs.realpathSync(candidate);
  }
  throw new Error('busybox not found: install the Debian package busybox-static (apt-get install busybox-static)');
}

function isStatic(file: string): boolean {
  // A static ELF has no PT_INTERP program header; `ldd` says "not a dynamic executable".
  try {
    const out = execFileSync('ldd', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return /not a dynamic executable|statically linked/.test(out);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return /not a dynamic executable|statically linked/.test(`${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

let cached: Promise<string> | undefined;

/** Imports the busybox test image if it is not there yet; resolves to its reference. */
export function ensureTestImage(): Promise<string> {
  cached ??= importImage();
  return cached;
}

async function importImage(): Promise<string> {
  const busybox = findBusybox();
  if (!isStatic(busybox)) {
    throw new Error(`${busybox} is dynamically linked; the test image needs the static one (apt-get install busybox-static)`);
  }
  const binary = fs.readFileSync(busybox);
  const tag = createHash('sha256').update(binary).digest('hex').slice(0, 12);
  const ref = `${REPO}:${tag}`;
  try {
    await docker.getImage(ref).inspect();
    return ref;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-e2e-image-'));
  try {
    const root = path.join(dir, 'root');
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    for (const d of ['etc', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d));
    fs.writeFileSync(path.join(root, 'bin', 'busybox'), binary, { mode: 0o755 });
    const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[\w.[-]+$/.test(a));
    for (const applet of applets) {
      if (applet === 'busybox') continue;
      fs.symlinkSync('busybox', path.join(root, 'bin', applet));
    }
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tarball = path.join(dir, 'rootfs.tar');
    execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tarball, '.']);

    const progress = await docker.importImage(fs.createReadStream(tarball), {
      repo: REPO,
      tag,
      changes: ['ENV PATH=/bin', 'CMD ["sh"]'],
    });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(progress, (err: Error | null, out: unknown[]) => {
        if (err) return reject(err);
        const failed = out.find((o) => typeof o === 'object' && o !== null && 'error' in o);
        if (failed) return reject(new Error(`docker import failed: ${JSON.stringify(failed)}`));
        resolve();
      });
    });
    await docker.getImage(ref).inspect();
    return ref;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
