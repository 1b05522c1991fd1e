// Throughput and memory of logship against the built-in drivers and a discard-only plugin,
// on the local engine.
//
//   make bench    (or, after `make install` and `make plugin`: npm run bench)
//
// 0. Builds and installs the discard-only plugin (bench/discard-plugin: logship's FIFO reader,
//    every byte dropped), the floor for any plugin: the daemon's marshal and FIFO write per line.
// 1. For logship, the floor, json-file, local and none, interleaved, ROUNDS rounds: the seconds
//    for a container to run `seq 1 LINES` and exit (create + start -> wait). Median per driver,
//    ratios to json-file and to the floor; the CPU time logship's and the floor's process used
//    for each run (less noisy than wall time on a shared machine); logship's peak RSS.
// 2. `docker logs` of those containers for logship and json-file (a full read through the API),
//    interleaved, median; every read must return exactly the LINES lines.
// 3. CONCURRENT containers at once, each `seq 1 CONCURRENT_LINES`; then every container's
//    `docker logs` must return every line.
// 4. IDLE containers attached and silent: logship's RSS with all of them attached.
// Memory is the plugin process's own (VmHWM, reset before each phase, and VmRSS in /proc, read
// from the host). Containers are removed afterwards.
// Env: PLUGIN (logship:latest), DISCARD (logship-discard:latest), LINES (1000000), ROUNDS (3),
// CONCURRENT (50), CONCURRENT_LINES (20000), IDLE (100), NAME_PREFIX (logship-bench-).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type Docker from 'dockerode';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { ensureTestImage } from '../test/e2e/lib/image.ts';
import { demux, openLogStream } from '../test/e2e/lib/logs.ts';
import { PluginProcess } from './plugin-process.ts';

const PLUGIN = process.env.PLUGIN ?? process.env.LOGSHIP_PLUGIN ?? 'logship:latest';
const DISCARD = process.env.DISCARD ?? 'logship-discard:latest';
const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONCURRENT = Number(process.env.CONCURRENT ?? 50);
const CONCURRENT_LINES = Number(process.env.CONCURRENT_LINES ?? 20_000);
const IDLE = Number(process.env.IDLE ?? 100);
const DRIVERS = [PLUGIN, DISCARD, 'json-file', 'local', 'none'];
const READ_DRIVERS = [PLUGIN, 'json-file'];
const TARGET_VS_FLOOR = 1.05;
const TARGET_RSS_LOAD_MB = 150;
const TARGET_RSS_IDLE_MB = 100;

const NAME_PREFIX = process.env.NAME_PREFIX ?? 'logship-bench-';
const created: Docker.Container[] = [];
let named = 0;
const containerName = () => `${NAME_PREFIX}${process.pid}-${++named}`;

function seqBytes(n: number): number {
  // Bytes `seq 1 n` prints: each number's digits plus a newline.
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) {
    const hi = Math.min(n, lo * 10 - 1);
    total += (hi - lo + 1) * (digits + 1);
  }
  return total;
}

async function runOnce(image: string, driver: string, cmd: string[]): Promise<{ container: Docker.Container; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const container = await docker.createContainer({
    name: containerName(),
    Image: image,
    Cmd: cmd,
    Labels: { 'logship-bench': 'true' },
    HostConfig: { LogConfig: { Type: driver, Config: {} }, NetworkMode: 'none' },
  });
  created.push(container);
  await container.start();
  const result = (await container.wait()) as { StatusCode: number };
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (result.StatusCode !== 0) throw new Error(`${driver}: ${cmd.join(' ')} exited with ${result.StatusCode}`);
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

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const mb = (x: number) => `${x.toFixed(0)} MB`;
const pad = (s: string, n: number) => s.padEnd(n);
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

async function main(): Promise<number> {
  const image = await ensureTestImage();
  try {
    await docker.getPlugin(PLUGIN, undefined).inspect();
  } catch {
    console.error(`bench: ${PLUGIN} is not installed; run 'make install' first`);
    return 2;
  }
  execFileSync('bench/discard-plugin/install.sh', [DISCARD], { stdio: ['ignore', 'ignore', 'inherit'] });
  const plugin = await PluginProcess.find(PLUGIN);
  const floorPlugin = await PluginProcess.find(DISCARD);
  const processOf = new Map([[PLUGIN, plugin], [DISCARD, floorPlugin]]);
  const info = await docker.version();
  console.log(
    `bench: seq 1 ${LINES}, ${ROUNDS} rounds, drivers ${DRIVERS.join(', ')} (floor: ${DISCARD}); ` +
      `engine ${info.Version}, ${os.cpus().length} CPUs, load ${os.loadavg().map(f2).join(' ')}`,
  );
  const rssAtStart = plugin.rssMb();

  // Warm-up, not counted: image and plugin paths in the page cache.
  for (const d of DRIVERS) await runOnce(image, d, ['seq', '1', '1000']);

  // 1. Run time, drivers interleaved; the order rotates so that no driver always goes first.
  const runTimes = new Map<string, number[]>(DRIVERS.map((d) => [d, []]));
  const toRead = new Map<string, Docker.Container[]>(READ_DRIVERS.map((d) => [d, []]));
  const cpuTimes = new Map<string, number[]>([[PLUGIN, []], [DISCARD, []]]);
  const loadPeaks: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = DRIVERS.map((_, i) => DRIVERS[(i + round) % DRIVERS.length] as string);
    for (const d of order) {
      if (d === PLUGIN) plugin.resetPeak();
      const proc = processOf.get(d);
      const cpu0 = proc?.cpuSeconds() ?? NaN;
      const { container, seconds } = await runOnce(image, d, ['seq', '1', String(LINES)]);
      // The plugin may still be storing what the daemon wrote last: wait for its CPU to settle.
      let cpu = NaN;
      if (proc) {
        for (let prev = -1; (cpu = proc.cpuSeconds()) !== prev; prev = cpu) await new Promise((r) => setTimeout(r, 300));
        cpuTimes.get(d)?.push(cpu - cpu0);
      }
      runTimes.get(d)?.push(seconds);
      toRead.get(d)?.push(container);
      const peak = d === PLUGIN ? plugin.peakMb() : NaN;
      if (d === PLUGIN) loadPeaks.push(peak);
      console.log(
        `  round ${round + 1}: ${pad(d, 24)} run ${f2(seconds)} s` +
          (proc ? `, plugin CPU ${f2(cpu - cpu0)} s` : '') +
          (d === PLUGIN ? `, plugin RSS peak ${mb(peak)}` : ''),
      );
    }
  }

  // 2. docker logs of everything, interleaved.
  const readTimes = new Map<string, number[]>(READ_DRIVERS.map((d) => [d, []]));
  const expectedBytes = seqBytes(LINES);
  const problems: string[] = [];
  const readPeaks: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...READ_DRIVERS].reverse() : READ_DRIVERS;
    for (const d of order) {
      const container = toRead.get(d)?.[round];
      if (!container) continue;
      if (d === PLUGIN) plugin.resetPeak();
      const r = await readAll(container.id);
      if (d === PLUGIN) readPeaks.push(plugin.peakMb());
      readTimes.get(d)?.push(r.seconds);
      console.log(`  read  ${round + 1}: ${pad(d, 24)} docker logs ${f2(r.seconds)} s, ${r.lines} lines, ${r.bytes} bytes`);
      if (r.lines !== LINES) problems.push(`${d} round ${round + 1}: ${r.lines} lines, expected ${LINES}`);
      if (r.bytes !== expectedBytes) problems.push(`${d} round ${round + 1}: ${r.bytes} bytes, expected ${expectedBytes}`);
      if (r.errors) problems.push(`${d} round ${round + 1}: daemon error: ${r.errors.trim()}`);
    }
  }
  await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true })));

  // 3. Many containers writing at once.
  plugin.resetPeak();
  const t0 = process.hrtime.bigint();
  const concurrent = await Promise.all(
    Array.from({ length: CONCURRENT }, () => runOnce(image, PLUGIN, ['seq', '1', String(CONCURRENT_LINES)])),
  );
  const concurrentSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const concurrentPeak = plugin.peakMb();
  const counts = await inParallel(concurrent, 4, ({ container }) => readAll(container.id));
  const incomplete = counts.filter((r) => r.lines !== CONCURRENT_LINES || r.bytes !== seqBytes(CONCURRENT_LINES) || r.errors);
  for (const r of incomplete) problems.push(`concurrent: a container's docker logs returned ${r.lines} lines, ${r.bytes} bytes ${r.errors.trim()}`);
  console.log(
    `  concurrent: ${CONCURRENT} containers x ${CONCURRENT_LINES} lines in ${f2(concurrentSeconds)} s, ` +
      `${CONCURRENT - incomplete.length} of ${CONCURRENT} complete in docker logs, plugin RSS peak ${mb(concurrentPeak)}`,
  );
  await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true })));

  // 4. Idle containers attached.
  const rssBeforeIdle = plugin.rssMb();
  await inParallel(Array.from({ length: IDLE }, (_, i) => i), 8, async () => {
    const container = await docker.createContainer({
      name: containerName(),
      Image: image,
      Cmd: ['sleep', '3600'],
      Labels: { 'logship-bench': 'true' },
      HostConfig: { LogConfig: { Type: PLUGIN, Config: {} }, NetworkMode: 'none' },
    });
    created.push(container);
    await container.start();
  });
  await new Promise((r) => setTimeout(r, 2000));
  const rssIdle = plugin.rssMb();
  console.log(`  idle: ${IDLE} containers attached, plugin RSS ${mb(rssIdle)} (${mb(rssBeforeIdle)} before attaching them)`);

  const baseRun = median(runTimes.get('json-file') ?? []);
  const floorRun = median(runTimes.get(DISCARD) ?? []);
  console.log('');
  console.log(
    `${pad('driver', 32)} ${pad('run s (each round)', 22)} ${pad('median', 8)} ${pad('lines/s', 9)} ${pad('vs json-file', 13)} vs floor`,
  );
  for (const d of DRIVERS) {
    const runs = runTimes.get(d) ?? [];
    const m = median(runs);
    console.log(
      `${pad(d === DISCARD ? `${d} (floor)` : d, 32)} ${pad(runs.map(f2).join(' / '), 22)} ${pad(f2(m), 8)} ` +
        `${pad(`${Math.round(LINES / m / 1000)}k`, 9)} ${pad(`${f2(m / baseRun)}x`, 13)} ${f2(m / floorRun)}x`,
    );
  }
  const logsRun = median(runTimes.get(PLUGIN) ?? []);
  const cpuLogship = cpuTimes.get(PLUGIN) ?? [];
  const cpuFloor = cpuTimes.get(DISCARD) ?? [];
  console.log(
    `plugin CPU per run (user+sys): ${PLUGIN} ${cpuLogship.map(f2).join(' / ')} s (median ${f2(median(cpuLogship))}), ` +
      `floor ${cpuFloor.map(f2).join(' / ')} s (median ${f2(median(cpuFloor))})`,
  );
  const reads = readTimes.get(PLUGIN) ?? [];
  const baseReads = readTimes.get('json-file') ?? [];
  const logsRead = median(reads);
  const baseRead = median(baseReads);
  console.log('');
  console.log(
    `docker logs, ${LINES} lines: ${PLUGIN} ${reads.map(f2).join(' / ')} s (median ${f2(logsRead)}), ` +
      `json-file ${baseReads.map(f2).join(' / ')} s (median ${f2(baseRead)}): ${f2(logsRead / baseRead)}x`,
  );
  const loadPeak = Math.max(...loadPeaks, ...readPeaks, concurrentPeak);
  console.log(
    `plugin RSS: ${mb(rssAtStart)} at start; peak ${loadPeaks.map(mb).join(' / ')} during the ${LINES}-line runs, ` +
      `${readPeaks.map(mb).join(' / ')} during docker logs, ${mb(concurrentPeak)} with ${CONCURRENT} at once; ` +
      `${mb(rssIdle)} with ${IDLE} idle containers`,
  );
  console.log('');
  console.log('targets:');
  console.log(`  run time within ${f2(TARGET_VS_FLOOR)}x of the floor: ${f2(logsRun / floorRun)}x, ${verdict(logsRun <= floorRun * TARGET_VS_FLOOR)}`);
  console.log(`  docker logs faster than json-file: ${f2(logsRead / baseRead)}x, ${verdict(logsRead < baseRead)}`);
  console.log(`  RSS under ${TARGET_RSS_LOAD_MB} MB under load: ${mb(loadPeak)}, ${verdict(loadPeak < TARGET_RSS_LOAD_MB)}`);
  console.log(`  RSS under ${TARGET_RSS_IDLE_MB} MB with ${IDLE} idle containers: ${mb(rssIdle)}, ${verdict(rssIdle < TARGET_RSS_IDLE_MB)}`);
  console.log(`  ${CONCURRENT} concurrent containers, nothing lost: ${verdict(incomplete.length === 0)}`);
  console.log('');
  if (problems.length === 0) {
    console.log(
      `check: every docker logs read (${READ_DRIVERS.length * ROUNDS} x ${LINES.toLocaleString('en-US')} lines, ` +
        `${CONCURRENT} x ${CONCURRENT_LINES.toLocaleString('en-US')} lines) returned exactly its lines`,
    );
    return 0;
  }
  console.log(`check FAILED:\n  ${problems.join('\n  ')}`);
  return 1;
}

const removeCreated = () => Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true }).catch(() => {})));
process.once('SIGINT', () => void removeCreated().then(() => process.exit(130)));

let code = 1;
try {
  code = await main();
} finally {
  await removeCreated();
}
process.exitCode = code;
