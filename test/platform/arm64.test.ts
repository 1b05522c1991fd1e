// The arm64 plugin (`make plugin ARCH=arm64`, in plugin-arm64/) run as the engine would run it,
// on this x86-64 machine: its own Node in a chroot of its rootfs, under qemu-user-static (called
// explicitly, so no binfmt_misc registration is needed). The app starts, serves the LogDriver
// API on its socket, stores what a FIFO carries and reads it back; its native addon loads; each
// cloud SDK chunk loads. Needs root (chroot) and Debian's qemu-user-static.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { frame, lines } from '../unit/frames.ts';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..', '..');
const ROOTFS = path.join(REPO, 'plugin-arm64', 'rootfs');
const QEMU = '/usr/bin/qemu-aarch64-static';
// Found on the machine's PATH, which the commands below do not get (theirs is the rootfs's).
const CHROOT = execFileSync('sh', ['-c', 'command -v chroot'], { encoding: 'utf8' }).trim();

let root = '';
let app: ChildProcess | undefined;
let appLog = '';

/** Runs the arm64 node of the copy with args, in a chroot of it. */
function node(args: string[], env: Record<string, string> = {}) {
  return run(CHROOT, [root, '/qemu-aarch64-static', '/usr/bin/node', ...args], { env: { PATH: '/usr/bin', ...env }, maxBuffer: 16 << 20 });
}

function post(endpoint: string, body: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: path.join(root, 'tmp', 'logship.sock'), path: endpoint, method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('the arm64 plugin under qemu', () => {
  before(() => {
    assert.ok(fs.existsSync(path.join(ROOTFS, 'usr', 'bin', 'node')), `${ROOTFS} is missing: run 'make plugin ARCH=arm64'`);
    assert.ok(fs.existsSync(QEMU), `${QEMU} is missing: apt-get install qemu-user-static`);
    // A copy (hard links, so beside plugin-arm64/ on the same mount; qemu and what the app
    // writes are new files), so plugin-arm64/ stays as built.
    root = fs.mkdtempSync(path.join(REPO, 'build', 'platform-arm64-'));
    fs.rmdirSync(root);
    execFileSync('cp', ['-al', ROOTFS, root]);
    fs.copyFileSync(QEMU, path.join(root, 'qemu-aarch64-static'));
    fs.chmodSync(path.join(root, 'qemu-aarch64-static'), 0o755);
  });

  after(async () => {
    if (app && app.exitCode === null) {
      app.kill('SIGTERM');
      await new Promise((r) => app!.once('exit', r));
    }
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('runs its Node, an aarch64 binary, and loads its native addon', async () => {
    const elf = fs.readFileSync(path.join(ROOTFS, 'usr', 'bin', 'node')).subarray(0, 20);
    assert.equal(elf.readUInt16LE(18), 183, 'e_machine is EM_AARCH64');
    const { stdout } = await node([
      '-e',
      'const r = require("module").createRequire("/app/dist/main.js"); r("unix-dgram").createSocket("unix_dgram").close(); console.log(process.version, process.arch)',
    ]);
    assert.match(stdout.trim(), /^v24\.\d+\.\d+ arm64$/);
  });

  it('loads the chunk of every cloud SDK', async () => {
    const main = fs.readFileSync(path.join(ROOTFS, 'app', 'dist', 'main.js'), 'utf8');
    const chunks = [...new Set([...main.matchAll(/import\("\.\/([^"]+\.js)"\)/g)].map((m) => `/app/dist/${m[1]}`))];
    assert.ok(chunks.length >= 5, `chunks imported by main.js: ${chunks.join(' ')}`);
    const { stdout } = await node([
      '--input-type=module',
      '-e',
      `for (const f of ${JSON.stringify(chunks)}) { const m = await import(f); console.log(f, Object.keys(m).length); }`,
    ]);
    for (const c of chunks) assert.match(stdout, new RegExp(`${c} [1-9]`), `${c} exports nothing:\n${stdout}`);
  });

  it('serves the LogDriver API: stores what a FIFO carries and reads it back', async () => {
    for (const d of ['fifo', 'data']) fs.mkdirSync(path.join(root, 'tmp', d));
    appLog = path.join(os.tmpdir(), `logship-arm64-app-${process.pid}.log`);
    const out = fs.openSync(appLog, 'w');
    app = spawn(CHROOT, [root, '/qemu-aarch64-static', '/usr/bin/node', '/app/dist/main.js'], {
      env: { PATH: '/usr/bin', LOGSHIP_SOCKET: '/tmp/logship.sock', LOGSHIP_FIFO_DIR: '/tmp/fifo', DATA_DIR: '/tmp/data' },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    const socket = path.join(root, 'tmp', 'logship.sock');
    for (const deadline = Date.now() + 60_000; !fs.existsSync(socket); ) {
      assert.ok(Date.now() < deadline && app.exitCode === null, `the app did not listen:\n${fs.readFileSync(appLog, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(JSON.parse((await post('/LogDriver.Capabilities', '')).toString()), { Cap: { ReadLogs: true }, Err: '' });

    const id = 'a'.repeat(64);
    const fifo = path.join(root, 'tmp', 'fifo', id);
    execFileSync('mkfifo', [fifo]);
    const fd = fs.openSync(fifo, fs.constants.O_RDWR); // as the daemon holds it
    const info = { ContainerID: id, ContainerName: '/arm64', Config: {} };
    assert.deepEqual(JSON.parse((await post('/LogDriver.StartLogging', JSON.stringify({ File: `/tmp/fifo/${id}`, Info: info }))).toString()), { Err: '' });
    fs.writeSync(fd, Buffer.concat(lines(3).map(frame)));
    let got: string[] = [];
    for (const deadline = Date.now() + 30_000; got.length < 3 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 200));
      const reply = await post('/LogDriver.ReadLogs', JSON.stringify({ Info: info, Config: { Tail: -1, Follow: false } }));
      got = [];
      for (let pos = 0; pos < reply.length; pos += 4 + reply.readUInt32BE(pos)) {
        got.push(decodeLogEntry(reply.subarray(pos + 4, pos + 4 + reply.readUInt32BE(pos))).line.toString());
      }
    }
    assert.deepEqual(got, ['line 1\n', 'line 2\n', 'line 3\n']);
    await post('/LogDriver.StopLogging', JSON.stringify({ File: `/tmp/fifo/${id}` }));
    fs.closeSync(fd);
    assert.match(fs.readFileSync(appLog, 'utf8'), /"msg":"listening".*"node":"v24\.\d+\.\d+"/);
  });
});
