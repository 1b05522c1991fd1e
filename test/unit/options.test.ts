import { schemaKeys } from '../../src/options/schema.ts';
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackendFactory } from '../../src/delivery/backend.ts';
import { } from '../../src/backends/fluentd.ts';
import { fluentdFactory } from '../../src/backends/fluentd.ts';
import { BACKENDS } from '../../src/backends/index.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { compileGoRegexp } from '../../src/shaping/go-regexp.ts';
import { DEFAULT_STORE_OPTIONS } from '../../src/store/options.ts';
import { InvalidOptionError, parseSize } from '../../src/options/values.ts';

describe('log options', () => {
  it('defaults to 20m x 5 files, compressed', () => {
    assert.deepEqual(parseLogOptions({}, []).store, DEFAULT_STORE_OPTIONS);
    assert.deepEqual(parseLogOptions(null, []).store, { maxSizeBytes: 20_000_000, maxFiles: 5, compress: true });
  });

  it('reads sizes in json-file units (decimal)', () => {
    const cases: [string, number][] = [['10m', 10_000_000], ['1k', 1000], ['500', 500], ['1.5g', 1_500_000_000], ['20MB', 20_000_000], ['2 kb', 2000], ['3mi', 3_000_000]];
    for (const [text, bytes] of cases) assert.equal(parseSize('max-size', text), bytes, text);
  });

  it('parses every store option', () => {
    assert.deepEqual(parseLogOptions({ 'max-size': '1m', 'max-file': '3', compress: 'false' }, []).store, {
      maxSizeBytes: 1_000_000,
      maxFiles: 3,
      compress: false,
    });
    assert.equal(parseLogOptions({ 'max-file': '1' }, []).store.maxFiles, 1);
  });

  it('accepts the keys the daemon consumes itself', () => {
    assert.doesNotThrow(() =>
      parseLogOptions({ mode: 'non-blocking', 'max-buffer-size': '4m', 'cache-disabled': 'false', 'cache-max-size': '1m', 'cache-compress': 'true' }, []),
    );
  });

  it('names the option and the accepted values on bad input', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ foo: 'bar' }, /^unknown log opt 'foo' for logship log driver \(accepted: backend, max-size, max-file, compress, tag, labels, labels-regex, env, env-regex, multiline-pattern, datetime-format, multiline-preset, multiline-flush-timeout, multiline-max-lines, multiline-max-bytes, parse-json, ship-streams, drop-pattern, keep-pattern, filter-backends, redact, redact-pattern, redact-env, redact-local, rate-limit-lines, rate-limit-bytes, rate-limit-burst, rate-limit-mode, rate-limit-backends\)$/],
      [{ 'cache-foo': '1' }, /unknown log opt 'cache-foo'/],
      [{ 'max-size': 'lots' }, /invalid value 'lots' for log opt 'max-size': expected a positive size such as 500k, 20m or 1g/],
      [{ 'max-size': '0' }, /log opt 'max-size'/],
      [{ 'max-size': '-1m' }, /log opt 'max-size'/],
      [{ 'max-file': '0' }, /invalid value '0' for log opt 'max-file': expected a whole number of files, 1 or more/],
      [{ 'max-file': 'two' }, /log opt 'max-file'/],
      [{ compress: 'yes' }, /invalid value 'yes' for log opt 'compress': expected true or false/],
      [{ 'max-file': '1', compress: 'true' }, /'compress' cannot be true when 'max-file' is 1/],
    ];
    for (const [config, message] of cases) {
      assert.throws(() => parseLogOptions(config, []), (err: Error) => err instanceof InvalidOptionError && message.test(err.message), JSON.stringify(config));
    }
  });
});

// Factories shaped like the real backends, to test how options reach them.
function factory(name: string, keys: string[]): BackendFactory<Record<string, string>> {
  return {
    name,
    options: keys.map((key) => ({ key, type: 'string', doc: key })),
    configure(values) {
      const opts = Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined));
      if (opts[keys[0]!] === 'bad') throw new InvalidOptionError(`invalid value 'bad' for log opt '${keys[0]}'`);
      return opts;
    },
    batchLimits: () => ({ maxLines: 10, maxBytes: 1000 }),
    create: () => ({ send: () => Promise.resolve({}), close: () => Promise.resolve() }),
  };
}
const syslog = factory('syslog', ['syslog-address', 'syslog-facility']);
const fluentd = factory('fluentd', ['fluentd-address']);
const FACTORIES = [syslog, fluentd];

describe('backend selection', () => {
  it('defaults to the local copy only', () => {
    assert.deepEqual(parseLogOptions({}, FACTORIES).backends, []);
    assert.deepEqual(parseLogOptions({ backend: '' }, FACTORIES).backends, []);
  });

  it('fans out to a comma list, each backend getting only its own keys', () => {
    const seen: Record<string, Record<string, string>> = {};
    const spy = (f: BackendFactory<Record<string, string>>): BackendFactory<Record<string, string>> => ({
      ...f,
      configure: (values, settings) => (seen[f.name] = f.configure(values, settings)),
    });
    const plans = parseLogOptions(
      { backend: 'syslog, fluentd', 'syslog-address': 'udp://h:514', 'fluentd-address': 'h:24224', tag: '{{.Name}}', 'max-size': '1m' },
      [spy(syslog), spy(fluentd)],
    ).backends;
    assert.deepEqual(plans.map((p) => p.name), ['syslog', 'fluentd']);
    assert.deepEqual(seen, { syslog: { 'syslog-address': 'udp://h:514' }, fluentd: { 'fluentd-address': 'h:24224' } });
    assert.deepEqual(plans[0]!.limits, { maxLines: 10, maxBytes: 1000 });
  });

  it('names the option and what is accepted when selection or a backend option is wrong', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ backend: 'splunk' }, /^invalid value 'splunk' for log opt 'backend': 'splunk' is not a backend \(accepted: a comma-separated list of syslog, fluentd\)$/],
      [{ backend: 'syslog,syslog' }, /'syslog' is listed twice/],
      [{ 'syslog-address': 'udp://h' }, /^log opt 'syslog-address' is an option of backend 'syslog', which log opt 'backend' does not select \(backend=\)$/],
      [{ backend: 'fluentd', 'syslog-address': 'udp://h' }, /backend 'syslog'.*\(backend=fluentd\)/],
      [{ backend: 'syslog', colour: 'x' }, /^unknown log opt 'colour' for logship log driver \(accepted: backend, .*, env-regex, multiline-pattern, .*, parse-json, .*, rate-limit-backends, syslog-address, syslog-facility\)$/],
      [{ backend: 'syslog', 'syslog-address': 'bad' }, /invalid value 'bad' for log opt 'syslog-address'/],
      [{ tag: '{{.Nope}}' }, /^invalid value '\{\{\.Nope\}\}' for log opt 'tag': can't evaluate field Nope/],
      [{ 'labels-regex': '(' }, /invalid value '\(' for log opt 'labels-regex'/],
      [{ 'env-regex': '[' }, /log opt 'env-regex'/],
    ];
    for (const [config, message] of cases) {
      assert.throws(() => parseLogOptions(config, FACTORIES), (err: Error) => err instanceof InvalidOptionError && message.test(err.message), JSON.stringify(config));
    }
    assert.throws(() => parseLogOptions({ backend: 'syslog' }, []), /accepted: a comma-separated list of none/);
  });

  it('accepts the shaping keys for the local copy alone, as json-file does', () => {
    const { shaping } = parseLogOptions({ tag: 'app', labels: 'a,b', 'labels-regex': '^x', env: 'E', 'env-regex': 'K$' }, []);
    assert.equal(shaping.tag.source, 'app');
    assert.deepEqual(shaping.attributes.labels, ['a', 'b']);
    assert.equal(parseLogOptions({ tag: '' }, []).shaping.tag.source, '{{.ID}}');
  });
});

describe('multiline and parse-json options', () => {
  const shapingOf = (opts: Record<string, string>) => parseLogOptions(opts, FACTORIES).shaping;

  it('are off by default', () => {
    assert.equal(shapingOf({}).multiline, null);
    assert.equal(shapingOf({}).parseJson, false);
    assert.equal(shapingOf({ 'multiline-pattern': '', 'parse-json': '' }).multiline, null);
  });

  it('parse each matcher, with the defaults for the timeout and caps', () => {
    const pattern = shapingOf({ 'multiline-pattern': '(?i)^error' }).multiline!;
    assert.equal(pattern.matcher.kind, 'first-line');
    assert.ok(pattern.matcher.kind === 'first-line' && pattern.matcher.pattern.test('ERROR x') && !pattern.matcher.pattern.test('x error'));
    assert.deepEqual({ ...pattern, matcher: null }, { matcher: null, flushTimeoutMs: 1000, maxLines: 1000, maxBytes: 128 * 1024 });
    const datetime = shapingOf({ 'datetime-format': '%Y-%m-%d' }).multiline!;
    assert.ok(datetime.matcher.kind === 'first-line' && datetime.matcher.pattern.test('at 2026-12-01 x'));
    for (const preset of ['java', 'python', 'go']) {
      assert.deepEqual(shapingOf({ 'multiline-preset': preset }).multiline!.matcher, { kind: 'preset', preset });
    }
    const tuned = shapingOf({ 'multiline-preset': 'go', 'multiline-flush-timeout': '1m30s', 'multiline-max-lines': '20', 'multiline-max-bytes': '64k', 'parse-json': 'true' });
    assert.deepEqual(tuned.multiline, { matcher: { kind: 'preset', preset: 'go' }, flushTimeoutMs: 90_000, maxLines: 20, maxBytes: 65_536 });
    assert.equal(tuned.parseJson, true);
  });

  it('bind into each backend\'s plan, unless the backend has multiline options of its own', () => {
    const own = { matcher: { kind: 'first-line', pattern: compileGoRegexp('^\\[') }, flushTimeoutMs: 5, maxLines: 2, maxBytes: 10 } as const;
    const awslogs: BackendFactory<Record<string, string>> = { ...factory('awslogs', ['awslogs-multiline-pattern']), multiline: (c) => (c['awslogs-multiline-pattern'] ? own : null) };
    const opts = { backend: 'syslog,awslogs', 'multiline-preset': 'java', 'parse-json': '1' };
    const [plain, aws] = parseLogOptions({ ...opts, 'awslogs-multiline-pattern': '^\\[' }, [syslog, awslogs]).backends;
    assert.deepEqual(plain!.multiline!.matcher, { kind: 'preset', preset: 'java' });
    assert.equal(aws!.multiline, own);
    assert.equal(aws!.parseJson, true);
    assert.deepEqual(parseLogOptions(opts, [syslog, awslogs]).backends[1]!.multiline!.matcher, { kind: 'preset', preset: 'java' });
  });

  it('fail naming the option and what it accepts', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'multiline-pattern': '(' }, /^invalid value '\(' for log opt 'multiline-pattern': error parsing regexp: missing closing \): `\(`; expected a Go regular expression \(RE2 syntax\)$/],
      [{ 'datetime-format': '%Y %Q' }, /^invalid value '%Y %Q' for log opt 'datetime-format': '%Q' is not a supported directive \(supported: %a .*\); expected a strftime format/],
      [{ 'datetime-format': '%Y %' }, /log opt 'datetime-format': a lone '%' ends the format/],
      [{ 'multiline-preset': 'ruby' }, /^invalid value 'ruby' for log opt 'multiline-preset': expected java, python, go$/],
      [{ 'multiline-preset': 'java', 'multiline-pattern': 'x' }, /^log opts 'multiline-pattern' and 'multiline-preset' cannot both be set/],
      [{ 'datetime-format': '%Y', 'multiline-pattern': 'x' }, /^log opts 'multiline-pattern' and 'datetime-format' cannot both be set/],
      [{ 'multiline-max-lines': '5' }, /^log opt 'multiline-max-lines' needs one of 'multiline-pattern', 'datetime-format' or 'multiline-preset'/],
      [{ 'multiline-flush-timeout': '2s' }, /^log opt 'multiline-flush-timeout' needs one of/],
      [{ 'multiline-max-bytes': '1m' }, /^log opt 'multiline-max-bytes' needs one of/],
      [{ 'multiline-preset': 'go', 'multiline-flush-timeout': 'soon' }, /^invalid value 'soon' for log opt 'multiline-flush-timeout': expected a duration such as 500ms/],
      [{ 'multiline-preset': 'go', 'multiline-flush-timeout': '0' }, /^invalid value '0' for log opt 'multiline-flush-timeout': expected a duration from 1ms to 24h/],
      [{ 'multiline-preset': 'go', 'multiline-max-lines': '0' }, /^invalid value '0' for log opt 'multiline-max-lines': expected a whole number of lines from 1 to 1048576$/],
      [{ 'multiline-preset': 'go', 'multiline-max-lines': '1.5' }, /log opt 'multiline-max-lines': expected a whole number/],
      [{ 'multiline-preset': 'go', 'multiline-max-bytes': 'lots' }, /^invalid value 'lots' for log opt 'multiline-max-bytes': expected a size of at most 1m, such as 512k \(binary units\)$/],
      [{ 'parse-json': 'yes' }, /^invalid value 'yes' for log opt 'parse-json': expected true or false$/],
    ];
    for (const [config, message] of cases) {
      assert.throws(() => parseLogOptions(config, FACTORIES), (err: Error) => err instanceof InvalidOptionError && message.test(err.message), JSON.stringify(config));
    }
  });
});

// Every numeric log-opt, shared and of every backend, at both ends of what it takes: the
// lowest value accepted and the next one down refused, the highest accepted and the next
// one up refused (finding 9 of issue 11: a duration a timer cannot take passed validation).
describe('numeric options: lower and upper bounds', () => {
  type Plan = ReturnType<typeof parseLogOptions>;
  interface Bound {
    key: string;
    /** Other options the key needs (a backend, a matcher). */
    with: Record<string, string>;
    lowest: [string, (plan: Plan) => unknown, unknown];
    below: string;
    highest: [string, (plan: Plan) => unknown, unknown];
    above: string;
  }
  const store = (plan: Plan) => plan.store;
  const first = (plan: Plan) => plan.backends[0]!;
  const JAVA = { 'multiline-preset': 'java' };
  const AWS = { backend: 'awslogs', 'awslogs-group': 'g', 'awslogs-region': 'us-east-1' };
  const bounds: Bound[] = [
    { key: 'max-size', with: {}, lowest: ['1', (p) => store(p).maxSizeBytes, 1], below: '0', highest: ['9p', (p) => store(p).maxSizeBytes, 9e15], above: '10p' },
    { key: 'max-file', with: {}, lowest: ['1', (p) => store(p).maxFiles, 1], below: '0', highest: ['9007199254740991', (p) => store(p).maxFiles, 2 ** 53 - 1], above: '9007199254740992' },
    {
      key: 'multiline-flush-timeout',
      with: JAVA,
      lowest: ['1ns', (p) => p.shaping.multiline!.flushTimeoutMs, 1], // rounded up to a whole millisecond
      below: '0',
      highest: ['24h', (p) => p.shaping.multiline!.flushTimeoutMs, 86_400_000],
      above: '24h1ms',
    },
    { key: 'multiline-max-lines', with: JAVA, lowest: ['1', (p) => p.shaping.multiline!.maxLines, 1], below: '0', highest: ['1048576', (p) => p.shaping.multiline!.maxLines, 1_048_576], above: '1048577' },
    { key: 'multiline-max-bytes', with: JAVA, lowest: ['1', (p) => p.shaping.multiline!.maxBytes, 1], below: '0', highest: ['1m', (p) => p.shaping.multiline!.maxBytes, 1_048_576], above: '1048577' },
    { key: 'syslog-facility', with: { backend: 'syslog' }, lowest: ['0', () => 0, 0], below: '-1', highest: ['23', () => 23, 23], above: '24' },
    {
      key: 'fluentd-retry-wait',
      with: { backend: 'fluentd' },
      lowest: ['0', (p) => first(p).retry!.initialDelayMs, 500], // as Docker's client takes 0: its default
      below: '-1ms',
      highest: ['24h', (p) => first(p).retry!.initialDelayMs, 86_400_000],
      above: '24h1ms',
    },
    { key: 'fluentd-read-timeout', with: { backend: 'fluentd' }, lowest: ['0', () => 0, 0], below: '-1s', highest: ['24h', () => 0, 0], above: '25h' },
    { key: 'fluentd-write-timeout', with: { backend: 'fluentd' }, lowest: ['0', () => 0, 0], below: '-1s', highest: ['2562047h', () => 0, 0], above: '2562048h' },
    { key: 'fluentd-async-reconnect-interval', with: { backend: 'fluentd' }, lowest: ['100ms', () => 0, 0], below: '99ms', highest: ['10s', () => 0, 0], above: '10001ms' },
    { key: 'fluentd-max-retries', with: { backend: 'fluentd' }, lowest: ['0', () => 0, 0], below: '-1', highest: ['2147483647', () => 0, 0], above: '2147483648' },
    { key: 'fluentd-buffer-limit', with: { backend: 'fluentd' }, lowest: ['1', (p) => first(p).limits.maxBytes, 1], below: '0', highest: ['64m', (p) => first(p).limits.maxBytes, 64 << 20], above: '67108865' },
    {
      key: 'awslogs-force-flush-interval-seconds',
      with: AWS,
      lowest: ['1', (p) => first(p).limits.maxDelayMs, 1000],
      below: '0',
      highest: ['86400', (p) => first(p).limits.maxDelayMs, 86_400_000],
      above: '86401',
    },
    { key: 'awslogs-max-buffered-events', with: AWS, lowest: ['1', () => 0, 0], below: '0', highest: ['9007199254740991', () => 0, 0], above: '9007199254740992' },
  ];

  for (const b of bounds) {
    it(`${b.key}: from ${b.lowest[0]} to ${b.highest[0]}`, () => {
      const parse = (value: string): Plan => parseLogOptions({ ...b.with, [b.key]: value }, BACKENDS);
      for (const [value, read, expected] of [b.lowest, b.highest]) assert.equal(read(parse(value)), expected, `${b.key}=${value}`);
      for (const value of [b.below, b.above]) {
        assert.throws(() => parse(value), (err: Error) => err instanceof InvalidOptionError && err.message.includes(`log opt '${b.key}'`), `${b.key}=${value} is refused`);
      }
    });
  }

  it('fluentd-retry-wait: below 1 ms is 0 to Docker (it keeps whole milliseconds), so 500 ms as well (finding 10)', () => {
    const wait = (value: string): number => parseLogOptions({ backend: 'fluentd', 'fluentd-retry-wait': value }, BACKENDS).backends[0]!.retry!.initialDelayMs;
    assert.equal(wait('999us'), 500);
    assert.equal(wait('1ms'), 1);
    assert.equal(wait('1500us'), 1);
    assert.equal(wait('2s'), 2000);
  });

  it('fluentd-read-timeout and multiline-flush-timeout are whole milliseconds, rounded up (finding 9)', () => {
    assert.equal(configureBackend(fluentdFactory, { 'fluentd-read-timeout': '1500us' }).ackTimeoutMs, 2);
    assert.equal(configureBackend(fluentdFactory, { 'fluentd-read-timeout': '0' }).ackTimeoutMs, null);
    assert.equal(parseLogOptions({ ...JAVA, 'multiline-flush-timeout': '1500us' }, []).shaping.multiline!.flushTimeoutMs, 2);
  });

  it('lists only options the backends have', () => {
    const known = new Set(['max-size', 'max-file', 'multiline-flush-timeout', 'multiline-max-lines', 'multiline-max-bytes', ...BACKENDS.flatMap((f) => schemaKeys(f.options))]);
    for (const b of bounds) assert.ok(known.has(b.key), b.key);
  });
});
