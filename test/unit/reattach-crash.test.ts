// A plugin process killed (SIGKILL) at the worst moments while the daemon keeps writing: just
// before the store's write of a chunk it has taken out of the pipe, and just after it. The
// next process must store every line in order: the first kind loses nothing and repeats
// nothing, the second may store the chunk of the kill twice (read-journal.ts), never lose it.
// The first process is killed at its first write (a kill at a later one of the writes that
// follow a new stream's store opening would repeat the earlier ones: see FifoPump).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import { frame } from './frames.ts';

const LINES = 30_000;
const KILLS = 6;
const CHILD = new URL('./crashing-plugin.ts', import.meta.url).pathname;
const roots: string[] = [];
after(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

/** Runs one plugin process to its death by SIGKILL, or, without killAt, until it is ready. */
async function plugin(env: Record<string, string>): Promise<ReturnType<typeof spawn>> {
  const child = spawn(process.execPath, [CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (s: string) => s.includes('ready') && resolve());
    child.on('exit', (code, signal) => reject(new Error(`plugin exited before it was ready (${code ?? signal})`)));
  });
  return child;
}

/** The daemon's side: frames of "line i" written as the daemon does, whole, never blocking this test. */
class DaemonWriter {
  private next = 1;
  /** Frames built and not yet written: the pipe was full. */
  private chunk: Buffer | null = null;
  private readonly fd: number;
  constructor(file: string) {
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  }
  /** Writes up to line `upTo`, waiting while the pipe is full; stops early once `until` settles. */
  async write(upTo: number, until: Promise<unknown> = new Promise(() => {})): Promise<void> {
    let stop = false;
    void until.then(() => (stop = true));
    while (!stop) {
      if (this.chunk === null) {
        if (this.next > upTo) return;
        const frames: Buffer[] = [];
        for (let bytes = 0; this.next <= upTo && bytes < 3000; this.next++) {
          const f = frame({ line: `line ${this.next}`, timeNano: BigInt(this.next) });
          frames.push(f);
          bytes += f.length;
        }
        this.chunk = Buffer.concat(frames); // < PIPE_BUF: written whole or not at all
      }
      try {
        fs.writeSync(this.fd, this.chunk);
        this.chunk = null;
        await new Promise((r) => setImmediate(r));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

async function storedLines(dataDir: string, fifoDir: string, id: string): Promise<number[]> {
  const registry = new Registry(dataDir, fifoDir, { requests: START_LOGGING });
  const out: number[] = [];
  const req = { sinceNano: null, untilNano: null, tail: -1, follow: false };
  for await (const batch of registry.read(id, req, new AbortController().signal)) {
    for (const payload of batch) out.push(Number(decodeLogEntry(payload).line.toString().slice(5)));
  }
  await registry.shutdown();
  return out;
}

for (const when of ['before', 'after'] as const) {
  describe(`a plugin killed ${KILLS} times ${when} the store's write of a chunk`, () => {
    it(`stores all ${LINES} lines in order${when === 'before' ? ', each once' : ''}`, async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-crash-'));
      roots.push(root);
      const dataDir = path.join(root, 'data');
      const fifoDir = path.join(root, 'fifo');
      fs.mkdirSync(fifoDir);
      const fifo = path.join(fifoDir, 'crash');
      execFileSync('mkfifo', [fifo]);
      const id = 'c'.repeat(64);
      const daemon = new DaemonWriter(fifo);
      const env = { DATA_DIR: dataDir, FIFO_DIR: fifoDir, FIFO: fifo, CONTAINER_ID: id, KILL_WHEN: when };

      for (let k = 0; k < KILLS; k++) {
        // Early writes as well as later ones: the first after a start waits for the store to open.
        const child = await plugin({ ...env, START: k === 0 ? '1' : '', KILL_AT: String(1 + ((k * 7) % 5)) });
        const died = once(child, "exit");
        await daemon.write(LINES, died);
        const [, signal] = await died;
        assert.equal(signal, 'SIGKILL', `plugin ${k + 1} was not killed: it read every line before its kill`);
      }
      const last = await plugin(env);
      await daemon.write(LINES);
      daemon.close(); // EOF: the last process stores the rest and ends the attachment
      const attachments = path.join(dataDir, 'attachments');
      for (let i = 0; fs.readdirSync(attachments).length > 0; i++) {
        assert.ok(i < 1000, 'the last plugin process did not reach EOF in 10 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      last.kill('SIGTERM');
      await once(last, 'exit');

      const stored = await storedLines(dataDir, fifoDir, id);
      const repeated = stored.length - new Set(stored).size;
      const firsts = stored.filter((n, i) => stored.indexOf(n) === i);
      assert.deepEqual(firsts, Array.from({ length: LINES }, (_, i) => i + 1), 'every line, in order');
      if (when === 'before') assert.equal(repeated, 0, 'no line stored twice');
      else {
        // A repeat is the killed chunk again, right after itself: never an older line.
        for (let i = 1; i < stored.length; i++) if (stored[i]! <= stored[i - 1]!) assert.ok(stored.slice(0, i).includes(stored[i]!));
        console.log(`# killed after the store's write ${KILLS} times: ${repeated} lines stored twice`);
      }
    });
  });
}
