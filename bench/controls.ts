// Issue 17's controls (filters, redaction, rate limits), each against no control in the same run:
//
// 1. In process: ns per line in the shipping path (the line shaper; for the rate limit, the
//    drop mode's bucket), median of ROUNDS rounds of LINES lines.
// 2. Through the engine, when PLUGIN is installed (make bench): a container writing
//    DOCKER_LINES of the same lines, to exit, with logship shipping to fluentd (a receiver in
//    this process that counts records) with each control on, with no control, and with the
//    discard-only plugin (the floor: the daemon's marshal and FIFO write, nothing stored),
//    interleaved over DOCKER_ROUNDS rounds with the order rotating. Per row: the write time
//    (create + start -> exit; the median, and its ratio to the floor and to no control), the
//    plugin's CPU for the run (until it has shipped every line and its CPU settled), and that
//    CPU's cost per line above no control. redact-local is here only: it rewrites frames in the
//    FIFO path, before the store's write, where the daemon can wait on it.
//   node bench/controls.ts   env: LINES (200000), ROUNDS (5), PLUGIN (logship:latest),
//     DISCARD (logship-discard:latest; installed from plugin/ if missing), DOCKER_LINES (200000),
//     DOCKER_ROUNDS (3), FLUENT_PORT (24224)
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { LineShaper } from '../src/shaping/line-shaper.ts';
import { parseLogOptions } from '../src/lifecycle/options.ts';
import { redactorFor } from '../src/shaping/redact.ts';
import { TokenBucket } from '../src/delivery/rate-limit.ts';
import type { BackendFactory } from '../src/delivery/backend.ts';
import type { LogEntry } from '../src/codec/log-entry.ts';
import { createContainer, removeContainers, waitExit } from '../test/e2e/lib/containers.ts';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { FluentCounter } from './fluent-counter.ts';
import { PluginProcess } from './plugin-process.ts';

const LINES = Number(process.env.LINES ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PLUGIN = process.env.PLUGIN ?? process.env.LOGSHIP_PLUGIN ?? 'logship:latest';
const DISCARD = process.env.DISCARD ?? 'logship-discard:latest';
const DOCKER_LINES = Number(process.env.DOCKER_LINES ?? 200_000);
const DOCKER_ROUNDS = Number(process.env.DOCKER_ROUNDS ?? 3);
const FLUENT_PORT = Number(process.env.FLUENT_PORT ?? 24224);
const SECRET = 'correct-horse-battery';
const ENV = [`DB_PASSWORD=${SECRET}`];

// A typical web-server line; every tenth a health check, every hundredth carries the secret.
const HEALTH = '10.0.0.1 - - [02/Dec/2026:19:00:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.30"';
const ORDER = (i: number, query: string) =>
  `10.0.0.${i % 250} - - [02/Dec/2026:19:00:00 +0000] "GET /api/orders/${i}?${query} HTTP/1.1" 200 5123 "-" "Mozilla/5.0 (X11; Linux x86_64)"`;
const lineText = (i: number) => (i % 10 === 0 ? HEALTH : ORDER(i, i % 100 === 1 ? `token=${SECRET}` : 'page=2'));
/** The same lines, `lines` of them, printed by busybox awk in the container (i from 0). */
const awkProgram = (lines: number) =>
  `BEGIN { for (i = 0; i < ${lines}; i++) { ` +
  `if (i % 10 == 0) print "${HEALTH.replaceAll('"', '\\"')}"; ` +
  `else printf "10.0.0.%d - - [02/Dec/2026:19:00:00 +0000] \\"GET /api/orders/%d?%s HTTP/1.1\\" 200 5123 \\"-\\" \\"Mozilla/5.0 (X11; Linux x86_64)\\"\\n", ` +
  `i % 250, i, (i % 100 == 1 ? "token=" ENVIRON["DB_PASSWORD"] : "page=2") } }`;

const entries: LogEntry[] = Array.from({ length: 1000 }, (_, i) => ({
  source: 'stdout',
  timeNano: 1_795_000_000_000_000_000n + BigInt(i),
  line: Buffer.from(lineText(i)),
  partial: false,
  partialMetadata: null,
}));
const none: BackendFactory<null> = {
  name: 'b', options: [], configure: () => null, batchLimits: () => ({ maxLines: 1, maxBytes: 1 }),
  create: () => ({ send: () => Promise.resolve({}), close: () => Promise.resolve() }),
};

interface Row {
  name: string;
  config: Record<string, string>;
  /** Only through the engine (the control is not in the line shaper). */
  dockerOnly?: boolean;
}
const rows: Row[] = [
  { name: 'none', config: {} },
  { name: 'filter: drop-pattern', config: { 'drop-pattern': '"GET /health ' } },
  { name: 'filter: ship-streams + keep-pattern', config: { 'ship-streams': 'stdout', 'keep-pattern': 'HTTP/1\\.[01]" [2-5]' } },
  { name: 'redact=all (5 presets)', config: { redact: 'all' } },
  { name: 'redact-env (1 value)', config: { 'redact-env': 'DB_PASSWORD' } },
  { name: 'redact=all + redact-env + redact-pattern', config: { redact: 'all', 'redact-env': 'DB_PASSWORD', 'redact-pattern': 'password=(\\S+)' } },
  { name: 'rate-limit-lines (drop mode, bucket only)', config: { 'rate-limit-lines': '1000000000', 'rate-limit-mode': 'drop' } },
  { name: 'redact-env + redact-local', config: { 'redact-env': 'DB_PASSWORD', 'redact-local': 'true' }, dockerOnly: true },
  { name: 'redact=all + redact-local', config: { redact: 'all', 'redact-local': 'true' }, dockerOnly: true },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const f2 = (x: number) => x.toFixed(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function inProcess(): void {
  console.log(`1. in process: ${LINES} lines per round, median of ${ROUNDS} rounds (ns per line in the line shaper; ratio to no control)`);
  const measured = rows.filter((r) => !r.dockerOnly).map(({ name, config }) => {
    const options = parseLogOptions({ backend: 'b', ...config }, [none]);
    return { name, plan: options.backends[0]!, redactor: redactorFor(options.shaping.redaction, ENV), times: [] as number[] };
  });
  // Rows interleaved, a round of each in turn, after one round of each not counted: every row
  // runs on the same optimized (and deoptimized) code, so the first is not the one that pays for the JIT.
  for (let r = -1; r < ROUNDS; r++) {
    for (const row of measured) {
      const shaper = new LineShaper<number>(row.plan, {}, row.redactor);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < LINES; i++) shaper.push(entries[i % entries.length]!, i, 0);
      if (row.plan.rateLimit) {
        // What drop mode adds per line: one bucket take (the shipper's own loop is not in this figure).
        const bucket = new TokenBucket(row.plan.rateLimit, 0);
        for (let i = 0; i < LINES; i++) bucket.tryTake(100, i);
      }
      if (r >= 0) row.times.push(Number(process.hrtime.bigint() - t0) / LINES);
    }
  }
  const floor = median(measured[0]!.times);
  for (const { name, times } of measured) {
    const ns = median(times);
    console.log(`  ${name.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/line  ${(ns / floor).toFixed(2)}x`);
  }
}

/** Lines of the awk program that ship under `config` (drop-pattern drops the health checks). */
const expectedShipped = (config: Record<string, string>) => (config['drop-pattern'] ? DOCKER_LINES - Math.ceil(DOCKER_LINES / 10) : DOCKER_LINES);

async function throughEngine(): Promise<number> {
  try {
    await docker.getPlugin(PLUGIN, undefined).inspect();
  } catch {
    console.log(`2. through the engine: skipped (${PLUGIN} is not installed: make install, then make bench)`);
    return 0;
  }
  try {
    await docker.getPlugin(DISCARD, undefined).inspect();
  } catch {
    execFileSync('bench/discard-plugin/install.sh', [DISCARD], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const plugin = await PluginProcess.find(PLUGIN);
  const floorPlugin = await PluginProcess.find(DISCARD);
  const receiver = new FluentCounter(FLUENT_PORT);
  await receiver.listen();
  const ship = { backend: 'fluentd', 'fluentd-address': `127.0.0.1:${FLUENT_PORT}` };
  const runs = [{ name: `floor (${DISCARD})`, driver: DISCARD, config: {} as Record<string, string> }, ...rows.map((r) => ({ name: r.name, driver: PLUGIN, config: { ...ship, ...r.config } }))];
  const write = new Map<string, number[]>(runs.map((r) => [r.name, []]));
  const cpu = new Map<string, number[]>(runs.map((r) => [r.name, []]));
  const problems: string[] = [];
  const info = await docker.version();
  console.log(
    `2. through the engine ${info.Version}: a container writing ${DOCKER_LINES} lines (awk), ${DOCKER_ROUNDS} rounds; ` +
      `logship ships to fluentd; ${os.cpus().length} CPUs, load ${os.loadavg().map(f2).join(' ')}`,
  );
  try {
    const run = async (driver: string, config: Record<string, string>, lines: number) => {
      const c = await createContainer({ cmd: ['awk', awkProgram(lines)], driver, opts: config, env: ENV });
      const t0 = process.hrtime.bigint();
      await c.start();
      const code = await waitExit(c, 300_000);
      if (code !== 0) throw new Error(`${driver}: awk exited with ${code}`);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    // Warm-up, not counted: the image, the plugins' paths and the receiver's connection.
    for (const r of runs) await run(r.driver, r.config, 1000);
    await removeContainers();
    for (let round = 0; round < DOCKER_ROUNDS; round++) {
      const order = runs.map((_, i) => runs[(i + round) % runs.length]!);
      for (const r of order) {
        const proc = r.driver === DISCARD ? floorPlugin : plugin;
        receiver.reset();
        const cpu0 = proc.cpuSeconds();
        const seconds = await run(r.driver, r.config, DOCKER_LINES);
        if (r.driver === PLUGIN) {
          const want = expectedShipped(r.config);
          if (!(await receiver.waitFor(want, 300_000)) || receiver.total !== want) problems.push(`${r.name} round ${round + 1}: fluentd received ${receiver.total} lines, expected ${want}`);
        }
        // The plugin may still be storing (and shipping) what the daemon wrote last.
        let used = NaN;
        for (let prev = -1; (used = proc.cpuSeconds()) !== prev; prev = used) await sleep(300);
        write.get(r.name)!.push(seconds);
        cpu.get(r.name)!.push(used - cpu0);
        console.log(`  round ${round + 1}: ${r.name.padEnd(44)} written in ${f2(seconds)} s, plugin CPU ${f2(used - cpu0)} s`);
        await removeContainers();
      }
    }
  } finally {
    await removeContainers();
    await receiver.close();
  }
  const floorWrite = median(write.get(runs[0]!.name)!);
  const noneWrite = median(write.get('none')!);
  const noneCpu = median(cpu.get('none')!);
  console.log('');
  console.log(`${'control'.padEnd(44)} ${'write s (each round)'.padEnd(22)} median  vs floor  vs none  plugin CPU s  CPU ns/line over none`);
  for (const r of runs) {
    const w = write.get(r.name)!;
    const c = median(cpu.get(r.name)!);
    const over = r.driver === PLUGIN && r.name !== 'none' ? `${(((c - noneCpu) * 1e9) / DOCKER_LINES).toFixed(0)}` : '-';
    console.log(
      `${r.name.padEnd(44)} ${w.map(f2).join(' / ').padEnd(22)} ${f2(median(w)).padStart(6)}  ${f2(median(w) / floorWrite).padStart(6)}x ` +
        `${f2(median(w) / noneWrite).padStart(6)}x  ${f2(c).padStart(12)}  ${over.padStart(8)}`,
    );
  }
  if (problems.length > 0) {
    console.log(`check FAILED:\n  ${problems.join('\n  ')}`);
    return 1;
  }
  console.log(`check: fluentd received exactly the lines each control ships, every run`);
  return 0;
}

inProcess();
console.log('');
process.exitCode = await throughEngine();
