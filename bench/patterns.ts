// The regexp engine for the patterns operators give (multiline-pattern, datetime-format,
// labels-regex, env-regex and their awslogs twins) and for the presets': time per line for
// typical patterns on typical lines and for backtracking-prone patterns on crafted lines,
// and what loading each engine costs the plugin process. JavaScript's RegExp (V8's
// backtracking engine) is the reference; the candidates are linear-time engines:
//   re2js      pure-JS port of Go's regexp (package.json)
//   re2        native binding to C++ RE2 (a node-gyp addon)
//   re2-wasm   C++ RE2 built for WebAssembly
//   v8-linear  V8's own experimental linear engine (the `l` flag)
// A `(bytes)` column gives the engine the line's Buffer instead of a string. Candidates not in
// package.json are skipped unless present: install them in a scratch folder (re2 builds with
// node-gyp: rebuild it with --nodedir for Node 24, as the Makefile's deps target does for
// unix-dgram) and link them into node_modules/ (an npm install here prunes the Node 24 binary
// package of the `node` devDependency).
//
// Each engine runs in a process of its own, so that one's JIT and heap do not weigh on another's,
// with the plugin's small young generation (config.json), so that its RSS is the plugin's.
//
//   node bench/patterns.ts        env: ONLY=re2js,regexp (a subset of engines)
import { spawnSync } from 'node:child_process';
import v8 from 'node:v8';

interface Tester {
  test(input: string | Buffer): boolean;
}

interface Engine {
  name: string;
  /** Whether it takes a line's bytes (a Buffer) as well as a string. */
  bytes: boolean;
  load(): Promise<(source: string) => Tester>;
}

// Each engine is imported in its own process once its RSS before is read, by a name in a
// variable so that the type-check does not need the optional ones.
const importName = (name: string): Promise<Record<string, unknown>> => import(name) as Promise<Record<string, unknown>>;

const ENGINES: Engine[] = [
  {
    name: 'regexp',
    bytes: false,
    load: async () => (source) => new RegExp(source),
  },
  {
    name: 're2js',
    bytes: true,
    load: async () => {
      const { RE2JS } = (await importName('re2js')) as unknown as typeof import('re2js');
      return (source) => RE2JS.compile(source);
    },
  },
  {
    name: 're2',
    bytes: true,
    load: async () => {
      const RE2 = (await importName('re2')).default as new (source: string, flags: string) => Tester;
      return (source) => new RE2(source, 'u');
    },
  },
  {
    name: 're2-wasm',
    bytes: false,
    load: async () => {
      const { RE2 } = (await importName('re2-wasm')) as { RE2: new (source: string, flags: string) => Tester };
      return (source) => new RE2(source, 'u');
    },
  },
  {
    name: 'v8-linear',
    bytes: false,
    load: async () => {
      v8.setFlagsFromString('--enable-experimental-regexp-engine');
      return (source) => new RegExp(source, 'l');
    },
  },
];

const KiB = 1024;
const LOG_LINE = '2026-11-21 23:06:40.123 INFO  [main] c.e.app.Service - request 1234 served in 12 ms path=/api/v1/items';
const FRAME_LINE = '\tat com.example.app.Service.handle(Service.java:123)';
const GO_FRAME = 'main.(*Server).handle(0xc000012345, {0x4b2c3e, 0x5})';
const filler = (bytes: number): string => 'lorem ipsum dolor sit amet, consectetur adipiscing elit '.repeat(Math.ceil(bytes / 56)).slice(0, bytes);

interface Case {
  name: string;
  pattern: keyof Patterns;
  line: string;
  /** Too slow to run on the backtracking engine (exponential or quadratic at this size). */
  backtrackingHangs?: boolean;
}

type Patterns = Awaited<ReturnType<typeof patterns>>;

/** The patterns, the presets' and the datetime format's as logship builds them (in the parent only: it loads the engine). */
async function patterns() {
  const { PRESET_PATTERNS } = await import('../src/shaping/multiline-presets.ts');
  const { datetimeFormatPattern } = await import('../src/shaping/multiline.ts');
  return {
    iso: String.raw`^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}`,
    bracket: String.raw`^\[`,
    datetime: datetimeFormatPattern('%Y-%m-%d %H:%M:%S').pattern(),
    javaFrame: PRESET_PATTERNS.JAVA_FRAME,
    javaException: PRESET_PATTERNS.JAVA_EXCEPTION,
    goTrace: PRESET_PATTERNS.GO_TRACE,
    label: String.raw`^com\.example\.`,
    nested: String.raw`^(\w+\s?)+:`,
    dotStar: String.raw`\[(ERROR|WARN)\].*:`,
  };
}

// Crafted lines that match neither pattern, each with a ':' so that no engine can tell that
// from a scan for the literal alone (re2js and RE2 look for a pattern's required literal first).
const words = (bytes: number): string => 'a'.repeat(bytes - 2) + '!:';
const tags = (bytes: number): string => ':' + '[ERROR]'.repeat(Math.ceil(bytes / 7)).slice(0, bytes - 1);

const CASES: Case[] = [
  { name: 'iso start, log line (match)', pattern: 'iso', line: LOG_LINE },
  { name: 'iso start, frame (no match)', pattern: 'iso', line: FRAME_LINE },
  { name: '^\\[, log line (no match)', pattern: 'bracket', line: LOG_LINE },
  { name: 'datetime-format, log line', pattern: 'datetime', line: LOG_LINE },
  { name: 'datetime-format, frame', pattern: 'datetime', line: FRAME_LINE },
  { name: 'datetime-format, 16 KiB no match', pattern: 'datetime', line: filler(16 * KiB) },
  { name: 'java frame, frame', pattern: 'javaFrame', line: FRAME_LINE },
  { name: 'java frame, log line', pattern: 'javaFrame', line: LOG_LINE },
  { name: 'java exception, exception', pattern: 'javaException', line: 'java.lang.IllegalStateException: boom' },
  { name: 'java exception, log line', pattern: 'javaException', line: LOG_LINE },
  { name: 'go trace, frame', pattern: 'goTrace', line: GO_FRAME },
  { name: 'labels-regex, key', pattern: 'label', line: 'com.example.team' },
  { name: '^(\\w+\\s?)+:, 29 B', pattern: 'nested', line: words(29) },
  { name: '^(\\w+\\s?)+:, 16 KiB', pattern: 'nested', line: words(16 * KiB), backtrackingHangs: true },
  { name: '^(\\w+\\s?)+:, 1 MiB', pattern: 'nested', line: words(1024 * KiB), backtrackingHangs: true },
  { name: '\\[(ERROR|WARN)\\].*:, 16 KiB', pattern: 'dotStar', line: tags(16 * KiB) },
  { name: '\\[(ERROR|WARN)\\].*:, 64 KiB', pattern: 'dotStar', line: tags(64 * KiB) },
  { name: '\\[(ERROR|WARN)\\].*:, 1 MiB', pattern: 'dotStar', line: tags(1024 * KiB), backtrackingHangs: true },
];

/** Nanoseconds per test: after 50 ms of warm-up (the JIT), the mean over ~100 ms; one run if a single one takes longer. */
function timePerTest(tester: Tester, input: string | Buffer): number {
  const time = (runs: number): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) tester.test(input);
    return Number(process.hrtime.bigint() - t0) / runs;
  };
  const first = time(1);
  if (first > 100e6) return first;
  let runs = 1;
  for (let spent = first; spent < 50e6; runs *= 2) spent += time(runs) * runs;
  return time(Math.max(3, Math.round(100e6 / time(runs))));
}

function format(ns: number): string {
  if (ns < 10_000) return `${ns.toFixed(0)} ns`;
  if (ns < 10e6) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${(ns / 1e6).toFixed(1)} ms`;
}

/** One engine's column, in this process: its load cost, then each case's time per line. */
async function column(engine: Engine, bytes: boolean, sources: Patterns): Promise<string[]> {
  const gc = globalThis.gc ?? (() => {});
  gc();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const compile = await engine.load();
  const testers = new Map<string, Tester | null>();
  for (const [key, source] of Object.entries(sources)) {
    try {
      testers.set(key, compile(source));
    } catch {
      testers.set(key, null);
    }
  }
  const loadMs = performance.now() - t0;
  gc();
  const rssMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  const cells = CASES.map((c) => {
    const tester = testers.get(c.pattern);
    if (!tester) return 'refused';
    if (engine.name === 'regexp' && c.backtrackingHangs) return 'not run';
    return format(timePerTest(tester, bytes ? Buffer.from(c.line) : c.line));
  });
  return [`${loadMs.toFixed(1)} ms`, `+${rssMiB.toFixed(1)} MiB`, ...cells];
}

const [, , childEngine, childInput] = process.argv;
if (childEngine) {
  const engine = ENGINES.find((e) => e.name === childEngine)!;
  console.log(JSON.stringify(await column(engine, childInput === 'bytes', JSON.parse(process.env.BENCH_PATTERNS!) as Patterns)));
} else {
  const env = { ...process.env, BENCH_PATTERNS: JSON.stringify(await patterns()) };
  const only = process.env.ONLY?.split(',');
  const labels: string[] = [];
  const columns: string[][] = [];
  for (const engine of ENGINES) {
    if (only && !only.includes(engine.name)) continue;
    for (const input of engine.bytes ? ['string', 'bytes'] : ['string']) {
      const child = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=2', process.argv[1]!, engine.name, input], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.status !== 0) {
        console.log(`${engine.name}: not run (${child.stderr.split('\n').find((l) => /Error/.test(l)) ?? child.stderr.trim()})`);
        break;
      }
      labels.push(input === 'bytes' ? `${engine.name} (bytes)` : engine.name);
      columns.push(JSON.parse(child.stdout) as string[]);
    }
  }
  const rows = ['load + compile', 'RSS after load', ...CASES.map((c) => c.name)];
  console.log(['time per line'.padEnd(34), ...labels.map((l) => l.padStart(16))].join(''));
  rows.forEach((row, i) => console.log([row.padEnd(34), ...columns.map((col) => col[i]!.padStart(16))].join('')));
}
