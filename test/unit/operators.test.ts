// Issue 17's controls: filters, redaction and rate limits as log-opts (validated at StartLogging),
// applied by the line shaper and the shipper over a real on-disk store; the status snapshot.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { BackendFactory, BackendPlan } from '../../src/delivery/backend.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';
import { CursorFile } from '../../src/delivery/cursor.ts';
import { DeadLetterFile } from '../../src/delivery/dead-letters.ts';
import { TokenBucket } from '../../src/delivery/rate-limit.ts';
import { Shipper } from '../../src/delivery/shipper.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import { decodeLogEntry } from '../../src/codec/log-entry.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { backendDropped } from '../../src/observability/metrics.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import type { ContainerInfo } from '../../src/shaping/container.ts';
import { compileGoRegexp } from '../../src/shaping/go-regexp.ts';
import { LineShaper } from '../../src/shaping/line-shaper.ts';
import { REDACT_PRESET_NAMES, Redactor, ShortSecretError, presetPattern, redactorFor } from '../../src/shaping/redact.ts';
import { ContainerStore } from '../../src/store/container-store.ts';
import { type EntryFields, T0, batch as frameBatch, frame, lines } from './frames.ts';
import { MemoryBackend } from './memory-backend.ts';

const ID = 'e'.repeat(64);
const CONTEXT = { id: ID, name: 'app', imageId: '', imageName: '', created: '', command: '', daemonName: 'docker', tag: ID.slice(0, 12), tagSet: false, tagEmpty: false, attributes: [], hostname: 'h', info: { id: '', name: '', imageId: '', imageName: '', entrypoint: '', args: [], env: [], labels: {}, config: {}, daemonName: 'docker', hostname: 'h' } };

/** A factory named `name` whose backends all hand their lines to `receiver`. */
function factory(name: string, receiver: MemoryBackend): BackendFactory<null> {
  return {
    name,
    options: [],
    configure: () => null,
    batchLimits: () => ({ maxLines: 1000, maxBytes: 1 << 20, maxDelayMs: 5 }),
    retryPolicy: () => ({ initialDelayMs: 2, maxDelayMs: 10 }),
    create: () => receiver,
  };
}

const opts = (config: Record<string, string>, names = ['a', 'b']) =>
  parseLogOptions(config, names.map((n) => factory(n, new MemoryBackend())));

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-operators-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function openStore(): ContainerStore {
  return new ContainerStore(dir, { maxSizeBytes: 1 << 20, maxFiles: 5, compress: false }, 1 << 20, (n, err) => assert.fail(`dropped ${n}: ${String(err)}`));
}

function ship(store: ContainerStore, plan: BackendPlan, redactor: Redactor | null = null): Shipper {
  return new Shipper(store, plan, CONTEXT, new CursorFile(dir, plan.name), new DeadLetterFile(dir, plan.name), undefined, redactor);
}

function planOf(config: Record<string, string>, receiver: MemoryBackend, name = 'a'): BackendPlan {
  return parseLogOptions({ backend: name, ...config }, [factory(name, receiver)]).backends[0]!;
}

async function dropped(backend: string, reason: string): Promise<number> {
  return (await backendDropped.get()).values.find((v) => v.labels.backend === backend && v.labels.reason === reason)?.value ?? 0;
}

describe('options', () => {
  it('refuses what it cannot honour, naming the option and what it accepts', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ backend: 'a', 'ship-streams': 'stdin' }, /'ship-streams': expected stdout, stderr/],
      [{ backend: 'a', 'drop-pattern': '(?=x)' }, /'drop-pattern'.*lookarounds/],
      [{ backend: 'a', 'filter-backends': 'a' }, /'filter-backends' needs one of/],
      [{ backend: 'a', 'drop-pattern': 'x', 'filter-backends': 'c' }, /'c' is not a backend that log opt 'backend' selects \(selected: a\)/],
      [{ backend: 'a', redact: 'jwt,ssn' }, /'ssn' is not a preset \(accepted: .*aws-access-key.*or all\)/],
      [{ backend: 'a', 'redact-env': 'DB-PASS' }, /'DB-PASS' is not an environment variable name/],
      [{ backend: 'a', 'redact-local': 'true' }, /'redact-local' needs one of/],
      [{ backend: 'a', 'rate-limit-lines': '0' }, /'rate-limit-lines': expected a whole number of lines per second, 1 or more/],
      [{ backend: 'a', 'rate-limit-bytes': 'lots' }, /'rate-limit-bytes': expected a size/],
      [{ backend: 'a', 'rate-limit-lines': '5', 'rate-limit-mode': 'queue' }, /expected wait or drop/],
      [{ backend: 'a', 'rate-limit-lines': '5', 'rate-limit-burst': '2h' }, /'rate-limit-burst'/],
      [{ backend: 'a', 'rate-limit-mode': 'drop' }, /'rate-limit-mode' needs 'rate-limit-lines' or 'rate-limit-bytes'/],
    ];
    for (const [config, message] of cases) assert.throws(() => opts(config), (err: Error) => err instanceof InvalidOptionError && message.test(err.message), JSON.stringify(config));
  });

  it('binds filters and rate limits to every backend, or to those listed', () => {
    const all = opts({ backend: 'a,b', 'drop-pattern': 'health', 'rate-limit-lines': '10' });
    assert.ok(all.backends.every((p) => p.filter && p.rateLimit?.linesPerSec === 10));
    const one = opts({ backend: 'a,b', 'drop-pattern': 'health', 'filter-backends': 'b', 'rate-limit-bytes': '1k', 'rate-limit-backends': 'a' });
    assert.deepEqual(one.backends.map((p) => [p.name, Boolean(p.filter), p.rateLimit?.bytesPerSec ?? null]), [['a', false, 1024], ['b', true, null]]);
    assert.equal(opts({ backend: 'a', 'ship-streams': 'stdout,stderr' }).backends[0]!.filter, null, 'both streams is no filter');
  });
});

describe('redaction', () => {
  const redact = (r: Redactor, s: string | Buffer) => r.redact(Buffer.from(s)).toString('latin1');
  const presets = new Redactor(REDACT_PRESET_NAMES.map(presetPattern), []);

  it('masks what each preset documents, and leaves the rest of the line as it was', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl';
    const cases: [string, string][] = [
      ['key AKIAIOSFODNN7EXAMPLE in use', 'key *** in use'],
      ['ASIAY34FZKBOKMUTVV7A', '***'],
      ['AKIAIOSFODNN7EXAMPL short', 'AKIAIOSFODNN7EXAMPL short'],
      ['aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', 'aws_secret_access_key = "***"'],
      ['Authorization: Bearer abc.DEF-123_x/y+z==', 'Authorization: Bearer ***'],
      [`token=${jwt};`, 'token=***;'],
      ['-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY----- done', '-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY----- done'],
      ['-----BEGIN PRIVATE KEY----- MIIEvQIBADANBg', '-----BEGIN PRIVATE KEY-----***'],
      ['dial postgres://app:s3cr3t@db:5432/x', 'dial postgres://app:***@db:5432/x'],
      ['GET /health 200 bearer-less and eyJ alone', 'GET /health 200 bearer-less and eyJ alone'],
    ];
    for (const [line, expected] of cases) assert.equal(redact(presets, line), expected, line);
  });

  it('masks env values byte for byte, keeps invalid UTF-8 around them, and refuses short values without quoting them', () => {
    const r = redactorFor({ patterns: [], envNames: ['DB_PASSWORD', 'UNSET', 'EMPTY'], local: false }, ['DB_PASSWORD=hunter2-Ω', 'EMPTY='])!;
    const line = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(' pw hunter2-Ω and hunter2-Ωhunter2-Ω ')]);
    const out = r.redact(line);
    assert.deepEqual(out, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(' pw *** and ****** ')]));
    assert.equal(redactorFor({ patterns: [], envNames: ['UNSET'], local: false }, []), null, 'nothing to mask: no redactor');
    assert.throws(
      () => redactorFor({ patterns: [], envNames: ['PIN'], local: false }, ['PIN=12345']),
      (err: Error) => err instanceof ShortSecretError && /PIN is shorter than 6 characters/.test(err.message) && !err.message.includes('12345'),
    );
  });

  it('masks only the capture groups of an operator\'s pattern, and returns the same Buffer when nothing matched', () => {
    const spec = opts({ backend: 'a', 'redact-pattern': 'password=(\\S+)|ssn \\d{3}-\\d{2}-\\d{4}' }).shaping.redaction!;
    const r = redactorFor(spec, [])!;
    assert.equal(redact(r, 'user=x password=pa55 ok'), 'user=x password=*** ok');
    assert.equal(redact(r, 'ssn 123-45-6789.'), '***.');
    const plain = Buffer.from('nothing here');
    assert.equal(r.redact(plain), plain);
  });

  it('runs after multiline joins a PEM block, before parse-json reads fields', () => {
    const spec = opts({ backend: 'a', redact: 'all', 'parse-json': 'true' }).shaping;
    const joined = new LineShaper<number>(
      { multiline: { matcher: { kind: 'first-line', pattern: compileGoRegexp('^\\S') }, flushTimeoutMs: 1000, maxLines: 10, maxBytes: 1 << 16 }, parseJson: false },
      {},
      redactorFor(spec.redaction, []),
    );
    const entry = (line: string) => ({ source: 'stdout' as const, timeNano: T0, line: Buffer.from(line), partial: false, partialMetadata: null });
    const out: OutgoingLine[] = [];
    for (const line of ['key: -----BEGIN EC PRIVATE KEY-----', '  MHcCAQEEIIrYSSNQFaA', '  -----END EC PRIVATE KEY-----', 'next']) out.push(...joined.push(entry(line), 0, 0));
    assert.deepEqual(out.map((l) => l.line.toString()), ['key: -----BEGIN EC PRIVATE KEY-----***-----END EC PRIVATE KEY-----']);
    const json = new LineShaper<number>({ multiline: null, parseJson: true }, {}, redactorFor(spec.redaction, []));
    const [parsed] = json.push(entry('{"auth":"Bearer abcdef123456"}'), 0, 0);
    assert.deepEqual(parsed!.fields, { auth: 'Bearer ***' });
  });
});

describe('token bucket', () => {
  it('lets a burst go, then the rate; a large line overdraws the bytes bucket instead of waiting forever', () => {
    const b = new TokenBucket({ linesPerSec: 10, bytesPerSec: 100, burstMs: 1000, mode: 'wait', backends: null }, 0);
    const size = () => 5;
    assert.equal(b.take(size, 20, 0), 10, 'the burst: a full bucket of lines');
    assert.equal(b.take(size, 20, 0), -1000, 'then wait for the bucket to hold what it can');
    assert.equal(b.take(size, 3, 300), 3, '3 lines after 300 ms');
    assert.equal(b.take(() => 500, 1, 300) < 0, true, 'a 500-byte line waits for a full bytes bucket...');
    assert.equal(b.take(() => 500, 1, 2000), 1, '...then goes');
    assert.equal(b.take(size, 1, 2000) < 0, true, 'and the debt is paid by waiting');
    const d = new TokenBucket({ linesPerSec: 2, bytesPerSec: null, burstMs: 1000, mode: 'drop', backends: null }, 0);
    assert.deepEqual([d.tryTake(1, 0), d.tryTake(1, 0), d.tryTake(1, 0), d.tryTake(1, 500)], [true, true, false, true]);
  });
});

describe('the shipper with the controls', () => {
  it('filters by stream and pattern, counts them, and passes the cursor over them so they are not lag', async () => {
    const store = openStore();
    store.attachProducer();
    const receiver = new MemoryBackend();
    const plan = planOf({ 'ship-streams': 'stdout', 'drop-pattern': '^GET /health', 'keep-pattern': 'GET|ERROR' }, receiver, 'filtering');
    const shipper = ship(store, plan);
    const entries: EntryFields[] = [
      { line: 'GET /health 200' },
      { line: 'GET /api 200' },
      { line: 'ERROR on stderr', source: 'stderr' },
      { line: 'debug noise' },
      { line: 'ERROR boom' },
      { line: 'GET /health 200' },
    ].map((e, i) => ({ ...e, timeNano: T0 + BigInt(i) }));
    store.append(frameBatch(entries));
    await receiver.received(2);
    store.append(frameBatch(lines(3).map((e) => ({ ...e, line: 'GET /health 200' }))));
    for (let i = 0; i < 500 && new CursorFile(dir, 'filtering').load()?.index !== 9; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(receiver.lines, ['GET /api 200', 'ERROR boom']);
    assert.equal(await dropped('filtering', 'filtered'), 7);
    const status = shipper.status();
    assert.equal(status.dropped.filtered, 7);
    assert.equal(status.lagEntries, 0, 'filtered lines are not lag');
    store.detachProducer();
    await shipper.done;
    await store.close();
  });

  it('wait mode: ships every line, in order, in batches no larger than the bucket', async () => {
    const store = openStore();
    store.attachProducer();
    const receiver = new MemoryBackend();
    const shipper = ship(store, planOf({ 'rate-limit-lines': '100', 'rate-limit-burst': '50ms' }, receiver, 'waiting'));
    store.append(frameBatch(lines(40)));
    await receiver.received(40);
    assert.deepEqual(receiver.lines, lines(40).map((e) => e.line));
    assert.ok(receiver.batches.length >= 8, `${receiver.batches.length} batches of at most 5 lines`);
    for (const b of receiver.batches) assert.ok(b.length <= 5, `a batch of ${b.length} lines`);
    assert.equal(await dropped('waiting', 'rate_limited'), 0);
    store.detachProducer();
    await shipper.done;
    await store.close();
  });

  it('drop mode: lines over the rate are counted as rate_limited and passed; the store keeps them all', async () => {
    const store = openStore();
    store.attachProducer();
    const receiver = new MemoryBackend();
    const shipper = ship(store, planOf({ 'rate-limit-lines': '1', 'rate-limit-burst': '1s', 'rate-limit-mode': 'drop' }, receiver, 'dropping'));
    store.append(frameBatch(lines(10)));
    await receiver.received(1);
    for (let i = 0; i < 500 && (await dropped('dropping', 'rate_limited')) + receiver.lines.length < 10; i++) await new Promise((r) => setTimeout(r, 10));
    const limited = await dropped('dropping', 'rate_limited');
    assert.equal(limited + receiver.lines.length, 10);
    assert.ok(limited >= 8, `${limited} rate_limited`);
    assert.equal(receiver.lines[0], 'line 1');
    store.detachProducer();
    await shipper.done;
    assert.equal(new CursorFile(dir, 'dropping').load()!.index, 10);
    await store.close();
  });

  it('redacts what it ships with the container\'s env bound in', async () => {
    const store = openStore();
    store.attachProducer();
    const receiver = new MemoryBackend();
    const parsed = parseLogOptions({ backend: 'r', 'redact-env': 'DB_PASSWORD', redact: 'bearer' }, [factory('r', receiver)]);
    const shipper = ship(store, parsed.backends[0]!, redactorFor(parsed.shaping.redaction, ['DB_PASSWORD=correct-horse']));
    store.append(frameBatch([{ line: 'connecting with correct-horse', timeNano: T0 }, { line: 'Authorization: Bearer xyz123', timeNano: T0 + 1n }]));
    await receiver.received(2);
    assert.deepEqual(receiver.lines, ['connecting with ***', 'Authorization: Bearer ***']);
    store.detachProducer();
    await shipper.done;
    await store.close();
  });
});

describe('the registry with the controls', () => {
  const info = (id: string, name: string, config: Record<string, string>, env: string[]): ContainerInfo => ({
    id, name, config, imageId: '', imageName: '', created: '', entrypoint: '', args: [], env, labels: {}, daemonName: 'docker',
  });
  const local = async (registry: Registry, id: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const b of registry.read(id, { sinceNano: null, untilNano: null, tail: -1, follow: false }, new AbortController().signal)) {
      for (const p of b) out.push(decodeLogEntry(p).line.toString());
    }
    return out;
  };
  const until = async (what: string, predicate: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(predicate(), what);
  };

  it('ships redact-env values masked; the local copy keeps them unless redact-local; a short value fails StartLogging', async () => {
    fs.mkdirSync(path.join(dir, 'fifo'));
    const receiver = new MemoryBackend();
    const factories = [factory('r', receiver)];
    const registry = new Registry(path.join(dir, 'data'), path.join(dir, 'fifo'), { requests: START_LOGGING, backends: factories });
    const printed = ['db password is s3cret-pw!', 'plain line', `${'x'.repeat(20_000)} s3cret-pw!`];
    const runs = [
      { id: '1'.repeat(64), name: '/kept', config: { backend: 'r', 'redact-env': 'DB_PASSWORD' } },
      { id: '2'.repeat(64), name: '/masked', config: { backend: 'r', 'redact-env': 'DB_PASSWORD', 'redact-local': 'true' } },
    ];
    for (const [n, run] of runs.entries()) {
      const fifo = path.join(dir, 'fifo', `f${n}`);
      execFileSync('mkfifo', [fifo]);
      const daemonEnd = fs.openSync(fifo, fs.constants.O_RDWR);
      const i = info(run.id, run.name, run.config, ['PATH=/bin', 'DB_PASSWORD=s3cret-pw!']);
      registry.start(fifo, i);
      fs.writeSync(daemonEnd, Buffer.concat(printed.map((line, k) => frame({ line, timeNano: T0 + BigInt(k) }))));
      await until(`shipped: ${receiver.lines.length} ${JSON.stringify(registry.statusSource().containers())}`, () => receiver.lines.length >= 3 * (n + 1));
      const status = registry.statusSource().containers().find((c) => c.id === run.id.slice(0, 12))!;
      assert.equal(status.name, run.name.slice(1));
      assert.equal(status.running, true);
      assert.equal(status.backends[0]!.backend, 'r');
      assert.equal(status.backends[0]!.shipped, 3);
      fs.closeSync(daemonEnd);
    }
    const masked = ['db password is ***', 'plain line', `${'x'.repeat(20_000)} ***`];
    assert.deepEqual(receiver.lines, [...masked, ...masked]);
    assert.deepEqual(await local(registry, runs[0]!.id), printed, 'the local copy as printed');
    assert.deepEqual(await local(registry, runs[1]!.id), masked, 'the local copy masked (redact-local)');

    const fifo = path.join(dir, 'fifo', 'short');
    execFileSync('mkfifo', [fifo]);
    const short = info('3'.repeat(64), '/short', { backend: 'r', 'redact-env': 'PIN' }, ['PIN=1234']);
    assert.throws(() => registry.start(fifo, short), (err: Error) =>
      err instanceof InvalidOptionError && /'redact-env'.*PIN is shorter than 6 characters/.test(err.message) && !err.message.includes('1234'));
    await registry.shutdown();
  });
});
