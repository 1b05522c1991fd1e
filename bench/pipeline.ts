// The plugin's own cost, without the engine: a child process writes LINES daemon frames into a
// real FIFO, one write per frame as the daemon does, and this process runs logship's pipeline
// on it (FIFO reader -> deframer -> decode -> store with rotation and gzip), then reads the store
// back as ReadLogs does and encodes the reply. Prints wall and CPU time and memory of each
// phase. For profiles: node --cpu-prof bench/pipeline.ts
//
//   node bench/pipeline.ts     env: LINES (1000000); DISCARD=1: only read the FIFO and drop
//                              the bytes, as the discard plugin does (the floor)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_FRAME_BYTES } from '../src/ingest/deframer.ts';
import { openFifo, readFifo } from '../src/ingest/fifo-reader.ts';
import { FifoPump } from '../src/ingest/fifo-pump.ts';
import { encodeReadLogsBatch } from '../src/protocol/read-logs-stream.ts';
import { ContainerStore } from '../src/store/container-store.ts';
import { DEFAULT_STORE_OPTIONS } from '../src/store/options.ts';

const LINES = Number(process.env.LINES ?? 1_000_000);
const DISCARD = process.env.DISCARD === '1';

// The writer: `seq 1 LINES` as daemon frames, 1 µs apart, one writeSync each.
const WRITER = `
const fs = require('node:fs');
const protobuf = require('protobufjs');
const T = protobuf.loadSync(process.argv[2]).lookupType('logdriver.LogEntry');
const fd = fs.openSync(process.argv[1], fs.constants.O_RDWR);
process.send('ready');
process.once('message', () => {
  const t0 = 1795000000000000000n;
  for (let i = 1; i <= ${LINES}; i++) {
    const p = T.encode({ source: 'stdout', timeNano: (t0 + BigInt(i) * 1000n).toString(), line: Buffer.from(String(i)) }).finish();
    const f = Buffer.allocUnsafe(4 + p.length);
    f.writeUInt32BE(p.length, 0);
    f.set(p, 4);
    fs.writeSync(fd, f);
  }
  fs.closeSync(fd);
  process.exit(0);
});
`;

function mem(): string {
  const m = process.memoryUsage();
  return `rss ${(m.rss / 2 ** 20).toFixed(0)} MB (heap ${(m.heapUsed / 2 ** 20).toFixed(0)} of ${(m.heapTotal / 2 ** 20).toFixed(0)}, external ${(m.external / 2 ** 20).toFixed(0)})`;
}

async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const result = await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${name.padEnd(8)} wall ${wall.toFixed(2)} s, cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s ` +
      `(user ${(cpu.user / 1e6).toFixed(2)}, sys ${(cpu.system / 1e6).toFixed(2)}), ${mem()}`,
  );
  return result;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-pipeline-'));
try {
  const fifoPath = path.join(dir, 'fifo');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [fifoPath]);
  const writer = spawn(process.execPath, ['-e', WRITER, fifoPath, path.resolve('proto/entry.proto')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: path.resolve('.'),
  });
  await once(writer, 'message');
  const store = new ContainerStore(path.join(dir, 'store'), DEFAULT_STORE_OPTIONS, MAX_FRAME_BYTES, (lines, err) => {
    throw new Error(`dropped ${lines} lines: ${String(err)}`);
  });
  console.log(`pipeline: ${LINES} lines; ${mem()} at start`);
  if (DISCARD) {
    await phase('discard', async () => {
      const fifo = readFifo(openFifo(fifoPath), () => {});
      writer.send('go');
      await once(fifo, 'close');
    });
    process.exit(0);
  }
  await phase('ingest', async () => {
    const logger = new FifoPump(fifoPath, 'bench', store, path.join(dir, 'unstored'), false);
    writer.send('go');
    await logger.finished;
    if (logger.stats.frames !== LINES) throw new Error(`ingested ${logger.stats.frames} frames, expected ${LINES}`);
  });
  const out = fs.openSync('/dev/null', 'w');
  await phase('read', async () => {
    let entries = 0;
    const req = { sinceNano: null, untilNano: null, tail: -1, follow: false };
    for await (const batch of store.read(req, new AbortController().signal)) {
      entries += batch.length;
      fs.writeSync(out, encodeReadLogsBatch(batch));
    }
    if (entries !== LINES) throw new Error(`read ${entries} entries, expected ${LINES}`);
  });
  fs.closeSync(out);
  await store.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
