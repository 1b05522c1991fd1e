// A new plugin process reads on the FIFOs an earlier one was reading: after a clean shutdown
// (even with a frame cut in two) and after a crash (the stream may then start mid-frame, and
// the dead process's journal holds what it had read and not stored).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Attachments } from '../../src/lifecycle/attachments.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import { frame, lines } from './frames.ts';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import type { ContainerInfo } from '../../src/shaping/container.ts';

let root: string;
let dataDir: string;
let fifoDir: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-reattach-'));
  dataDir = path.join(root, 'data');
  fifoDir = path.join(root, 'fifo');
  fs.mkdirSync(fifoDir);
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function info(id: string): ContainerInfo {
  return {
    id,
    name: '/t',
    config: { 'max-size': '1m' },
    imageId: 'sha256:' + 'a'.repeat(64),
    imageName: 'busybox',
    created: '2026-11-22T00:00:00Z',
    entrypoint: 'sh',
    args: ['-c', 'x'],
    env: ['A=1'],
    labels: { l: 'v' },
    daemonName: 'docker',
  };
}

function daemonFifo(name: string): { file: string; fd: number } {
  const file = path.join(fifoDir, name);
  execFileSync('mkfifo', [file]);
  return { file, fd: fs.openSync(file, fs.constants.O_RDWR) };
}

async function storedLines(registry: Registry, id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of registry.read(id, { sinceNano: null, untilNano: null, tail: -1, follow: false }, new AbortController().signal)) {
    for (const payload of batch) out.push(decodeLogEntry(payload).line.toString());
  }
  return out;
}

async function until(what: string, predicate: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${what}: not reached in 3 s`);
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

describe('reattach', () => {
  it('reads on after a shutdown, with a frame cut in two across the processes', async () => {
    const id = 'a'.repeat(64);
    const { file, fd } = daemonFifo('f1');
    const first = new Registry(dataDir, fifoDir, { requests: START_LOGGING });
    first.start(file, { ...info(id), config: { 'max-size': '1000000', 'max-file': '2', compress: 'false' } });
    const frames = lines(20).map(frame);
    const half = Math.floor(frames[9]!.length / 2);
    fs.writeSync(fd, Buffer.concat([...frames.slice(0, 9), frames[9]!.subarray(0, half)]));
    await until('first 9 lines stored', async () => (await storedLines(first, id)).length === 9);
    await first.shutdown();

    // The daemon keeps writing while no process reads.
    fs.writeSync(fd, Buffer.concat([frames[9]!.subarray(half), ...frames.slice(10, 15)]));
    const second = new Registry(dataDir, fifoDir, { requests: START_LOGGING });
    assert.equal(second.reattach(), 1);
    fs.writeSync(fd, Buffer.concat(frames.slice(15)));
    await until('all 20 lines stored', async () => (await storedLines(second, id)).length === 20);
    assert.deepEqual(await storedLines(second, id), expected(20));

    // EOF ends the attachment: a third process has nothing to resume.
    fs.closeSync(fd);
    fs.rmSync(file);
    await until('attachment removed', async () => fs.readdirSync(path.join(dataDir, 'attachments')).length === 0);
    await second.shutdown();
    assert.equal(new Registry(dataDir, fifoDir, { requests: START_LOGGING }).reattach(), 0);
  });

  it('after a crash, finds the next whole frame in a stream that starts mid-frame', async () => {
    const id = 'b'.repeat(64);
    const { file, fd } = daemonFifo('f2');
    // What a killed process leaves: its attachment, and a pipe whose head it had consumed.
    new Attachments(path.join(dataDir, 'attachments'), START_LOGGING).save({ file, info: info(id) });
    const frames = lines(10).map(frame);
    fs.writeSync(fd, Buffer.concat([frames[0]!.subarray(7), ...frames.slice(1)]));
    const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING });
    assert.equal(registry.reattach(), 1);
    await until('9 lines stored', async () => (await storedLines(registry, id)).length === 9);
    assert.deepEqual(await storedLines(registry, id), expected(10).slice(1));
    fs.closeSync(fd);
    await registry.shutdown();
  });

  it('after a crash, stores first what the dead process had read and not stored', async () => {
    const id = 'f'.repeat(64);
    const { file, fd } = daemonFifo('f5');
    // What a process killed between a read and the store's write leaves: the read in its
    // journal (five whole frames and half of the sixth), gone from the pipe.
    const attachments = new Attachments(path.join(dataDir, 'attachments'), START_LOGGING);
    attachments.save({ file, info: info(id) });
    const frames = lines(10).map(frame);
    const half = Math.floor(frames[5]!.length / 2);
    fs.writeFileSync(attachments.prepareJournal(file), Buffer.concat([...frames.slice(0, 5), frames[5]!.subarray(0, half)]));
    fs.writeSync(fd, Buffer.concat([frames[5]!.subarray(half), ...frames.slice(6)]));
    const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING });
    assert.equal(registry.reattach(), 1);
    await until('10 lines stored', async () => (await storedLines(registry, id)).length === 10);
    assert.deepEqual(await storedLines(registry, id), expected(10));
    // Once stored, the journal holds nothing the next start would store again.
    assert.equal(fs.readFileSync(attachments.prepareJournal(file)).length, 0);
    fs.closeSync(fd);
    await registry.shutdown();
  });

  it('drops attachments whose FIFO is gone or whose record is damaged', () => {
    const attachments = new Attachments(path.join(dataDir, 'attachments'), START_LOGGING);
    attachments.save({ file: path.join(fifoDir, 'gone'), info: info('c'.repeat(64)) });
    fs.writeFileSync(path.join(dataDir, 'attachments', 'junk.json'), '{"File":');
    const { file, fd } = daemonFifo('f3');
    attachments.save({ file, info: { ...info('d'.repeat(64)), config: { colour: 'blue' } } }); // no longer a valid option
    assert.equal(new Registry(dataDir, fifoDir, { requests: START_LOGGING }).reattach(), 0);
    fs.closeSync(fd);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'attachments')), []);
  });

  it('keeps the whole container info', () => {
    const attachments = new Attachments(path.join(dataDir, 'attachments'), START_LOGGING);
    const file = path.join(fifoDir, 'f4');
    attachments.save({ file, info: info('e'.repeat(64)) });
    assert.deepEqual(attachments.load(), [{ file, info: info('e'.repeat(64)) }]);
  });
});
