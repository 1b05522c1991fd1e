import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Request, cutRequests, sendUnordered, splitUtf8, utf8Pieces } from '../../src/transport/requests.ts';
import type { SendResult } from '../../src/delivery/backend.ts';
import { defineOptions, optionTable, overlappingKeys, parseOptions } from '../../src/options/schema.ts';
import { InvalidOptionError } from '../../src/options/values.ts';

describe('transport/requests', () => {
  it('cuts by count, by bytes, and where asked; an item over the bytes goes alone', () => {
    const sizes = [3, 3, 3, 10, 1, 1];
    assert.deepEqual(cutRequests(sizes, { maxItems: 2, maxBytes: 100 }, (s) => s), [[0, 1], [2, 3], [4, 5]]);
    assert.deepEqual(cutRequests(sizes, { maxBytes: 7 }, (s) => s), [[0, 1], [2], [3], [4, 5]]);
    assert.deepEqual(cutRequests(sizes, { maxBytes: 100 }, (s) => s, (first, s) => s - first > 5), [[0, 1, 2], [3, 4, 5]]);
    assert.deepEqual(cutRequests([], { maxBytes: 1 }, () => 1), []);
    // An item that becomes several in the request counts as many against maxItems (gcplogs' split lines).
    const pieces = [1, 3, 1, 1, 2];
    assert.deepEqual(cutRequests(pieces, { maxItems: 4, maxBytes: 100, count: (i) => pieces[i]! }, () => 1), [[0, 1], [2, 3, 4]]);
  });

  it('never cuts a UTF-8 character', () => {
    const text = 'aé€😀'.repeat(50);
    for (const max of [4, 5, 7, 64]) {
      const pieces = splitUtf8(text, max);
      assert.equal(pieces.join(''), text);
      for (const piece of pieces) assert.ok(Buffer.byteLength(piece) <= max && !piece.includes('\ufffd'));
      for (const piece of utf8Pieces(Buffer.from(text), max)) assert.ok(piece.length <= max && Buffer.from(piece.toString()).equals(piece));
    }
    assert.deepEqual(splitUtf8('', 10), []);
    assert.deepEqual(splitUtf8('short', 10), ['short']);
  });

  describe('sendUnordered', () => {
    const requests = (n: number, per = 2): Request<number>[] => Array.from({ length: n }, (_, k) => ({ lines: Array.from({ length: per }, (_, i) => k * per + i), payload: k }));
    const signal = new AbortController().signal;

    it('keeps at most inFlight requests at once, started in order; all answered is all delivered', async () => {
      let open = 0;
      let most = 0;
      const started: number[] = [];
      const result = await sendUnordered(requests(5), 2, signal, async ({ payload }) => {
        started.push(payload);
        most = Math.max(most, ++open);
        await new Promise((resolve) => setTimeout(resolve, 5 * (3 - (payload % 3))));
        open--;
        return {};
      });
      assert.deepEqual(result, {});
      assert.equal(most, 2);
      assert.deepEqual(started, [0, 1, 2, 3, 4]);
    });

    it("tells exactly which lines go again: a failed request's, those never started after it, and each answer's own", async () => {
      const result = await sendUnordered(requests(5), 2, signal, async ({ payload, lines }): Promise<SendResult> => {
        if (payload === 0) return { rejected: [{ index: lines[1]!, code: 'invalid', reason: 'bad' }], retry: { lines: [lines[0]!], reason: 'busy', afterMs: 50 } };
        if (payload === 2) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          throw Object.assign(new Error('reset'), { retryAfterMs: 200 });
        }
        if (payload === 3) await new Promise((resolve) => setTimeout(resolve, 30));
        return {};
      });
      // 0: line 0 again, 1 rejected; 1: delivered; 2 failed: 4, 5; 3 started beside 2 and delivered; 4 never started: 8, 9.
      assert.deepEqual(result.rejected, [{ index: 1, code: 'invalid', reason: 'bad' }]);
      assert.deepEqual(result.retry?.lines, [0, 4, 5, 8, 9]);
      assert.equal(result.retry?.afterMs, 200);
    });

    it("throws the first failure when nothing got through, and the engine's abort whatever was answered", async () => {
      await assert.rejects(sendUnordered(requests(3), 2, signal, async ({ payload }) => {
        throw new Error(`down ${payload}`);
      }), /down 0/);
      const controller = new AbortController();
      await assert.rejects(sendUnordered(requests(3), 2, controller.signal, async ({ payload }) => {
        if (payload === 0) return {};
        controller.abort(new Error('stopping'));
        throw new Error('aborted');
      }), /aborted/);
    });

    it('one request, or one at a time, is sendInOrder', async () => {
      await assert.rejects(sendUnordered(requests(1), 2, signal, async () => {
        throw new Error('alone');
      }), /alone/);
      const order: number[] = [];
      await sendUnordered(requests(3), 1, signal, async ({ payload }) => {
        order.push(payload);
        return {};
      });
      assert.deepEqual(order, [0, 1, 2]);
    });
  });
});

describe('options/schema', () => {
  const schema = defineOptions([
    { key: 'x-count', type: 'int', min: 1, max: 10, default: '3', doc: 'how many' },
    { key: 'x-on', type: 'bool', default: 'false', doc: 'whether' },
    { key: 'x-mode', type: 'enum', values: ['a', 'b'], doc: 'which' },
    { key: 'x-token', type: 'custom', secret: true, accepts: 'a token', doc: 'the token', parse: (v: string, k: string) => {
      if (v.length < 4) throw new InvalidOptionError(`invalid value '${v}' for log opt '${k}': too short`);
      return v;
    } },
    { key: 'x-name', type: 'string', required: true, doc: 'a name' },
  ]);

  it('parses typed values with defaults; empty counts as unset', () => {
    const values = parseOptions(schema, { 'x-name': 'n', 'x-on': 'true', 'x-mode': '', 'x-token': 'abcd' });
    assert.deepEqual(values, { 'x-count': 3, 'x-on': true, 'x-mode': undefined, 'x-token': 'abcd', 'x-name': 'n' });
    const count: number = values['x-count'];
    assert.equal(count, 3);
  });

  it('names the option and what it accepts, and never quotes a secret', () => {
    const fails = (opts: Record<string, string>, message: string): void => {
      assert.throws(() => parseOptions(schema, { 'x-name': 'n', ...opts }), (err: Error) => err instanceof InvalidOptionError && err.message === message);
    };
    fails({ 'x-count': '11' }, `invalid value '11' for log opt 'x-count': expected a whole number from 1 to 10`);
    fails({ 'x-mode': 'c' }, `invalid value 'c' for log opt 'x-mode': expected a or b`);
    fails({ 'x-on': 'yes' }, `invalid value 'yes' for log opt 'x-on': expected true or false`);
    fails({ 'x-token': 'abc' }, `invalid value (not shown: a secret) for log opt 'x-token': too short`);
    assert.throws(() => parseOptions(schema, {}), (err: Error) => err instanceof InvalidOptionError && err.message === "must specify a value for log opt 'x-name'");
  });

  it('makes the README table and finds overlapping keys', () => {
    const table = optionTable(schema).split('\n');
    assert.equal(table[2], '| `x-count` | `3` | how many |');
    assert.equal(table[5], '| `x-token` | none | the token (a secret: never logged, never quoted in an error) |');
    assert.equal(table[6], '| `x-name` | required | a name |');
    assert.deepEqual(overlappingKeys([{ name: 'a', schema }, { name: 'b', schema: [schema[1]] }]), ['x-on (a, b)']);
  });
});
