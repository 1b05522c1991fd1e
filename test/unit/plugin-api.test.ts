// The LogDriver API as the daemon drives it: a real unix socket, a real FIFO held open
// read-write by the "daemon" side, requests with no Content-Type, framed replies.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import { createApp, listen } from '../../src/protocol/server.ts';
import { frame, lines } from './frames.ts';

let root: string;
let socketPath: string;
let server: http.Server;
let registry: Registry;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-api-'));
  fs.mkdirSync(path.join(root, 'fifo'));
  socketPath = path.join(root, 'plugin.sock');
  registry = new Registry(path.join(root, 'data'), path.join(root, 'fifo'), { requests: START_LOGGING });
  server = await listen(createApp(registry), socketPath);
});

after(async () => {
  server.close();
  await registry.shutdown();
  fs.rmSync(root, { recursive: true, force: true });
});

/** POSTs like the daemon: body as given, no Content-Type. */
function post(endpoint: string, body: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: endpoint, method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function call(endpoint: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await post(endpoint, JSON.stringify(body) + '\n');
  assert.equal(res.status, 200);
  return JSON.parse(res.body.toString()) as Record<string, unknown>;
}

/** A FIFO as the daemon makes it, and its read-write "daemon" end. */
function daemonFifo(): { file: string; fd: number } {
  const file = path.join(root, 'fifo', Math.random().toString(16).slice(2).padEnd(16, '0'));
  execFileSync('mkfifo', [file]);
  return { file, fd: fs.openSync(file, fs.constants.O_RDWR) };
}

function readLogsFrames(reply: Buffer): { source: string; line: string }[] {
  const out = [];
  for (let pos = 0; pos < reply.length; ) {
    const n = reply.readUInt32BE(pos);
    const e = decodeLogEntry(reply.subarray(pos + 4, pos + 4 + n));
    out.push({ source: e.source, line: e.line.toString() });
    pos += 4 + n;
  }
  return out;
}

async function waitFor(predicate: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail('condition not reached in 2 s');
}

const info = (id: string, config: Record<string, string> = {}) => ({ ContainerID: id, ContainerName: '/t', Config: config });

describe('LogDriver API', () => {
  it('answers Capabilities to an empty body', async () => {
    const res = await post('/LogDriver.Capabilities', '');
    assert.deepEqual(JSON.parse(res.body.toString()), { Cap: { ReadLogs: true }, Err: '' });
  });

  it('fails StartLogging with a message naming an unknown or bad option', async () => {
    const { file } = daemonFifo();
    assert.deepEqual(await call('/LogDriver.StartLogging', { File: file, Info: info('1'.repeat(64), { colour: 'blue' }) }), {
      Err: "unknown log opt 'colour' for logship log driver (accepted: backend, max-size, max-file, compress, tag, labels, labels-regex, env, env-regex, multiline-pattern, datetime-format, multiline-preset, multiline-flush-timeout, multiline-max-lines, multiline-max-bytes, parse-json, ship-streams, drop-pattern, keep-pattern, filter-backends, redact, redact-pattern, redact-env, redact-local, rate-limit-lines, rate-limit-bytes, rate-limit-burst, rate-limit-mode, rate-limit-backends)",
    });
    const bad = await call('/LogDriver.StartLogging', { File: file, Info: info('1'.repeat(64), { 'max-size': 'big' }) });
    assert.match(String(bad.Err), /log opt 'max-size'/);
  });

  it('refuses FIFO paths outside the FIFO folder', async () => {
    const res = await call('/LogDriver.StartLogging', { File: '/etc/passwd', Info: info('2'.repeat(64)) });
    assert.match(String(res.Err), /outside/);
  });

  it('refuses crafted FIFO paths and ids, and writes nothing outside the data folder', async () => {
    const fifoDir = path.join(root, 'fifo');
    const outside = daemonFifo(); // a real FIFO, moved out of the FIFO folder
    const elsewhere = path.join(root, 'elsewhere');
    fs.renameSync(outside.file, elsewhere);
    fs.symlinkSync(elsewhere, path.join(fifoDir, 'link-to-fifo'));
    fs.symlinkSync('/etc/hostname', path.join(fifoDir, 'link-to-file'));
    fs.writeFileSync(path.join(fifoDir, 'plain-file'), 'not a FIFO');
    const id = '7'.repeat(64);
    const refused: [string, RegExp][] = [
      [`${fifoDir}/../elsewhere`, /outside/],
      [`${fifoDir}/sub/../../elsewhere`, /outside/],
      [fifoDir, /outside/],
      [`${fifoDir}/`, /outside/],
      ['relative-name', /outside/],
      [path.join(fifoDir, 'link-to-fifo'), /cannot open/],
      [path.join(fifoDir, 'link-to-file'), /cannot open/],
      [path.join(fifoDir, 'plain-file'), /not a FIFO/],
      [path.join(fifoDir, 'missing'), /cannot open/],
      [`${fifoDir}/nul\u0000byte`, /cannot open|outside/],
    ];
    for (const [file, err] of refused) {
      const res = await call('/LogDriver.StartLogging', { File: file, Info: info(id) });
      assert.match(String(res.Err), err, file);
    }
    for (const badId of ['../../../../tmp/x', '7'.repeat(63), '7'.repeat(64) + '/..', 'A'.repeat(64), '7'.repeat(63) + '\u0000', '']) {
      const { file } = daemonFifo();
      assert.match(String((await call('/LogDriver.StartLogging', { File: file, Info: info(badId) })).Err), /ContainerID/, badId);
      const read = await post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(badId), Config: {} }));
      assert.equal(read.status, 400, badId);
    }
    // Nothing refused left a store or an attachment behind, and nothing escaped the data folder.
    assert.ok(!fs.existsSync(path.join(root, 'data', 'containers', id)));
    const attachments = path.join(root, 'data', 'attachments');
    for (const name of fs.existsSync(attachments) ? fs.readdirSync(attachments) : []) {
      assert.ok(!/elsewhere|link|plain|missing/.test(name), name);
    }
    assert.deepEqual(fs.readdirSync(root).filter((n) => n !== 'data').sort(), ['elsewhere', 'fifo', 'plugin.sock']);
    fs.closeSync(outside.fd);
  });

  it('stores what the FIFO carries and serves it back with json-file newlines', async () => {
    const id = '3'.repeat(64);
    const { file, fd } = daemonFifo();
    assert.deepEqual(await call('/LogDriver.StartLogging', { File: file, Info: info(id) }), { Err: '' });
    const stream = Buffer.concat([
      frame({ line: 'first' }),
      frame({ source: 'stderr', line: 'to stderr' }),
      frame({ line: 'long-', partial: true, partialLogMetadata: { id: 'p', ordinal: 1, last: false } }),
      frame({ line: 'line', partial: true, partialLogMetadata: { id: 'p', ordinal: 2, last: true } }),
      Buffer.from([0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), // a frame that is not a LogEntry
      frame({ line: '' }),
      frame({ line: 'no newline at end', partial: true, partialLogMetadata: { id: 'q', ordinal: 1, last: false } }),
    ]);
    // Cut writes at odd places, as reads of a pipe may see them.
    for (let pos = 0; pos < stream.length; pos += 13) fs.writeSync(fd, stream.subarray(pos, pos + 13));
    assert.deepEqual(await call('/LogDriver.StopLogging', { File: file }), { Err: '' });
    fs.closeSync(fd); // the daemon closes its end after StopLogging: EOF

    const expected = [
      { source: 'stdout', line: 'first\n' },
      { source: 'stderr', line: 'to stderr\n' },
      { source: 'stdout', line: 'long-' },
      { source: 'stdout', line: 'line\n' },
      { source: 'stdout', line: '\n' },
      { source: 'stdout', line: 'no newline at end' },
    ];
    const readAll = () => post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(id), Config: { Tail: -1, Follow: false } }));
    await waitFor(async () => readLogsFrames((await readAll()).body).length === expected.length);
    assert.deepEqual(readLogsFrames((await readAll()).body), expected);
    const tail = await post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(id), Config: { Tail: 2 } }));
    assert.deepEqual(readLogsFrames(tail.body), expected.slice(-2));
  });

  it('keeps the store across StartLogging calls (docker logs of a stopped container)', async () => {
    const id = '4'.repeat(64);
    const first = daemonFifo();
    await call('/LogDriver.StartLogging', { File: first.file, Info: info(id) });
    fs.writeSync(first.fd, Buffer.concat(lines(3).map(frame)));
    await call('/LogDriver.StopLogging', { File: first.file });
    fs.closeSync(first.fd);

    const second = daemonFifo(); // no data will come
    await call('/LogDriver.StartLogging', { File: second.file, Info: info(id) });
    const read = () => post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(id), Config: { Tail: -1 } }));
    await waitFor(async () => readLogsFrames((await read()).body).length === 3);
    await call('/LogDriver.StopLogging', { File: second.file });
    fs.closeSync(second.fd);
    assert.deepEqual(readLogsFrames((await read()).body).map((e) => e.line), ['line 1\n', 'line 2\n', 'line 3\n']);
  });

  it('follows a running container and ends the stream at EOF', async () => {
    const id = '5'.repeat(64);
    const { file, fd } = daemonFifo();
    await call('/LogDriver.StartLogging', { File: file, Info: info(id) });
    fs.writeSync(fd, Buffer.concat(lines(2).map(frame)));
    await waitFor(async () => readLogsFrames((await post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(id), Config: { Tail: -1 } }))).body).length === 2);
    const following = post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(id), Config: { Tail: -1, Follow: true } }));
    await new Promise((r) => setTimeout(r, 50));
    fs.writeSync(fd, Buffer.concat(lines(2, undefined, 3).map(frame)));
    await new Promise((r) => setTimeout(r, 50));
    await call('/LogDriver.StopLogging', { File: file });
    fs.closeSync(fd);
    assert.deepEqual(readLogsFrames((await following).body).map((e) => e.line), ['line 1\n', 'line 2\n', 'line 3\n', 'line 4\n']);
  });

  it('cuts the ReadLogs stream short when the store cannot be read, so the daemon reports it', async () => {
    const id = '6'.repeat(64);
    fs.mkdirSync(path.join(root, 'data', 'containers', id, '00000001.log'), { recursive: true }); // EISDIR on read
    await assert.rejects(post('/LogDriver.ReadLogs', JSON.stringify({ Info: info(id), Config: { Tail: -1 } })));
  });

  it('answers a malformed ReadLogs with a non-200 {Err}', async () => {
    const res = await post('/LogDriver.ReadLogs', JSON.stringify({ Info: { ContainerID: '../../x' }, Config: {} }));
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body.toString()).Err, /ContainerID/);
  });
});
