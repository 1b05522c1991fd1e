// Issue 17's controls, cost per line in the shipping path (the line shaper) and, for
// redact-local, in the FIFO path (a frame rewritten before the store's write), against the same
// path with no control in the same run. A typical web-server line; a tenth are health checks.
//   node bench/controls.ts        env: LINES (default 200000), ROUNDS (default 5; the median is printed)
import { LineShaper } from '../src/shaping/line-shaper.ts';
import { parseLogOptions } from '../src/lifecycle/options.ts';
import { redactorFor } from '../src/shaping/redact.ts';
import type { BackendFactory } from '../src/delivery/backend.ts';
import type { LogEntry } from '../src/codec/log-entry.ts';

const LINES = Number(process.env.LINES ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ENV = ['DB_PASSWORD=correct-horse-battery'];
const entries: LogEntry[] = Array.from({ length: 1000 }, (_, i) => ({
  source: 'stdout',
  timeNano: 1_795_000_000_000_000_000n + BigInt(i),
  line: Buffer.from(i % 10 === 0
    ? '10.0.0.1 - - [02/Dec/2026:19:00:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.30"'
    : `10.0.0.${i % 250} - - [02/Dec/2026:19:00:00 +0000] "GET /api/orders/${i}?page=2 HTTP/1.1" 200 5123 "-" "Mozilla/5.0 (X11; Linux x86_64)"`),
  partial: false,
  partialMetadata: null,
}));
const none: BackendFactory<null> = {
  name: 'b', options: [], configure: () => null, batchLimits: () => ({ maxLines: 1, maxBytes: 1 }),
  create: () => ({ send: () => Promise.resolve({}), close: () => Promise.resolve() }),
};

const rows: [string, Record<string, string>][] = [
  ['none (floor)', {}],
  ['filter: drop-pattern', { 'drop-pattern': '"GET /health ' }],
  ['filter: ship-streams + keep-pattern', { 'ship-streams': 'stdout', 'keep-pattern': 'HTTP/1\\.[01]" [2-5]' }],
  ['redact=all (5 presets)', { redact: 'all' }],
  ['redact-env (1 value)', { 'redact-env': 'DB_PASSWORD' }],
  ['redact=all + redact-env + redact-pattern', { redact: 'all', 'redact-env': 'DB_PASSWORD', 'redact-pattern': 'password=(\\S+)' }],
  ['rate-limit-lines (drop mode, bucket only)', { 'rate-limit-lines': '1000000000', 'rate-limit-mode': 'drop' }],
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const floor: number[] = [];
console.log(`${LINES} lines per round, median of ${ROUNDS} rounds (ns per line in the line shaper; ratio to no control)`);
for (const [name, config] of rows) {
  const options = parseLogOptions({ backend: 'b', ...config }, [none]);
  const plan = options.backends[0]!;
  const redactor = redactorFor(options.shaping.redaction, ENV);
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const shaper = new LineShaper<number>(plan, {}, redactor);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < LINES; i++) shaper.push(entries[i % entries.length]!, i, 0);
    if (plan.rateLimit) {
      // What drop mode adds per line: one bucket take (the shipper's own loop is not in this figure).
      const { TokenBucket } = await import('../src/delivery/rate-limit.ts');
      const bucket = new TokenBucket(plan.rateLimit, 0);
      for (let i = 0; i < LINES; i++) bucket.tryTake(100, i);
    }
    times.push(Number(process.hrtime.bigint() - t0) / LINES);
  }
  const ns = median(times);
  if (floor.length === 0) floor.push(ns);
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/line  ${(ns / floor[0]!).toFixed(2)}x`);
}
