import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { SplunkEncoder, splunkFactory, splunkTime } from '../../src/backends/splunk.ts';
import { compactJson, goString } from '../../src/backends/go-json.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import { context } from './backend-context.ts';

const splunkConfig = (opts: Record<string, string>) => configureBackend(splunkFactory, opts);

interface Request {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What Docker 20.10's splunk driver sent (the capture server's request log, bodies gunzipped). */
const requests: Request[] = fs
  .readFileSync(new URL('../fixtures/docker-captures/docker-splunk.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as Request);
const posts = requests.filter((r) => r.method === 'POST');
/** HEC's body: JSON objects back to back. */
const events = (body: string): string[] => body.split(/(?<=\})(?=\{"event")/);

type Event = { event: { line: unknown; source: string; tag?: string } | string; time: string };

/** The line that made a captured event: its text, stream and time. */
function lineOf(json: string, rawPrefix = '') {
  const e = JSON.parse(json) as Event;
  const [s, us] = e.time.split('.');
  const timeNano = BigInt(s!) * 1_000_000_000n + BigInt(us!) * 1000n;
  if (typeof e.event === 'string') {
    const text = e.event.slice(rawPrefix.length);
    return { source: text.startsWith('err') ? ('stderr' as const) : ('stdout' as const), timeNano, line: Buffer.from(text) };
  }
  const text = typeof e.event.line === 'string' ? e.event.line : JSON.stringify(e.event.line);
  return { source: e.event.source as 'stdout' | 'stderr', timeNano, line: Buffer.from(text) };
}

const ATTRS = [['foo', 'bar'], ['E1', 'xyz']] as const;

describe('splunk events match Docker', () => {
  const cases = [
    { name: 'inline', format: 'inline', tag: 'bkres-splunk-inline', body: posts[0]!.body },
    { name: 'json', format: 'json', tag: 'bkres-splunk-json', body: posts[1]!.body },
    { name: 'raw', format: 'raw', tag: 'bkres-splunk-raw', body: posts[2]!.body },
  ] as const;
  for (const c of cases) {
    it(`${c.name}: each event byte for byte`, () => {
      const encoder = new SplunkEncoder({ format: c.format, source: 'src', sourcetype: 'st', index: 'main' }, context({ tag: c.tag, attributes: ATTRS, hostname: 'vm' }));
      const captured = events(c.body);
      assert.equal(captured.length, 3);
      for (const json of captured) {
        assert.equal(encoder.encode(lineOf(json, `${c.tag} foo=bar E1=xyz `))!.toString(), json);
      }
    });
  }

  it('gzip, no source, sourcetype or index, no attributes: the headers and the event as Docker sent them', () => {
    const post = posts[3]!;
    assert.equal(post.headers['content-encoding'], 'gzip');
    assert.equal(post.headers.authorization, 'Splunk tok');
    const encoder = new SplunkEncoder({ format: 'inline', source: '', sourcetype: '', index: '' }, context({ tag: 'fd1bebee947f', hostname: 'vm' }));
    assert.equal(encoder.encode(lineOf(post.body))!.toString(), post.body);
  });

  it('an empty tag leaves `tag` out; raw drops blank lines, inline and json send them', () => {
    const encoder = new SplunkEncoder({ format: 'inline', source: '', sourcetype: '', index: '' }, context({ tag: '' }));
    const event = JSON.parse(encoder.encode({ source: 'stdout', timeNano: 0n, line: Buffer.from('') })!.toString());
    assert.deepEqual(event.event, { line: '', source: 'stdout' });
    const raw = new SplunkEncoder({ format: 'raw', source: '', sourcetype: '', index: '' }, context());
    assert.equal(raw.encode({ source: 'stdout', timeNano: 0n, line: Buffer.from(' \t') }), null);
  });

  it('json: any JSON value is embedded compacted, with its numbers as written; anything else is a string', () => {
    const encoder = new SplunkEncoder({ format: 'json', source: '', sourcetype: '', index: '' }, context({ tag: '' }));
    const body = (text: string) => encoder.encode({ source: 'stdout', timeNano: 0n, line: Buffer.from(text) })!.toString();
    assert.match(body(' { "a" : [1.50, 2e3, -0] , "b":"<é>" } '), /^\{"event":\{"line":\{"a":\[1\.50,2e3,-0\],"b":"\\u003cé\\u003e"\},"source"/);
    assert.match(body('42'), /"line":42,/);
    assert.match(body('{"a":1'), /"line":"\{\\"a\\":1",/);
    assert.match(body(''), /"line":"",/);
  });

  it('parse-json keys go into the event beside Docker\'s, which keep their values', () => {
    const encoder = new SplunkEncoder({ format: 'inline', source: '', sourcetype: '', index: '' }, context({ tag: 't' }));
    const fields = { level: 'warn', req: { id: 'r1' }, tag: 'clash', line: 'clash' };
    const event = JSON.parse(encoder.encode({ source: 'stdout', timeNano: 0n, line: Buffer.from('{}'), fields })!.toString()).event;
    assert.deepEqual(event, { line: '{}', source: 'stdout', level: 'warn', req: { id: 'r1' }, tag: 't' });
  });
});

describe('splunk time and JSON as Go writes them', () => {
  it('six decimals of the float64, ties to even as Go rounds them', () => {
    assert.equal(splunkTime(1795302881554672000n), '1795302881.554672');
    assert.equal(splunkTime(7_812_500n), '0.007812'); // 1/128: a tie, 2 is even
    assert.equal(splunkTime(23_437_500n), '0.023438'); // 3/128: a tie, 3 rounds up
    assert.equal(splunkTime(1_000_000_000n), '1.000000');
  });

  it('compactJson accepts what Go\'s json.Unmarshal accepts', () => {
    for (const ok of ['{}', '[]', ' [ ] ', '{"a":{"b":[true,false,null]}}', '"s\\u00e9\\n"', '0', '-1.5E+10', '[[[[1]]]]']) {
      assert.notEqual(compactJson(Buffer.from(ok)), null, ok);
    }
    for (const bad of ['', ' ', '{', '{"a"}', '{"a":1,}', '[1,]', '01', '1.', '.5', '+1', 'nul', 'true false', '"\t"', '"\\x"', "{'a':1}", '{"a":1}}']) {
      assert.equal(compactJson(Buffer.from(bad)), null, bad);
    }
    assert.equal(compactJson(Buffer.from('['.repeat(10_001) + ']'.repeat(10_001))), null);
    assert.equal(compactJson(Buffer.from('['.repeat(10_000) + ']'.repeat(10_000)))!.length, 20_000);
  });

  it('goString replaces each byte that is not UTF-8, as Go does', () => {
    assert.equal(goString(Buffer.from([0x61, 0xe2, 0x82, 0x62, 0xff, 0xf0, 0x9f, 0x98, 0x80])), 'a\ufffd\ufffdb\ufffd😀');
  });
});

describe('splunk options', () => {
  const base = { 'splunk-url': 'https://hec.example:8088', 'splunk-token': 'SECRET-TOKEN-1234' };
  const fails = (opts: Record<string, string>, message: RegExp) =>
    assert.throws(() => splunkConfig(opts), (err: Error) => err instanceof InvalidOptionError && message.test(err.message) && !err.message.includes('SECRET-TOKEN-1234'));

  it('defaults as Docker: inline, connection verified, no gzip, no acknowledgment', () => {
    const config = splunkConfig(base);
    assert.equal(config.origin, 'https://hec.example:8088');
    assert.equal(config.format, 'inline');
    assert.equal(config.verifyConnection, true);
    assert.equal(config.gzipLevel, null);
    assert.equal(config.indexAck, false);
    assert.equal(splunkConfig({ ...base, 'splunk-gzip': 'true' }).gzipLevel, -1);
    assert.equal(splunkConfig({ ...base, 'splunk-url': 'http://h:8088/' }).origin, 'http://h:8088');
  });

  it('refuses what Docker refuses, never quoting the token', () => {
    fails({ 'splunk-url': base['splunk-url'] }, /must specify a value for log opt 'splunk-token'/);
    fails({ 'splunk-token': base['splunk-token'] }, /must specify a value for log opt 'splunk-url'/);
    fails({ ...base, 'splunk-url': 'https://h:8088/services/collector' }, /expected scheme:\/\/dns_name_or_ip:port/);
    fails({ ...base, 'splunk-url': 'ftp://h:21' }, /expected scheme/);
    fails({ ...base, 'splunk-url': 'https://h:8088?x=1' }, /expected scheme/);
    fails({ ...base, 'splunk-format': 'xml' }, /expected inline, json or raw/);
    fails({ ...base, 'splunk-gzip-level': '10' }, /from -1 to 9/);
    fails({ ...base, 'splunk-insecureskipverify': 'yes' }, /expected true or false/);
    fails({ ...base, 'splunk-capath': '/nonexistent/ca.pem' }, /cannot read the file of log opt 'splunk-capath'/);
  });
});
