// parse-json's depth bound: a line nested deeper than MAX_JSON_DEPTH ships as plain text,
// and every backend's encoder takes a line at the bound (finding 2 of issue 11: fluentd's
// msgpack encoder threw at depth 101 and the batch was retried forever).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Entry, protos } from '@google-cloud/logging';
import { DocumentEncoder, parseIndexPattern } from '../../src/backends/elasticsearch.ts';
import { FluentdEncoder } from '../../src/backends/fluentd.ts';
import { EntryEncoder } from '../../src/backends/gcplogs.ts';
import { JournalEncoder } from '../../src/backends/journald.ts';
import { MAX_JSON_DEPTH, TOO_DEEP, jsonObjectFields } from '../../src/shaping/json-fields.ts';
import { context } from './backend-context.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

/** An object `depth` levels deep, the outer one included: `{"a":{"a":…1…}}`. */
const nested = (depth: number, open = '{"a":', close = '}'): string => open.repeat(depth) + '1' + close.repeat(depth);
const parsed = (text: string): OutgoingLine => {
  const fields = jsonObjectFields(Buffer.from(text));
  assert.ok(fields !== null && fields !== TOO_DEEP, 'parsed');
  return { source: 'stdout', timeNano: 1_795_000_000_000_000_000n, line: Buffer.from(text), fields };
};

describe('parse-json depth bound', () => {
  it(`parses an object ${MAX_JSON_DEPTH} levels deep, and calls one level more too deep`, () => {
    assert.notEqual(jsonObjectFields(Buffer.from(nested(MAX_JSON_DEPTH))), TOO_DEEP);
    assert.equal(jsonObjectFields(Buffer.from(nested(MAX_JSON_DEPTH + 1))), TOO_DEEP);
    assert.equal(jsonObjectFields(Buffer.from(nested(100_000))), TOO_DEEP, 'no depth makes the parse itself fail');
  });

  it('counts arrays as levels, and only the deepest branch matters', () => {
    const arrays = '{"a":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}';
    assert.equal(jsonObjectFields(Buffer.from(arrays)), TOO_DEEP);
    const wide = JSON.stringify({ shallow: 1, list: [1, 2, { x: 3 }], deep: JSON.parse(nested(MAX_JSON_DEPTH - 1)) });
    assert.notEqual(jsonObjectFields(Buffer.from(wide)), TOO_DEEP);
  });

  it('leaves a line that is not a JSON object as it was: null, not too deep', () => {
    assert.equal(jsonObjectFields(Buffer.from(nested(500).slice(0, -1))), null, 'invalid JSON');
    assert.equal(jsonObjectFields(Buffer.from('[' + nested(500) + ']')), null, 'an array');
  });

  it('every backend with structured fields encodes a line at the bound', () => {
    const line = parsed(nested(MAX_JSON_DEPTH));
    const ctx = context();
    assert.ok(new FluentdEncoder(ctx, true).encode([line], 'chunk').length > 0, 'fluentd');
    assert.ok(new JournalEncoder(ctx).encode(line).length === 1, 'journald');
    const [entry] = new EntryEncoder(ctx, false, null, Entry, protos).encode(line);
    assert.ok(protos.google.logging.v2.LogEntry.encode(protos.google.logging.v2.LogEntry.fromObject(entry!)).finish().length > 0, 'gcplogs');
    const es = new DocumentEncoder(ctx, { kind: 'index', pattern: parseIndexPattern('logs') });
    assert.ok(es.encode([line]).map((op) => JSON.stringify(op)).join('\n').length > 0, 'elasticsearch');
  });

  it("is far under what the encoders give out at: fluentd's msgpack at 100 levels of a field's value", () => {
    // A record's field is one level down from the line's object: depth 101 is 100 in msgpack.
    assert.throws(() => new FluentdEncoder(context(), false).encode([{ ...parsed(nested(MAX_JSON_DEPTH)), fields: JSON.parse(nested(101)) }], null));
    assert.doesNotThrow(() => new FluentdEncoder(context(), false).encode([{ ...parsed(nested(MAX_JSON_DEPTH)), fields: JSON.parse(nested(100)) }], null));
  });
});
