// The registry drives delivery: StartLogging with a receiver that is down still succeeds,
// and a restarted plugin resumes shipping a stopped container with no StartLogging.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BackendFactory, SendError } from '../../src/delivery/backend.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import { T0, frame, lines } from './frames.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import type { ContainerInfo } from '../../src/shaping/container.ts';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-registry-'));
  fs.mkdirSync(path.join(root, 'fifo'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** One receiver for every backend instance the factory makes, like a real server. */
const receiver = { up: false, lines: [] as { tag: string; line: string }[] };

const TEST_OPTIONS = [{ key: 'test-address', type: 'string', default: 'default', doc: 'where' }] as const;
const testFactory: BackendFactory<{ address: string }, typeof TEST_OPTIONS> = {
  name: 'test',
  options: TEST_OPTIONS,
  configure: (values) => ({ address: values['test-address'] }),
  batchLimits: () => ({ maxLines: 5, maxBytes: 1 << 20, maxDelayMs: 5 }),
  retryPolicy: () => ({ initialDelayMs: 5, maxDelayMs: 20 }),
  create: (_config, container) => ({
    send(batch: readonly OutgoingLine[]) {
      if (!receiver.up) return Promise.reject(new SendError('connection refused', { transient: true }));
      for (const l of batch) receiver.lines.push({ tag: container.tag, line: l.line.toString() });
      return Promise.resolve({});
    },
    close: () => Promise.resolve(),
  }),
};

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(predicate(), `condition not reached in 5 s (received ${receiver.lines.length} lines)`);
}

describe('registry and delivery', () => {
  it('starts logging while the receiver is down, and ships after a plugin restart once it is up', async () => {
    const dataDir = path.join(root, 'data');
    const id = 'd'.repeat(64);
    const info: ContainerInfo = {
      id, name: '/shipper', config: { backend: 'test', 'test-address': 'x', tag: '{{.Name}}' }, imageId: '', imageName: '', created: '',
      entrypoint: '', args: [], env: [], labels: {}, daemonName: 'docker',
    };
    const fifo = path.join(root, 'fifo', 'f1');
    execFileSync('mkfifo', [fifo]);
    const daemonEnd = fs.openSync(fifo, fs.constants.O_RDWR);

    const first = new Registry(dataDir, path.join(root, 'fifo'), { requests: START_LOGGING, backends: [testFactory] });
    first.start(fifo, info); // must not throw: receiver down
    fs.writeSync(daemonEnd, Buffer.concat(lines(12).map(frame)));
    fs.closeSync(daemonEnd); // the container stops
    await until(() => fs.existsSync(path.join(dataDir, 'containers', id, 'cursors', 'test.json')));
    await new Promise((r) => setTimeout(r, 50)); // a few failed sends
    assert.equal(receiver.lines.length, 0);
    await first.shutdown();

    receiver.up = true;
    const second = new Registry(dataDir, path.join(root, 'fifo'), { requests: START_LOGGING, backends: [testFactory] });
    second.resumeDelivery();
    await until(() => receiver.lines.length >= 12);
    assert.deepEqual(receiver.lines.map((l) => l.line), lines(12).map((l) => l.line));
    assert.ok(receiver.lines.every((l) => l.tag === 'shipper'));
    // Caught up with a stopped container: the store is released.
    await until(() => second.liveSources().openContainers() === 0);
    await second.shutdown();
  });

  it('ships each run of a restarted container once, in order, with the same cursor', async () => {
    receiver.up = true;
    receiver.lines = [];
    const dataDir = path.join(root, 'data2');
    const id = 'e'.repeat(64);
    const info: ContainerInfo = {
      id, name: '/again', config: { backend: 'test' }, imageId: '', imageName: '', created: '',
      entrypoint: '', args: [], env: [], labels: {}, daemonName: 'docker',
    };
    const registry = new Registry(dataDir, path.join(root, 'fifo'), { requests: START_LOGGING, backends: [testFactory] });
    for (const [run, from] of [['r1', 1], ['r2', 21]] as const) {
      const fifo = path.join(root, 'fifo', run);
      execFileSync('mkfifo', [fifo]);
      const daemonEnd = fs.openSync(fifo, fs.constants.O_RDWR);
      registry.start(fifo, info);
      fs.writeSync(daemonEnd, Buffer.concat(lines(20, undefined, from).map(frame)));
      fs.closeSync(daemonEnd);
      await until(() => receiver.lines.length >= from + 19);
    }
    await until(() => registry.liveSources().openContainers() === 0);
    assert.deepEqual(receiver.lines.map((l) => l.line), lines(40).map((l) => l.line));
    await registry.shutdown();
  });

  it('opens no backend for a store with nothing to ship, at start-up or reattached, and one as soon as a line comes', async () => {
    const dataDir = path.join(root, 'data-idle');
    const fifoDir = path.join(root, 'fifo-idle');
    fs.mkdirSync(fifoDir);
    const created: string[] = [];
    const counting: BackendFactory<{ address: string }, typeof TEST_OPTIONS> = {
      ...testFactory,
      create: (config, container) => {
        created.push(container.id);
        return testFactory.create(config, container);
      },
    };
    receiver.up = true;
    receiver.lines = [];
    const infoOf = (id: string, name: string): ContainerInfo => ({
      id, name, config: { backend: 'test', tag: '{{.Name}}' }, imageId: '', imageName: '', created: '',
      entrypoint: '', args: [], env: [], labels: {}, daemonName: 'docker',
    });
    const stopped = infoOf('e'.repeat(64), '/stopped');
    const running = infoOf('f'.repeat(64), '/running');
    const stoppedFifo = path.join(fifoDir, 'stopped');
    const runningFifo = path.join(fifoDir, 'running');
    execFileSync('mkfifo', [stoppedFifo, runningFifo]);
    const stoppedEnd = fs.openSync(stoppedFifo, fs.constants.O_RDWR);
    const runningEnd = fs.openSync(runningFifo, fs.constants.O_RDWR);

    // Both ship everything they wrote; one container stops, the other keeps its FIFO open.
    const options = { requests: START_LOGGING, backends: [counting] };
    const first = new Registry(dataDir, fifoDir, options);
    first.start(stoppedFifo, stopped);
    first.start(runningFifo, running);
    fs.writeSync(stoppedEnd, Buffer.concat(lines(3).map(frame)));
    fs.writeSync(runningEnd, Buffer.concat(lines(3).map(frame)));
    fs.closeSync(stoppedEnd);
    await until(() => receiver.lines.length === 6);
    await first.shutdown();

    // A new process: the stopped store resumes delivery, the running FIFO is reattached.
    created.length = 0;
    const second = new Registry(dataDir, fifoDir, options);
    assert.equal(second.reattach(), 1);
    second.resumeDelivery();
    await new Promise((r) => setTimeout(r, 200)); // many times the batch delay: a send would have happened
    assert.deepEqual(created, []);
    assert.equal(receiver.lines.length, 6);

    fs.writeSync(runningEnd, frame({ source: 'stdout', line: 'after the restart', timeNano: T0 + 1_000_000n }));
    await until(() => receiver.lines.length === 7);
    assert.deepEqual(created, [running.id]);
    assert.equal(receiver.lines[6]!.line, 'after the restart');
    fs.closeSync(runningEnd);
    await second.shutdown();
  });
});
