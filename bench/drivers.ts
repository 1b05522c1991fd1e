// Throughput of logship against the built-in drivers, on the local engine.
//
//   npm run bench      (or make bench; logship must be installed: make install)
//
// 1. For logship, json-file, local and none, interleaved, ROUNDS rounds: the seconds for a container
//    to run `seq 1 1000000` and exit (create + start -> wait). Median per driver.
// 2. For logship and json-file: the seconds for `docker logs` of those containers (a full read of
//    stdout through the API), interleaved, median of ROUNDS; every read must return exactly the
//    1,000,000 lines.
// Containers are removed afterwards. Env: PLUGIN (default logship:latest), LINES, ROUNDS.
import type Docker from 'dockerode';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { ensureTestImage } from '../test/e2e/lib/image.ts';
import { demux, openLogStream } from '../test/e2e/lib/logs.ts';

const PLUGIN = process.env.PLUGIN ?? process.env.LOGSHIP_PLUGIN ?? 'logship:latest';
const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DRIVERS = [PLUGIN, 'json-file', 'local', 'none'];
const READ_DRIVERS = [PLUGIN, 'json-file'];

const created: Docker.Container[] = [];

function seqBytes(n: number): number {
  // Bytes `seq 1 n` prints: each number's digits plus a newline.
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) {
    const hi = Math.min(n, lo * 10 - 1);
    total += (hi - lo + 1) * (digits + 1);
  }
  return total;
}

async function runOnce(image: string, driver: string, lines: number): Promise<{ container: Docker.Container; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const container = await docker.createContainer({
    Image: image,
    Cmd: ['seq', '1', String(lines)],
    Labels: { 'logship-bench': 'true' },
    HostConfig: { LogConfig: { Type: driver, Config: {} }, NetworkMode: 'none' },
  });
  created.push(container);
  await container.start();
  const result = (await container.wait()) as { StatusCode: number };
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (result.StatusCode !== 0) throw new Error(`${driver}: seq exited with ${result.StatusCode}`);
  return { container, seconds };
}

async function readAll(id: string): Promise<{ seconds: number; lines: number; bytes: number; errors: string }> {
  const t0 = process.hrtime.bigint();
  const res = await openLogStream(id, { signal: AbortSignal.timeout(300_000) });
  let lines = 0;
  let bytes = 0;
  let errors = '';
  await demux(res, (type, payload) => {
    if (type === 1) {
      bytes += payload.length;
      for (let i = payload.indexOf(10); i !== -1; i = payload.indexOf(10, i + 1)) lines++;
    } else if (type === 3) {
      errors += payload.toString('utf8');
    }
  });
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, lines, bytes, errors };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const pad = (s: string, n: number) => s.padEnd(n);

async function main(): Promise<number> {
  const image = await ensureTestImage();
  try {
    await docker.getPlugin(PLUGIN, undefined).inspect();
  } catch {
    console.error(`bench: ${PLUGIN} is not installed; run 'make install' first`);
    return 2;
  }
  const info = await docker.version();
  console.log(`bench: seq 1 ${LINES}, ${ROUNDS} rounds, drivers ${DRIVERS.join(', ')}; engine ${info.Version}, ${(await import('node:os')).cpus().length} CPUs`);

  // Warm-up, not counted: image and plugin paths in the page cache.
  for (const d of DRIVERS) await runOnce(image, d, 1000);

  const runTimes = new Map<string, number[]>(DRIVERS.map((d) => [d, []]));
  const toRead = new Map<string, Docker.Container[]>(READ_DRIVERS.map((d) => [d, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round so no driver always goes first.
    const order = DRIVERS.map((_, i) => DRIVERS[(i + round) % DRIVERS.length] as string);
    for (const d of order) {
      const { container, seconds } = await runOnce(image, d, LINES);
      runTimes.get(d)?.push(seconds);
      toRead.get(d)?.push(container);
      console.log(`  round ${round + 1}: ${pad(d, 16)} run ${f2(seconds)} s`);
    }
  }

  const readTimes = new Map<string, number[]>(READ_DRIVERS.map((d) => [d, []]));
  const expectedBytes = seqBytes(LINES);
  const problems: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...READ_DRIVERS].reverse() : READ_DRIVERS;
    for (const d of order) {
      const container = toRead.get(d)?.[round];
      if (!container) continue;
      const r = await readAll(container.id);
      readTimes.get(d)?.push(r.seconds);
      console.log(`  read  ${round + 1}: ${pad(d, 16)} docker logs ${f2(r.seconds)} s, ${r.lines} lines, ${r.bytes} bytes`);
      if (r.lines !== LINES) problems.push(`${d} round ${round + 1}: ${r.lines} lines, expected ${LINES}`);
      if (r.bytes !== expectedBytes) problems.push(`${d} round ${round + 1}: ${r.bytes} bytes, expected ${expectedBytes}`);
      if (r.errors) problems.push(`${d} round ${round + 1}: daemon error: ${r.errors.trim()}`);
    }
  }

  const baseRun = median(runTimes.get('json-file') ?? []);
  const baseRead = median(readTimes.get('json-file') ?? []);
  console.log('');
  console.log(`${pad('driver', 16)} ${pad('run s (each round)', 22)} ${pad('median', 8)} ${pad('lines/s', 10)} ${pad('vs json-file', 13)} ${pad('logs s (each)', 20)} ${pad('median', 8)} vs json-file`);
  for (const d of DRIVERS) {
    const runs = runTimes.get(d) ?? [];
    const reads = readTimes.get(d);
    const m = median(runs);
    const rm = reads ? median(reads) : NaN;
    console.log(
      `${pad(d, 16)} ${pad(runs.map(f2).join(' / '), 22)} ${pad(f2(m), 8)} ${pad(`${Math.round(LINES / m / 1000)}k`, 10)} ${pad(`${f2(m / baseRun)}x`, 13)} ` +
        `${pad(reads ? reads.map(f2).join(' / ') : '-', 20)} ${pad(f2(rm), 8)} ${reads ? `${f2(rm / baseRead)}x` : '-'}`,
    );
  }
  console.log('');
  if (problems.length === 0) {
    console.log(`check: every docker logs read (${READ_DRIVERS.length * ROUNDS}) returned exactly ${LINES.toLocaleString('en-US')} lines (${expectedBytes} bytes)`);
    return 0;
  }
  console.log(`check FAILED:\n  ${problems.join('\n  ')}`);
  return 1;
}

let code = 1;
try {
  code = await main();
} finally {
  await Promise.all(created.map((c) => c.remove({ force: true, v: true }).catch(() => {})));
}
process.exitCode = code;
