import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_STORE_OPTIONS, InvalidOptionError, parseLogOptions, parseSize } from '../../src/lifecycle/options.ts';

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
      [{ foo: 'bar' }, /^unknown log opt 'foo' for logship log driver \(accepted: backend, max-size, max-file, compress, tag, labels, labels-regex, env, env-regex\)$/],
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
