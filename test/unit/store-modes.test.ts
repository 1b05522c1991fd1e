// Who may read a container's stored logs (finding 8): only root, as with json-file (moby
// creates the container folder 0710 and its log files 0640). Checked on the files the real
// writer, cursor and delivery state create, and on a store of an earlier version (0755
// folders, 0644 files) tightened at start without its data being read or rewritten.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CursorFile } from '../../src/delivery/cursor.ts';
import { saveDeliveryState } from '../../src/delivery/delivery.ts';
import { tightenModes } from '../../src/store/janitor.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import { batch, lines } from './frames.ts';

let root: string;
let containers: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-modes-'));
  containers = path.join(root, 'containers');
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const modeOf = (p: string) => fs.lstatSync(p).mode & 0o7777;

/** Every folder and file under `dir` (itself included) with its mode. */
function modes(dir: string): Map<string, number> {
  const out = new Map([[dir, modeOf(dir)]]);
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) out.set(path.join(dir, name), modeOf(path.join(dir, name)));
  return out;
}

function assertPrivate(dir: string): void {
  for (const [p, mode] of modes(dir)) {
    const what = `${path.relative(root, p)} is ${mode.toString(8)}`;
    assert.equal(mode & 0o007, 0, `${what}: others get nothing`);
    if (fs.lstatSync(p).isDirectory()) assert.equal(mode & 0o060, 0, `${what}: the group may only enter`);
    else assert.equal(mode & 0o137, 0, `${what}: the group may only read, nobody executes`);
  }
}

describe('store file modes (finding 8)', () => {
  it('a new store, its rotated and compressed segments, manifest, cursors and delivery state are private to root', async () => {
    const dir = path.join(containers, 'e'.repeat(64));
    const store = new ContainerStore(dir, { maxSizeBytes: 500, maxFiles: 5, compress: true }, 1 << 20, () => assert.fail('dropped'));
    store.attachProducer();
    store.append(batch(lines(100)));
    store.detachProducer();
    await store.read({ sinceNano: null, untilNano: null, tail: -1, follow: false }, new AbortController().signal).next();
    const cursor = new CursorFile(dir, 'syslog', () => store.syncData());
    cursor.save({ index: 100, seq: 1, offset: 0 });
    saveDeliveryState(dir, { config: {}, container: {} as never });
    await store.close();
    const names = fs.readdirSync(dir);
    assert.ok(names.some((n) => n.endsWith('.log.gz')) && names.includes('segments.json') && names.includes('cursors'), names.join(' '));
    assertPrivate(containers);
    assert.equal(modeOf(path.join(dir, 'delivery.json')) & 0o077, 0, 'delivery.json stays readable by root alone');
  });

  it('a store of an earlier version is tightened at start: modes only, no data read or rewritten, symlinks not followed', () => {
    const dir = path.join(containers, 'f'.repeat(64));
    fs.mkdirSync(path.join(dir, 'cursors'), { recursive: true, mode: 0o755 });
    fs.chmodSync(containers, 0o755);
    const files = { '00000001.log.gz': 'gz', '00000002.log': 'records', 'segments.json': '{}', 'cursors/syslog.json': '{}' };
    for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), body, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'delivery.json'), '{}', { mode: 0o600 });
    const outside = path.join(root, 'outside');
    fs.writeFileSync(outside, 'not ours', { mode: 0o644 });
    fs.symlinkSync(outside, path.join(dir, 'link'));
    const mtimes = new Map(Object.keys(files).map((n) => [n, fs.statSync(path.join(dir, n)).mtimeMs]));

    assert.equal(tightenModes(containers), 7, 'containers, the store, cursors and the four 0644 files');
    fs.rmSync(path.join(dir, 'link'));
    assertPrivate(containers);
    assert.equal(modeOf(path.join(dir, 'delivery.json')), 0o600, 'a stricter file stays as it was');
    assert.equal(modeOf(outside), 0o644, 'the symlink was not followed');
    for (const [name, body] of Object.entries(files)) {
      assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), body);
      assert.equal(fs.statSync(path.join(dir, name)).mtimeMs, mtimes.get(name), `${name} not rewritten`);
    }
    assert.equal(tightenModes(containers), 0, 'the next start finds the containers folder private and stops there');
  });
});
