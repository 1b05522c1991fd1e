import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  DocumentEncoder,
  classifyItems,
  describeRefusal,
  elasticsearchFactory,
  indexName,
  parseIndexPattern,
  type BulkAction,
} from '../../src/backends/elasticsearch.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { BACKENDS } from '../../src/backends/index.ts';
import { context, line } from './backend-context.ts';
import { InvalidOptionError } from '../../src/options/values.ts';

/** The backend's config from its log-opts and the plugin settings it is handed. */
const parseElasticsearchOptions = (opts: Record<string, string>, env: Record<string, string | undefined> = {}) =>
  configureBackend(elasticsearchFactory, opts, { ...NO_ENVIRONMENT, env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)) });

const NO_ENV = {};

describe('elasticsearch options', () => {
  it('defaults: localhost:9200, logstash-YYYY.MM.DD, the Elastic client, no credentials', () => {
    const config = parseElasticsearchOptions({}, NO_ENV);
    assert.deepEqual(config.nodes, ['http://localhost:9200']);
    assert.equal(config.flavor, 'elasticsearch');
    assert.equal(config.credentials, null);
    assert.equal(config.destination.kind, 'index');
    assert.equal(config.tls.rejectUnauthorized, true);
  });

  it('takes a comma list of addresses, with paths (a proxy prefix)', () => {
    const config = parseElasticsearchOptions({ 'elasticsearch-url': 'http://es1:9200, https://es2.example/proxy/' }, NO_ENV);
    assert.deepEqual(config.nodes, ['http://es1:9200', 'https://es2.example/proxy']);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ 'elasticsearch-url': 'es1:9200' }, /'elasticsearch-url': unsupported scheme 'es1'; expected a comma list of http\(s\)/],
    [{ 'elasticsearch-url': 'ftp://es1' }, /unsupported scheme 'ftp'/],
    [{ 'elasticsearch-url': 'http://es1,' }, /invalid value '' for log opt 'elasticsearch-url': not a URL/],
    [{ 'elasticsearch-url': 'http://es1/?x=1' }, /no query or fragment/],
    [{ 'elasticsearch-flavor': 'solr' }, /invalid value 'solr' for log opt 'elasticsearch-flavor': expected elasticsearch or opensearch/],
    [{ 'elasticsearch-index': 'Logs-YYYY' }, /'elasticsearch-index': index names are lower case; the only upper-case parts allowed are the date fields YYYY, MM, DD and HH/],
    [{ 'elasticsearch-index': 'logs-%{+YYYY.MM.dd}' }, /Logstash's %\{\+\.\.\.\} and date math's \{now\/d\} are not supported/],
    [{ 'elasticsearch-index': 'logs/YYYY' }, /'elasticsearch-index': it cannot contain/],
    [{ 'elasticsearch-index': '_logs' }, /cannot start with '-', '_' or '\+'/],
    [{ 'elasticsearch-index': 'x'.repeat(256) }, /longer than 255 bytes/],
    [{ 'elasticsearch-data-stream': 'Logs' }, /'elasticsearch-data-stream': expected a lower-case name/],
    [{ 'elasticsearch-data-stream': 'logs docker' }, /'elasticsearch-data-stream': it cannot contain/],
    [{ 'elasticsearch-index': 'a', 'elasticsearch-data-stream': 'b' }, /'elasticsearch-index' and 'elasticsearch-data-stream' cannot be given together/],
    [{ 'elasticsearch-tls-skip-verify': 'yes', 'elasticsearch-url': 'https://es' }, /invalid value 'yes' for log opt 'elasticsearch-tls-skip-verify': expected true or false/],
    [{ 'elasticsearch-tls-skip-verify': 'true' }, /'elasticsearch-tls-skip-verify' is set, but no address in 'elasticsearch-url' is https/],
    [{ 'elasticsearch-url': 'https://es', 'elasticsearch-tls-ca-cert': '/nonexistent/ca.pem' }, /cannot read the file of log opt 'elasticsearch-tls-ca-cert'/],
    [{ 'elasticsearch-url': 'https://es', 'elasticsearch-tls-cert': import.meta.filename }, /'elasticsearch-tls-cert' and 'elasticsearch-tls-key' must be given together/],
  ];
  for (const [opts, message] of bad) {
    it(`refuses ${JSON.stringify(opts).slice(0, 80)}`, () => {
      assert.throws(() => parseElasticsearchOptions(opts, NO_ENV), (err: Error) => err instanceof InvalidOptionError && message.test(err.message), err(opts));
    });
  }

  it('never quotes credentials written into an address', () => {
    assert.throws(
      () => parseElasticsearchOptions({ 'elasticsearch-url': 'http://es1:9200,https://elastic:s3cret@es2:9200' }, NO_ENV),
      (e: Error) => e instanceof InvalidOptionError && /must not carry credentials/.test(e.message) && !e.message.includes('s3cret') && /ELASTICSEARCH_PASSWORD/.test(e.message),
    );
    assert.throws(
      () => parseElasticsearchOptions({ 'elasticsearch-url': 'http://elastic:s3cret@[es2:9200' }, NO_ENV),
      (e: Error) => e instanceof InvalidOptionError && /invalid value \(not shown: it has an @\) for log opt 'elasticsearch-url': not a URL/.test(e.message) && !e.message.includes('s3'),
    );
  });

  it('takes credentials from the plugin settings, never quoting them', () => {
    const basic = parseElasticsearchOptions({}, { ELASTICSEARCH_USERNAME: 'elastic', ELASTICSEARCH_PASSWORD: 'pw' });
    assert.deepEqual(basic.credentials, { kind: 'basic', username: 'elastic', password: 'pw' });
    const key = parseElasticsearchOptions({}, { ELASTICSEARCH_API_KEY: 'a2V5' });
    assert.deepEqual(key.credentials, { kind: 'api-key', apiKey: 'a2V5' });
    const cases: [NodeJS.ProcessEnv, Record<string, string>, RegExp][] = [
      [{ ELASTICSEARCH_USERNAME: 'elastic-user' }, {}, /ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD must be set together/],
      [{ ELASTICSEARCH_PASSWORD: 'topsecret' }, {}, /must be set together/],
      [{ ELASTICSEARCH_API_KEY: 'topsecret', ELASTICSEARCH_USERNAME: 'elastic-user', ELASTICSEARCH_PASSWORD: 'topsecret' }, {}, /cannot both be set/],
      [{ ELASTICSEARCH_API_KEY: 'topsecret' }, { 'elasticsearch-flavor': 'opensearch' }, /ELASTICSEARCH_API_KEY is for Elasticsearch/],
    ];
    for (const [env, opts, message] of cases) {
      assert.throws(
        () => parseElasticsearchOptions(opts, env),
        (e: Error) => e instanceof InvalidOptionError && message.test(e.message) && !e.message.includes('topsecret') && !e.message.includes('elastic-user'),
        JSON.stringify(env),
      );
    }
  });

  it('reads the TLS files named by the options', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-unit-'));
    try {
      fs.writeFileSync(path.join(dir, 'ca.pem'), 'CA');
      const config = parseElasticsearchOptions(
        { 'elasticsearch-url': 'https://es:9200', 'elasticsearch-tls-ca-cert': path.join(dir, 'ca.pem'), 'elasticsearch-tls-skip-verify': 'false' },
        NO_ENV,
      );
      assert.equal(String(config.tls.ca), 'CA');
      assert.equal(config.tls.rejectUnauthorized, true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is a backend: its options are accepted with backend=elasticsearch and refused without it', () => {
    const options = parseLogOptions({ backend: 'elasticsearch', 'elasticsearch-index': 'app-YYYY.MM' }, BACKENDS);
    assert.equal(options.backends[0]!.name, 'elasticsearch');
    assert.deepEqual(options.backends[0]!.limits, elasticsearchFactory.batchLimits(parseElasticsearchOptions({}, NO_ENV)));
    assert.throws(() => parseLogOptions({ 'elasticsearch-index': 'x' }, BACKENDS), /option of backend 'elasticsearch'/);
    assert.throws(() => parseLogOptions({ backend: 'elasticsearch', 'elasticsearch-urls': 'x' }, BACKENDS), /unknown log opt 'elasticsearch-urls'/);
  });
});

function err(opts: Record<string, string>): string {
  try {
    parseElasticsearchOptions(opts, NO_ENV);
    return 'no error';
  } catch (e) {
    return (e as Error).message;
  }
}

describe('elasticsearch index names', () => {
  it("come from the line's own time in UTC", () => {
    const pattern = parseIndexPattern('logstash-YYYY.MM.DD');
    assert.equal(indexName(pattern, new Date('2026-01-02T23:59:59.999Z')), 'logstash-2026.01.02');
    assert.equal(indexName(parseIndexPattern('app-YYYY.MM.DD-HH'), new Date('2026-11-21T05:06:07Z')), 'app-2026.11.21-05');
    assert.equal(indexName(parseIndexPattern('docker-logs'), new Date()), 'docker-logs');
  });

  it('a line logged before midnight and shipped after it lands in its own day', () => {
    const encoder = new DocumentEncoder(context(), { kind: 'index', pattern: parseIndexPattern('logstash-YYYY.MM.DD') });
    const ops = encoder.encode([
      line('late', 'stdout', '2026-11-21T23:59:59.999Z', 999_999),
      line('early', 'stdout', '2026-11-22T00:00:00Z'),
      line('later', 'stdout', '2026-11-21T12:00:00Z'),
    ]);
    assert.deepEqual(
      ops.filter((_, i) => i % 2 === 0).map((op) => (JSON.parse(op) as BulkAction).create._index),
      ['logstash-2026.11.21', 'logstash-2026.11.22', 'logstash-2026.11.21'],
    );
  });

  it('a data stream takes every document', () => {
    const encoder = new DocumentEncoder(context(), { kind: 'data-stream', name: 'logs-docker-default' });
    const [action] = encoder.encode([line('x', 'stdout', '2026-11-21T23:59:59Z')]);
    assert.equal((JSON.parse(action!) as BulkAction).create._index, 'logs-docker-default');
  });
});

describe('elasticsearch documents', () => {
  const ctx = context({ attributes: [['com.example.team', 'core'], ['com.example', 'x'], ['E1', 'v']], tag: 'web' });
  const encoder = new DocumentEncoder(ctx, { kind: 'index', pattern: parseIndexPattern('logstash-YYYY.MM.DD') });

  it('carry the time with all its precision, the line, the stream and the container', () => {
    const doc = encoder.document(line('hello é', 'stderr', '2026-11-21T23:06:40.123Z', 456_789));
    assert.deepEqual(doc, {
      '@timestamp': '2026-11-21T23:06:40.123456789Z',
      message: 'hello é',
      stream: 'stderr',
      tag: 'web',
      container: { id: ctx.id, name: 'bk-test', image: { name: 'bb:local', id: ctx.imageId } },
      host: { name: 'vm' },
      // Dots replaced: `com.example` and `com.example.team` would clash as object and value.
      labels: { com_example_team: 'core', com_example: 'x', E1: 'v' },
    });
    assert.equal(encoder.document(line('x', 'stdout', '2026-11-21T23:06:40Z'))['@timestamp'], '2026-11-21T23:06:40Z');
  });

  it('go as the JSON text of the document, byte for byte, whichever way they are built', () => {
    const lines = [
      line('hello é "quoted" \\ \t \u0001 \u2028', 'stderr', '2026-11-21T23:06:40.123Z', 456_789),
      line(Buffer.from([0x61, 0xff, 0x62]), 'stdout', '2026-11-21T23:06:40Z'),
      { ...line('piece', 'stdout', '2026-11-21T23:06:40Z'), partial: { id: 'p1', ordinal: 2, last: false } },
      { ...line('{"level":"x"}', 'stdout', '2026-11-21T23:06:40Z'), fields: { level: 'x' } },
    ];
    for (const l of lines) assert.equal(encoder.documentJson(l), JSON.stringify(encoder.document(l)));
    const body = encoder.encode(lines);
    assert.deepEqual(body.filter((_, i) => i % 2 === 1), lines.map((l) => JSON.stringify(encoder.document(l))));
    assert.deepEqual(JSON.parse(body[0]!), { create: { _index: 'logstash-2026.11.21', _id: (JSON.parse(body[0]!) as BulkAction).create._id } });
    for (const { attributes } of [{ attributes: [] }, { attributes: [['a"b', 'c\\d'] as const] }]) {
      const other = new DocumentEncoder(context({ attributes, tag: 'x"y' }), { kind: 'data-stream', name: 'logs-a-b' });
      assert.equal(other.documentJson(lines[0]!), JSON.stringify(other.document(lines[0]!)));
    }
  });

  it('bytes that are not UTF-8 become U+FFFD in message', () => {
    assert.equal(encoder.document(line(Buffer.from([0x61, 0xff, 0x62]), 'stdout', '2026-11-21T23:06:40Z')).message, 'a\ufffdb');
  });

  it('fragments carry the partial markers', () => {
    const fragment = { ...line('piece', 'stdout', '2026-11-21T23:06:40Z'), partial: { id: 'p1', ordinal: 2, last: false } };
    const doc = encoder.document(fragment);
    assert.equal(doc.partial_message, true);
    assert.equal(doc.partial_id, 'p1');
    assert.equal(doc.partial_ordinal, 2);
    assert.equal(doc.partial_last, false);
    assert.equal(encoder.document(line('whole', 'stdout', '2026-11-21T23:06:40Z')).partial_message, undefined);
  });

  it("parse-json: the line's fields go at the top level; logship's own keys win a clash", () => {
    const text = '{"level":"error","stream":"mine","message":"theirs","user":{"id":7},"__proto__":{"polluted":true}}';
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const doc = encoder.document({ ...line(text, 'stdout', '2026-11-21T23:06:40Z'), fields: parsed });
    assert.equal(doc.level, 'error');
    assert.deepEqual(doc.user, { id: 7 });
    assert.equal(doc.stream, 'stdout');
    assert.equal(doc.message, text, 'the raw line stays in message');
    assert.equal(doc['@timestamp'], '2026-11-21T23:06:40Z');
    assert.deepEqual(doc.container, encoder.document(line('x', 'stdout', '2026-11-21T23:06:40Z')).container);
    // A parsed `__proto__` stays a field: nothing reaches Object.prototype.
    assert.equal(Object.getPrototypeOf(doc), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(JSON.parse(JSON.stringify(doc)).__proto__, { polluted: true });
  });

  it('ids: the same for the same line (a batch sent again), distinct for identical lines in a batch', () => {
    const batch = [
      line('same', 'stdout', '2026-11-21T23:06:40Z'),
      line('same', 'stdout', '2026-11-21T23:06:40Z'),
      line('same', 'stderr', '2026-11-21T23:06:40Z'),
      line('same', 'stdout', '2026-11-21T23:06:40Z', 1),
      line('other', 'stdout', '2026-11-21T23:06:40Z'),
    ];
    const ids = (ops: ReturnType<DocumentEncoder['encode']>): string[] => ops.filter((_, i) => i % 2 === 0).map((op) => (JSON.parse(op) as BulkAction).create._id);
    const first = ids(encoder.encode(batch));
    assert.equal(new Set(first).size, batch.length);
    assert.deepEqual(ids(encoder.encode(batch)), first);
    assert.deepEqual(ids(new DocumentEncoder(ctx, { kind: 'data-stream', name: 'x' }).encode(batch)), first);
    const otherContainer = new DocumentEncoder(context({ id: 'e'.repeat(64) }), { kind: 'data-stream', name: 'x' });
    assert.equal(ids(otherContainer.encode(batch)).filter((id) => first.includes(id)).length, 0);
    for (const id of first) assert.match(id, /^[A-Za-z0-9_-]{22}$/);
  });

  it('ids are the SHA-256 of the container, time, stream and bytes, as they always were (a batch sent again after an upgrade is a 409)', () => {
    const earlier = (l: ReturnType<typeof line>): string =>
      createHash('sha256').update(`${ctx.id}\0${l.timeNano}\0${l.source}\0`).update(l.line).digest('base64url').slice(0, 22);
    // Short, not UTF-8, and longer than the encoder's scratch buffer (hashed in two parts).
    const lines = [line('hello', 'stdout', '2026-11-21T23:06:40Z', 7), line(Buffer.from([0xff, 0x00, 0xc3]), 'stderr', '2026-11-21T23:06:40Z'), line('x'.repeat(40_000), 'stdout', '2026-11-21T23:06:41Z')];
    const ids = encoder.encode(lines).filter((_, i) => i % 2 === 0).map((op) => (JSON.parse(op) as BulkAction).create._id);
    assert.deepEqual(ids, lines.map(earlier));
  });
});

describe('elasticsearch bulk results', () => {
  it('409 is done; 429 and 5xx go again; any other refusal is skipped', () => {
    const items = [
      { status: 201 },
      { status: 200 },
      { status: 409 },
      { status: 429 },
      { status: 503 },
      { status: 400, error: { type: 'document_parsing_exception', reason: 'x' } },
      { status: 404 },
    ];
    const outcome = classifyItems(items);
    assert.equal(outcome.done, 3);
    // 404: an index or data stream missing is the cluster's to fix, not the document's.
    assert.deepEqual(outcome.retryable, [3, 4, 6]);
    assert.deepEqual(outcome.rejected, [5]);
  });

  it("a refusal's description leaves out the document's content", () => {
    const described = describeRefusal({
      status: 400,
      error: { type: 'document_parsing_exception', reason: "[1:42] failed to parse field [code] of type [long] in document with id 'x'. Preview of field's value: 'secret-value'" },
    });
    assert.equal(described, "400 document_parsing_exception: [1:42] failed to parse field [code] of type [long] in document with id 'x'.");
    assert.equal(describeRefusal({ status: 400, error: { type: 'x_content_parse_exception', reason: 'Unexpected character [Source: (byte[])"{secret}"' } }), '400 x_content_parse_exception: Unexpected character');
    assert.equal(describeRefusal({ status: 404 }), '404 error');
  });
});
