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
// 2. `docker logs` of those containers for logship, the read floor and json-file (a full read
//    through the API), interleaved, median; every read must return exactly the LINES lines.
//    The read floor is the discard plugin answering ReadLogs with `seq 1 LINES` prepared in
//    memory (bench/discard-plugin/main.ts): the fastest any plugin can serve, so what is left
//    is the daemon's. Then `--tail TAIL` and `--since` (the last TAIL lines' time) of the same
//    stores for logship and json-file: they must cost what they return, not the store's size.
// 3. CONCURRENT containers at once, each `seq 1 CONCURRENT_LINES`, with json-file and with
//    logship shipping to fluentd (a forward-protocol receiver in this process that counts
//    records), interleaved, ROUNDS_CONCURRENT rounds: the time until every container exited
//    (the write time), the time until the receiver had every line (shipping), the plugin's RSS
//    sampled every SAMPLE_MS throughout (peak) and after the last line arrived (memory given
//    back). Every container's `docker logs` and the receiver's count per container must be
//    exactly its lines.
// 4. IDLE containers attached and silent: logship's RSS with all of them attached.
// 5. CROWD containers attached to logship with the fluentd backend, CROWD_WRITING of them
//    writing `seq 1 CROWD_LINES` and staying attached, the rest silent: RSS (peak, sampled) and
//    the plugin's open file descriptors against its limit; nothing lost (receiver and docker logs).
// Memory is the plugin process's own (VmHWM, reset before each phase, and VmRSS in /proc, read
// from the host). Containers are removed afterwards.
// Env: PLUGIN (logship:latest), DISCARD (logship-discard:latest), LINES (1000000), ROUNDS (3),
// TAIL (1000), CONCURRENT (50), CONCURRENT_LINES (20000), ROUNDS_CONCURRENT (2), IDLE (100),
// CROWD (500), CROWD_WRITING (100), CROWD_LINES (5000), SAMPLE_MS (100),
// FLUENT_PORT (24224), NAME_PREFIX (logship-bench-), PARTS (all: runs,reads,concurrent,idle,crowd;
// reads needs runs), e.g. PARTS=concurrent,crowd for a run of minutes rather than 6+.
// Each concurrent round also prints the CPU seconds dockerd, containerd, the plugin, the
// receiver (a child process of its own) and the whole machine used meanwhile, and the load
// average: on 2 cores, a write time above json-file's is CPU contention, and this shows whose.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type Docker from 'dockerode';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { ensureTestImage } from '../test/e2e/lib/image.ts';
import { demux, openLogStream } from '../test/e2e/lib/logs.ts';
import { FluentCounterProcess } from './fluent-counter.ts';
import { containerName, created, median, runOnce } from './docker-run.ts';
import { PluginProcess, RssSampler } from './plugin-process.ts';

const PLUGIN = process.env.PLUGIN ?? process.env.LOGSHIP_PLUGIN ?? 'logship:latest';
const DISCARD = process.env.DISCARD ?? 'logship-discard:latest';
const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONCURRENT = Number(process.env.CONCURRENT ?? 50);
const CONCURRENT_LINES = Number(process.env.CONCURRENT_LINES ?? 20_000);
const ROUNDS_CONCURRENT = Number(process.env.ROUNDS_CONCURRENT ?? 2);
const TAIL = Number(process.env.TAIL ?? 1000);
const IDLE = Number(process.env.IDLE ?? 100);
const CROWD = Number(process.env.CROWD ?? 500);
const CROWD_WRITING = Number(process.env.CROWD_WRITING ?? 100);
const CROWD_LINES = Number(process.env.CROWD_LINES ?? 5000);
const SAMPLE_MS = Number(process.env.SAMPLE_MS ?? 100);
const FLUENT_PORT = Number(process.env.FLUENT_PORT ?? 24224);
const ALL_PARTS = ['runs', 'reads', 'concurrent', 'idle', 'crowd'];
const PARTS = new Set((process.env.PARTS ?? ALL_PARTS.join(',')).split(',').map((p) => p.trim()).filter(Boolean));
const DRIVERS = [PLUGIN, DISCARD, 'json-file', 'local', 'none'];
const READ_DRIVERS = [PLUGIN, DISCARD, 'json-file'];
const TARGET_VS_FLOOR = 1.05;
const TARGET_READ_VS_FLOOR = 1.1;
const TARGET_RSS_LOAD_MB = 150;
const TARGET_RSS_IDLE_MB = 100;
const TARGET_RSS_CROWD_MB = 200;
/** "Given back within seconds": RSS this many seconds after the last line was shipped. */
const GIVEN_BACK_AFTER_S = 5;
/** When RSS is read after the last line was shipped (0: the end of the load), seconds. */
const AFTER_S = [0, 1, 2, 5, 10];

function seqBytes(n: number): number {
  // Bytes `seq 1 n` prints: each number's digits plus a newline.
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) {
    const hi = Math.min(n, lo * 10 - 1);
    total += (hi - lo + 1) * (digits + 1);
  }
  return total;
}

async function readAll(
  id: string,
  query: { tail?: number; since?: string } = {},
): Promise<{ seconds: number; lines: number; bytes: number; errors: string; first: string }> {
  const t0 = process.hrtime.bigint();
  const res = await openLogStream(id, { ...query, signal: AbortSignal.timeout(300_000) });
  let first = '';
  let lines = 0;
  let bytes = 0;
  let errors = '';
  await demux(res, (type, payload) => {
    if (type === 1) {
      if (bytes === 0) first = payload.subarray(0, payload.indexOf(10)).toString('latin1');
      bytes += payload.length;
      for (let i = payload.indexOf(10); i !== -1; i = payload.indexOf(10, i + 1)) lines++;
    } else if (type === 3) {
      errors += payload.toString('utf8');
    }
  });
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, lines, bytes, errors, first };
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

const secondsSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

/** An RFC 3339 time as `docker logs --timestamps` prints it, in the API's form (seconds.nanoseconds). */
function apiTime(rfc3339: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-].*)$/.exec(rfc3339);
  if (!m) throw new Error(`not a docker logs timestamp: '${rfc3339}'`);
  return `${Date.parse(`${m[1]}${m[3]}`) / 1000}.${(m[2] ?? '').padEnd(9, '0')}`;
}

/** CPU seconds (user + system) process `pid` used so far; NaN once it is gone. */
function pidCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The processes whose command name is `comm` (as /proc/PID/comm has it). */
function pidsNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

/**
 * CPU seconds every core of the machine spent busy so far (/proc/stat: all but idle and
 * iowait). It counts the whole machine, other work beside this bench included.
 */
function machineCpuSeconds(): number {
  const [, ...ticks] = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks as number[];
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100;
}

/** The CPU seconds of dockerd, containerd, the plugin, the receiver and the machine, now. */
interface CpuSnapshot {
  dockerd: number;
  containerd: number;
  plugin: number;
  receiver: number;
  machine: number;
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
  const runs = PARTS.has('runs');
  // The floor plugin is only run in parts 1 and 2.
  if (runs) execFileSync('bench/discard-plugin/install.sh', [DISCARD, `READ_LINES=${LINES}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const plugin = await PluginProcess.find(PLUGIN);
  const floorPlugin = runs ? await PluginProcess.find(DISCARD) : null;
  const processOf = new Map([[PLUGIN, plugin], ...(floorPlugin ? [[DISCARD, floorPlugin] as const] : [])]);
  const info = await docker.version();
  console.log(
    `bench: parts ${ALL_PARTS.filter((p) => PARTS.has(p)).join(',')}; seq 1 ${LINES}, ${ROUNDS} rounds, drivers ${DRIVERS.join(', ')} (floor: ${DISCARD}); ` +
      `engine ${info.Version}, ${os.cpus().length} CPUs, load ${os.loadavg().map(f2).join(' ')}`,
  );
  const rssAtStart = plugin.rssMb();

  // Warm-up, not counted: image and plugin paths in the page cache.
  for (const d of runs ? DRIVERS : [PLUGIN, 'json-file']) await runOnce(image, d, ['seq', '1', '1000']);

  // 1. Run time, drivers interleaved; the order rotates so that no driver always goes first.
  const runTimes = new Map<string, number[]>(DRIVERS.map((d) => [d, []]));
  const toRead = new Map<string, Docker.Container[]>(READ_DRIVERS.map((d) => [d, []]));
  const cpuTimes = new Map<string, number[]>([[PLUGIN, []], [DISCARD, []]]);
  const loadPeaks: number[] = [];
  for (let round = 0; runs && round < ROUNDS; round++) {
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

  // 2. docker logs of everything, interleaved; the order rotates as the runs' does.
  const readTimes = new Map<string, number[]>(READ_DRIVERS.map((d) => [d, []]));
  const expectedBytes = seqBytes(LINES);
  const problems: string[] = [];
  const readPeaks: number[] = [];
  const reads = runs && PARTS.has('reads');
  for (let round = 0; reads && round < ROUNDS; round++) {
    const order = READ_DRIVERS.map((_, i) => READ_DRIVERS[(i + round) % READ_DRIVERS.length] as string);
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

  // --tail and --since of the same stores: what they return, not the store's size, should cost.
  const tailTimes = new Map<string, number[]>([[PLUGIN, []], ['json-file', []]]);
  const sinceTimes = new Map<string, number[]>([[PLUGIN, []], ['json-file', []]]);
  for (let round = 0; reads && round < ROUNDS; round++) {
    for (const d of round % 2 ? [PLUGIN, 'json-file'] : ['json-file', PLUGIN]) {
      const container = toRead.get(d)?.[round];
      if (!container) continue;
      const tail = await readAll(container.id, { tail: TAIL });
      tailTimes.get(d)?.push(tail.seconds);
      if (tail.lines !== TAIL || tail.first !== String(LINES - TAIL + 1)) {
        problems.push(`${d} --tail ${TAIL}: ${tail.lines} lines from '${tail.first}', expected ${TAIL} from ${LINES - TAIL + 1}`);
      }
      // The time of the first of those lines, as the API takes it (seconds.nanoseconds).
      const stamped = await openLogStream(container.id, { tail: TAIL, timestamps: true });
      let stamp = '';
      await demux(stamped, (type, payload) => {
        if (type === 1 && !stamp) stamp = payload.subarray(0, payload.indexOf(32)).toString('latin1');
      });
      const since = apiTime(stamp);
      const r = await readAll(container.id, { since });
      sinceTimes.get(d)?.push(r.seconds);
      // Lines written in the same nanosecond as the first one would come too; seq never does that.
      if (r.lines !== TAIL || r.first !== String(LINES - TAIL + 1)) {
        problems.push(`${d} --since ${since}: ${r.lines} lines from '${r.first}', expected ${TAIL} from ${LINES - TAIL + 1}`);
      }
      console.log(`  read  ${round + 1}: ${pad(d, 24)} docker logs --tail ${TAIL} ${f2(tail.seconds)} s, --since (the same lines) ${f2(r.seconds)} s`);
    }
  }
  await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true })));

  // 3. Many containers writing at once: json-file, and logship shipping to fluentd.
  const receiver = await FluentCounterProcess.start(FLUENT_PORT);
  const dockerd = pidsNamed('dockerd')[0] ?? NaN;
  const containerd = pidsNamed('containerd')[0] ?? NaN;
  const cpuNow = (): CpuSnapshot => ({
    dockerd: pidCpuSeconds(dockerd),
    containerd: pidCpuSeconds(containerd),
    plugin: plugin.cpuSeconds(),
    receiver: pidCpuSeconds(receiver.pid),
    machine: machineCpuSeconds(),
  });
  // The machine's figure out of what its cores had in that time: the rest was idle.
  const cpuSpent = (a: CpuSnapshot, b: CpuSnapshot, seconds: number) =>
    `CPU s dockerd ${f2(b.dockerd - a.dockerd)}, containerd ${f2(b.containerd - a.containerd)}, plugin ${f2(b.plugin - a.plugin)}, ` +
    `receiver ${f2(b.receiver - a.receiver)}, machine ${f2(b.machine - a.machine)} of ${f2(os.cpus().length * seconds)}`;
  const shipOptions = { backend: 'fluentd', 'fluentd-address': `127.0.0.1:${FLUENT_PORT}` };
  const concurrentDrivers = ['json-file', PLUGIN];
  const writeTimes = new Map<string, number[]>(concurrentDrivers.map((d) => [d, []]));
  const shipTimes: number[] = [];
  const lagTimes: number[] = [];
  const concurrentPeaks: number[] = [];
  const givenBack: number[][] = [];
  /** CPU seconds over the write (create to the last exit) per driver, per round. */
  const writeCpu = new Map<string, CpuSnapshot[]>(concurrentDrivers.map((d) => [d, []]));
  const concurrentTotal = CONCURRENT * CONCURRENT_LINES;
  let concurrentComplete = true;
  const concurrent = PARTS.has('concurrent');
  for (let round = 0; concurrent && round < ROUNDS_CONCURRENT; round++) {
    for (const d of round % 2 ? [...concurrentDrivers].reverse() : concurrentDrivers) {
      const logship = d === PLUGIN;
      await receiver.reset();
      plugin.resetPeak();
      const rssBefore = plugin.rssMb();
      const sampler = new RssSampler(plugin, SAMPLE_MS);
      const load = os.loadavg()[0]!;
      const cpu0 = cpuNow();
      const t0 = process.hrtime.bigint();
      const ran = await Promise.all(
        Array.from({ length: CONCURRENT }, () =>
          runOnce(image, d, ['seq', '1', String(CONCURRENT_LINES)], logship ? shipOptions : {}),
        ),
      );
      const writeSeconds = secondsSince(t0);
      const cpu1 = cpuNow();
      writeTimes.get(d)?.push(writeSeconds);
      const spent = Object.fromEntries(Object.keys(cpu0).map((k) => [k, cpu1[k as keyof CpuSnapshot] - cpu0[k as keyof CpuSnapshot]])) as unknown as CpuSnapshot;
      writeCpu.get(d)?.push(spent);
      let report =
        `  concurrent ${round + 1}: ${pad(d, 24)} ${CONCURRENT} x ${CONCURRENT_LINES} lines written in ${f2(writeSeconds)} s ` +
        `(load ${f2(load)} before); while writing: ${cpuSpent(cpu0, cpu1, writeSeconds)}`;
      if (logship) {
        const shipped = await receiver.waitFor(concurrentTotal, 300_000);
        const shipSeconds = secondsSince(t0);
        const cpu2 = cpuNow();
        const peak = Math.max(sampler.stop(), plugin.peakMb());
        shipTimes.push(shipSeconds);
        lagTimes.push(shipSeconds - writeSeconds);
        concurrentPeaks.push(peak);
        // Memory given back: RSS when the last line arrived and AFTER_S seconds after.
        const after: number[] = [];
        const done = Date.now();
        for (const s of AFTER_S) {
          await new Promise((r) => setTimeout(r, Math.max(0, done + s * 1000 - Date.now())));
          after.push(plugin.rssMb());
        }
        givenBack.push(after);
        report +=
          `; shipped to fluentd in ${f2(shipSeconds)} s (${Math.round(receiver.total / shipSeconds / 1000)}k lines/s, ` +
          `the last line ${f2(shipSeconds - writeSeconds)} s after the last exit), until then ${cpuSpent(cpu0, cpu2, shipSeconds)}; ` +
          `plugin RSS ${mb(rssBefore)} before, peak ${mb(peak)}, then ${after.map(mb).join(' / ')} ${AFTER_S.join('/')} s after`;
        const short = [...receiver.perTag.values()].filter((n) => n !== CONCURRENT_LINES).length;
        if (!shipped || receiver.perTag.size !== CONCURRENT || short > 0) {
          concurrentComplete = false;
          problems.push(
            `concurrent round ${round + 1}: fluentd received ${receiver.total} of ${concurrentTotal} lines ` +
              `(${receiver.perTag.size} tags, ${short} of them not ${CONCURRENT_LINES} lines)`,
          );
        }
      } else {
        sampler.stop();
      }
      const logs = await inParallel(ran, 4, ({ container }) => readAll(container.id));
      const incomplete = logs.filter((r) => r.lines !== CONCURRENT_LINES || r.bytes !== seqBytes(CONCURRENT_LINES) || r.errors);
      for (const r of incomplete) {
        concurrentComplete = false;
        problems.push(`concurrent ${d}: a container's docker logs returned ${r.lines} lines, ${r.bytes} bytes ${r.errors.trim()}`);
      }
      console.log(`${report}; ${CONCURRENT - incomplete.length} of ${CONCURRENT} complete in docker logs`);
      await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true })));
    }
  }

  // 4. Idle containers attached.
  let rssIdle = NaN;
  if (PARTS.has('idle')) {
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
  rssIdle = plugin.rssMb();
  console.log(`  idle: ${IDLE} containers attached, plugin RSS ${mb(rssIdle)} (${mb(rssBeforeIdle)} before attaching them)`);
  await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true })));
  }

  // 5. A crowd: CROWD attached with a backend, CROWD_WRITING of them writing.
  let crowdPeak = NaN;
  let crowdWritersCount = 0;
  let crowdFiles = { open: NaN, limit: NaN };
  let crowdComplete = true;
  if (PARTS.has('crowd')) {
  await receiver.reset();
  plugin.resetPeak();
  const rssBeforeCrowd = plugin.rssMb();
  const filesBeforeCrowd = plugin.files();
  const crowdSampler = new RssSampler(plugin, SAMPLE_MS);
  const tc = process.hrtime.bigint();
  const every = Math.max(1, Math.floor(CROWD / CROWD_WRITING)); // writers spread through the crowd
  const crowd = await inParallel(Array.from({ length: CROWD }, (_, i) => i), 8, async (i) => {
    const writing = i % every === 0 && i / every < CROWD_WRITING;
    const container = await docker.createContainer({
      name: containerName(),
      Image: image,
      Cmd: writing ? ['sh', '-c', `seq 1 ${CROWD_LINES}; exec sleep 3600`] : ['sleep', '3600'],
      Labels: { 'logship-bench': 'true' },
      HostConfig: { LogConfig: { Type: PLUGIN, Config: shipOptions }, NetworkMode: 'none' },
    });
    created.push(container);
    await container.start();
    return { container, writing };
  });
  const crowdWriters = crowd.filter((c) => c.writing);
  const crowdStartSeconds = secondsSince(tc);
  const crowdShipped = await receiver.waitFor(crowdWriters.length * CROWD_LINES, 300_000);
  await new Promise((r) => setTimeout(r, 2000));
  crowdFiles = plugin.files();
  crowdPeak = Math.max(crowdSampler.stop(), plugin.peakMb());
  const rssCrowd = plugin.rssMb();
  const crowdReads = await inParallel(crowdWriters, 4, ({ container }) => readAll(container.id));
  const crowdIncomplete = crowdReads.filter((r) => r.lines !== CROWD_LINES || r.bytes !== seqBytes(CROWD_LINES) || r.errors).length;
  await receiver.counts();
  const crowdShort = [...receiver.perTag.values()].filter((n) => n !== CROWD_LINES).length;
  crowdComplete = crowdShipped && crowdIncomplete === 0 && crowdShort === 0 && receiver.perTag.size === crowdWriters.length;
  if (!crowdComplete) {
    problems.push(
      `crowd: fluentd received ${receiver.total} of ${crowdWriters.length * CROWD_LINES} lines from ${receiver.perTag.size} ` +
        `containers (${crowdShort} short); ${crowdIncomplete} docker logs incomplete`,
    );
  }
  console.log(
    `  crowd: ${CROWD} containers attached with fluentd in ${f2(crowdStartSeconds)} s, ${crowdWriters.length} of them wrote ` +
      `${CROWD_LINES} lines each (shipped: ${receiver.total}); plugin RSS ${mb(rssBeforeCrowd)} before, peak ${mb(crowdPeak)}, ` +
      `${mb(rssCrowd)} with all attached; open files ${crowdFiles.open} (${filesBeforeCrowd.open} before) of a limit of ${crowdFiles.limit}`,
  );
  await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true })));
  crowdWritersCount = crowdWriters.length;
  }
  await receiver.close();

  const baseRun = median(runTimes.get('json-file') ?? []);
  const floorRun = median(runTimes.get(DISCARD) ?? []);
  const logsRun = median(runTimes.get(PLUGIN) ?? []);
  if (runs) {
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
    const cpuLogship = cpuTimes.get(PLUGIN) ?? [];
    const cpuFloor = cpuTimes.get(DISCARD) ?? [];
    console.log(
      `plugin CPU per run (user+sys): ${PLUGIN} ${cpuLogship.map(f2).join(' / ')} s (median ${f2(median(cpuLogship))}), ` +
        `floor ${cpuFloor.map(f2).join(' / ')} s (median ${f2(median(cpuFloor))})`,
    );
    console.log('');
  }
  const readMedian = (d: string) => median(readTimes.get(d) ?? []);
  const logsRead = readMedian(PLUGIN);
  const floorRead = readMedian(DISCARD);
  const baseRead = readMedian('json-file');
  if (reads) {
    console.log(`docker logs, ${LINES} lines:`);
    for (const d of READ_DRIVERS) {
      const reads = readTimes.get(d) ?? [];
      console.log(
        `  ${pad(d === DISCARD ? `${d} (read floor)` : d, 36)} ${pad(reads.map(f2).join(' / '), 20)} s, median ${f2(readMedian(d))} s: ` +
          `${f2(readMedian(d) / floorRead)}x the floor, ${f2(readMedian(d) / baseRead)}x json-file`,
      );
    }
    for (const [what, times] of [[`--tail ${TAIL}`, tailTimes], [`--since (the last ${TAIL})`, sinceTimes]] as const) {
      const l = median(times.get(PLUGIN) ?? []);
      const j = median(times.get('json-file') ?? []);
      console.log(`docker logs ${what} of the same stores: ${PLUGIN} median ${f2(l)} s, json-file ${f2(j)} s: ${f2(l / j)}x; ${f2(l / logsRead)}x logship's full read`);
    }
    console.log('');
  }
  const concWrite = median(writeTimes.get(PLUGIN) ?? []);
  const concBase = median(writeTimes.get('json-file') ?? []);
  const concShip = median(shipTimes);
  const givenBackMb = Math.max(...givenBack.map((a) => a[AFTER_S.indexOf(GIVEN_BACK_AFTER_S)] ?? NaN));
  if (concurrent) {
    console.log(
      `${CONCURRENT} containers x ${CONCURRENT_LINES} lines at once: written in ${(writeTimes.get(PLUGIN) ?? []).map(f2).join(' / ')} s ` +
        `with ${PLUGIN} shipping to fluentd (median ${f2(concWrite)}), ${(writeTimes.get('json-file') ?? []).map(f2).join(' / ')} s ` +
        `with json-file (median ${f2(concBase)}): ${f2(concWrite / concBase)}x; all shipped after ${shipTimes.map(f2).join(' / ')} s ` +
        `(median ${f2(concShip)}, ${Math.round(concurrentTotal / concShip / 1000)}k lines/s, vs json-file's write ` +
        `${Math.round(concurrentTotal / concBase / 1000)}k lines/s); the last line shipped ${lagTimes.map(f2).join(' / ')} s after the last exit`,
    );
    // Whose CPU the write time went to: the medians over the write, per driver.
    for (const d of concurrentDrivers) {
      const spent = writeCpu.get(d) ?? [];
      const m = (k: keyof CpuSnapshot) => f2(median(spent.map((c) => c[k])));
      console.log(
        `  CPU s while ${CONCURRENT} wrote with ${pad(d, 16)} (median of ${spent.length}): dockerd ${m('dockerd')}, containerd ${m('containerd')}, ` +
          `plugin ${d === PLUGIN ? m('plugin') : `${m('plugin')} (idle)`}, receiver ${m('receiver')}, machine ${m('machine')}`,
      );
    }
  }
  const rssParts = [`${mb(rssAtStart)} at start`];
  if (runs) rssParts.push(`peak ${loadPeaks.map(mb).join(' / ')} during the ${LINES}-line runs`);
  if (reads) rssParts.push(`${readPeaks.map(mb).join(' / ')} during docker logs`);
  if (concurrent) {
    rssParts.push(
      `${concurrentPeaks.map(mb).join(' / ')} with ${CONCURRENT} at once ` +
        `(${givenBack.map((a) => a.map(mb).join(' / ')).join('; ')} ${AFTER_S.join('/')} s after the last line was shipped)`,
    );
  }
  if (PARTS.has('idle')) rssParts.push(`${mb(rssIdle)} with ${IDLE} idle containers`);
  if (PARTS.has('crowd')) rssParts.push(`peak ${mb(crowdPeak)} with ${CROWD} attached (${crowdWritersCount} writing)`);
  console.log(`plugin RSS: ${rssParts.join('; ')}`);
  const loadPeak = Math.max(...loadPeaks, ...readPeaks, ...concurrentPeaks);
  console.log('');
  console.log('targets:');
  if (runs) console.log(`  run time within ${f2(TARGET_VS_FLOOR)}x of the floor: ${f2(logsRun / floorRun)}x, ${verdict(logsRun <= floorRun * TARGET_VS_FLOOR)}`);
  if (reads) console.log(`  docker logs within ${f2(TARGET_READ_VS_FLOOR)}x of the read floor: ${f2(logsRead / floorRead)}x, ${verdict(logsRead <= floorRead * TARGET_READ_VS_FLOOR)}`);
  if (reads) console.log(`  docker logs faster than json-file: ${f2(logsRead / baseRead)}x, ${verdict(logsRead < baseRead)}`);
  if (concurrent) console.log(`  ${CONCURRENT} at once written no slower than json-file: ${f2(concWrite / concBase)}x, ${verdict(concWrite <= concBase)}`);
  if (concurrent) console.log(`  ${CONCURRENT} at once shipped at json-file's write rate: ${f2(concShip / concBase)}x its time, ${verdict(concShip <= concBase)}`);
  if (runs || concurrent) console.log(`  RSS under ${TARGET_RSS_LOAD_MB} MB under load: ${mb(loadPeak)}, ${verdict(loadPeak < TARGET_RSS_LOAD_MB)}`);
  if (concurrent) console.log(
    `  memory given back ${GIVEN_BACK_AFTER_S} s after the load (within 20 MB of the RSS at start): ${mb(givenBackMb)}, ` +
      `${verdict(givenBackMb <= rssAtStart + 20)}`,
  );
  if (PARTS.has('idle')) console.log(`  RSS under ${TARGET_RSS_IDLE_MB} MB with ${IDLE} idle containers: ${mb(rssIdle)}, ${verdict(rssIdle < TARGET_RSS_IDLE_MB)}`);
  if (PARTS.has('crowd')) console.log(`  RSS under ${TARGET_RSS_CROWD_MB} MB with ${CROWD} attached: ${mb(crowdPeak)}, ${verdict(crowdPeak < TARGET_RSS_CROWD_MB)}`);
  if (PARTS.has('crowd')) console.log(
    `  open files with ${CROWD} attached well within the limit (under a quarter): ${crowdFiles.open} of ${crowdFiles.limit}, ` +
      `${verdict(crowdFiles.open < crowdFiles.limit / 4)}`,
  );
  if (concurrent || PARTS.has('crowd')) console.log(`  ${CONCURRENT} concurrent and ${CROWD} attached containers, nothing lost: ${verdict(concurrentComplete && crowdComplete)}`);
  console.log('');
  if (problems.length === 0) {
    const checked = [
      reads && `${READ_DRIVERS.length * ROUNDS} x ${LINES.toLocaleString('en-US')} lines, ${2 * ROUNDS} --tail and --since`,
      concurrent && `${concurrentDrivers.length * ROUNDS_CONCURRENT} x ${CONCURRENT} x ${CONCURRENT_LINES.toLocaleString('en-US')} lines`,
      PARTS.has('crowd') && `${crowdWritersCount} x ${CROWD_LINES} lines`,
    ].filter(Boolean);
    console.log(`check: every docker logs read (${checked.join(', ')}) returned exactly its lines, and fluentd received every line shipped`);
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
