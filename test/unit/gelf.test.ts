import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import {
  CHUNK_SIZE,
  GelfEncoder,
  MAX_UDP_MESSAGE,
  chunk,
  compress,
  gelfRetryPolicy,
  gelfFactory,
  udpPayload,
} from '../../src/backends/gelf.ts';
import { configureBackend } from '../../src/lifecycle/options.ts';
import { InvalidOptionError } from '../../src/options/values.ts';
import { context } from './backend-context.ts';

const gelfConfig = (opts: Record<string, string>) => configureBackend(gelfFactory, opts);

interface Captured {
  transport: 'udp' | 'tcp';
  comp: 'gzip' | 'zlib' | 'none';
  chunked?: number;
  msg: Record<string, unknown> & { short_message: string; timestamp: number; level: number };
}

/** What Docker 20.10's gelf driver sent (the GELF server's decoded messages). */
const captured: Captured[] = fs
  .readFileSync(new URL('../fixtures/docker-captures/docker-gelf.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as Captured);

function contextOf(msg: Captured['msg']) {
  const attributes = Object.keys(msg)
    .filter((k) => ['_E1', '_foo'].includes(k))
    .map((k) => [k.slice(1), msg[k] as string] as const);
  return context({
    id: msg._container_id as string,
    name: msg._container_name as string,
    imageId: msg._image_id as string,
    imageName: msg._image_name as string,
    created: msg._created as string,
    command: msg._command as string,
    tag: msg._tag as string,
    hostname: msg.host as string,
    // the order Docker's context gives them in: labels, then env
    attributes: attributes.length > 0 ? [['foo', 'bar'], ['E1', 'xyz']] : [],
  });
}

const lineOf = (msg: Captured['msg'], subMs = 123_456n) => ({
  source: msg.level === 3 ? ('stderr' as const) : ('stdout' as const),
  timeNano: BigInt(Math.round(msg.timestamp * 1000)) * 1_000_000n + subMs,
  line: Buffer.from(msg.short_message),
});

/** A GELF UDP receiver's view of datagrams: chunks put together, then decompressed by their magic. */
function receive(datagrams: Buffer[]): unknown {
  let payload: Buffer;
  if (datagrams[0]![0] === 0x1e && datagrams[0]![1] === 0x0f) {
    const id = datagrams[0]!.subarray(2, 10);
    const count = datagrams[0]![11]!;
    assert.equal(datagrams.length, count);
    assert.ok(count <= 128);
    datagrams.forEach((d, seq) => {
      assert.ok(d.length <= CHUNK_SIZE);
      assert.deepEqual(d.subarray(2, 10), id);
      assert.equal(d[10], seq);
      assert.equal(d[11], count);
    });
    payload = Buffer.concat(datagrams.map((d) => d.subarray(12)));
  } else {
    assert.equal(datagrams.length, 1);
    payload = datagrams[0]!;
  }
  const json = payload[0] === 0x1f ? zlib.gunzipSync(payload) : payload[0] === 0x78 ? zlib.inflateSync(payload) : payload;
  return JSON.parse(json.toString('utf8'));
}

describe('gelf messages match Docker', () => {
  for (const [i, c] of captured.entries()) {
    it(`capture ${i + 1}: ${c.transport} ${c.comp}${c.chunked ? `, ${c.chunked} chunks` : ''}`, () => {
      const encoder = new GelfEncoder(contextOf(c.msg));
      const json = encoder.encode(lineOf(c.msg));
      // Go's key order (version, host, short_message, timestamp, level, then the sorted extra
      // fields) and values; the capture was stored re-encoded, so Go's \u003e escapes are gone from it.
      assert.deepEqual(JSON.parse(json.toString('utf8')), c.msg);
      assert.deepEqual(Object.keys(JSON.parse(json.toString('utf8'))), Object.keys(c.msg));
      if (c.transport === 'udp') {
        const config = gelfConfig({ 'gelf-address': 'udp://127.0.0.1:12201', 'gelf-compression-type': c.comp });
        const { payload, truncated } = udpPayload(encoder, lineOf(c.msg), config)!;
        assert.equal(truncated, false);
        const datagrams = chunk(payload, Buffer.alloc(8, 7));
        assert.equal(datagrams.length, c.chunked || 1);
        assert.deepEqual(receive(datagrams), c.msg);
        if (c.comp !== 'none') assert.equal(payload[0], c.comp === 'gzip' ? 0x1f : 0x78);
      }
    });
  }

  it('escapes as Go does: <, >, & and U+2028; a byte that is not UTF-8 is one U+FFFD each', () => {
    const encoder = new GelfEncoder(context());
    const json = encoder.encode({ source: 'stdout', timeNano: 1_000_000_000n, line: Buffer.from([0x3c, 0x26, 0x3e, 0xe2, 0x80, 0xa8, 0xe2, 0x82, 0x41]) }).toString();
    assert.match(json, /"short_message":"\\u003c\\u0026\\u003e\\u2028/);
    assert.equal(JSON.parse(json).short_message, '<&>\u2028\ufffd\ufffdA');
    assert.match(json, /"timestamp":1,"level":6,/);
  });

  it("a TCP batch is each line's message and its NUL, plain lines (written from their bytes) and others alike", () => {
    const encoder = new GelfEncoder(context({ attributes: [['z', '1']] }));
    const lines = [
      { source: 'stdout' as const, timeNano: 1_500_000_000n, line: Buffer.from('plain 1') },
      { source: 'stderr' as const, timeNano: 1_500_000_001n, line: Buffer.from('plain, stderr, same ms') },
      { source: 'stdout' as const, timeNano: 1_501_000_000n, line: Buffer.from('quote " and <tag>') },
      { source: 'stdout' as const, timeNano: 1_502_000_000n, line: Buffer.from('é') },
      { source: 'stdout' as const, timeNano: 1_502_000_000n, line: Buffer.from('{"a":1}'), fields: { a: 1 } },
      { source: 'stdout' as const, timeNano: 1_503_000_000n, line: Buffer.from('plain again') },
    ];
    const frames = encoder.frames(lines);
    assert.deepEqual(frames, Buffer.concat(lines.flatMap((l) => [new GelfEncoder(context({ attributes: [['z', '1']] })).encode(l), Buffer.from([0])])));
    const messages = frames.toString().split('\0').slice(0, -1).map((m) => JSON.parse(m));
    assert.deepEqual(messages.map((m) => [m.short_message, m.timestamp, m.level, m._z]), [
      ['plain 1', 1.5, 6, '1'],
      ['plain, stderr, same ms', 1.5, 3, '1'],
      ['quote " and <tag>', 1.501, 6, '1'],
      ['é', 1.502, 6, '1'],
      ['{"a":1}', 1.502, 6, '1'],
      ['plain again', 1.503, 6, '1'],
    ]);
  });

  it('an attribute replaces the Docker field of its name, with or without its underscore', () => {
    const encoder = new GelfEncoder(context({ attributes: [['tag', 'mine'], ['_command', 'x'], ['z', '1']] }));
    const msg = JSON.parse(encoder.encode({ source: 'stderr', timeNano: 0n, line: Buffer.from('a') }).toString());
    assert.equal(msg._tag, 'mine');
    assert.equal(msg._command, 'x');
    assert.equal(msg.level, 3);
    assert.deepEqual(Object.keys(msg).slice(5), [...Object.keys(msg).slice(5)].sort());
  });

  it('parse-json keys become _ fields: strings and numbers as they are, others as JSON text; Docker fields and invalid names left out', () => {
    const encoder = new GelfEncoder(context());
    const fields = { level: 'warn', ms: 812, ok: true, req: { id: 'r1' }, 'bad name': 1, id: 'x', tag: 'clash' };
    const msg = JSON.parse(encoder.encode({ source: 'stdout', timeNano: 0n, line: Buffer.from('{}'), fields }).toString());
    assert.equal(msg._level, 'warn');
    assert.equal(msg._ms, 812);
    assert.equal(msg._ok, 'true');
    assert.equal(msg._req, '{"id":"r1"}');
    assert.equal(msg['_bad name'], undefined);
    assert.equal(msg._id, undefined);
    assert.equal(msg._tag, context().tag);
  });

  it('a message over 128 chunks is shortened at a UTF-8 boundary and marked, for each compression', () => {
    const encoder = new GelfEncoder(context());
    // Random base64 hardly compresses; é's are two bytes, so a cut can fall inside one.
    const text = Buffer.from(randomBytes(200_000).toString('base64').replace(/[+/]/g, 'é'));
    let cut = 0;
    for (const comp of ['none', 'gzip', 'zlib'] as const) {
      const config = gelfConfig({ 'gelf-address': 'udp://h:1', 'gelf-compression-type': comp, 'gelf-compression-level': '9' });
      const whole = compress(encoder.encode({ source: 'stdout', timeNano: 0n, line: text }), comp, 9);
      if (whole.length <= MAX_UDP_MESSAGE) continue; // compressed small enough: nothing to cut
      const out = udpPayload(encoder, { source: 'stdout', timeNano: 0n, line: text }, config)!;
      assert.equal(out.truncated, true, comp);
      assert.ok(out.payload.length <= MAX_UDP_MESSAGE);
      const msg = receive(chunk(out.payload, Buffer.alloc(8))) as Record<string, unknown>;
      assert.equal(msg._logship_truncated, text.length);
      const kept = msg.short_message as string;
      assert.ok(!kept.includes('\ufffd'), 'no sequence split');
      assert.ok(text.toString().startsWith(kept));
      assert.ok(Buffer.byteLength(kept) > MAX_UDP_MESSAGE * 0.5, `${comp}: kept ${Buffer.byteLength(kept)} bytes`);
      cut++;
    }
    assert.equal(cut, 3);
  });
});

describe('gelf options', () => {
  const parse = (opts: Record<string, string>) => gelfConfig(opts);
  const fails = (opts: Record<string, string>, message: RegExp) => assert.throws(() => parse(opts), (err: Error) => err instanceof InvalidOptionError && message.test(err.message));

  it('takes udp, tcp and tcp+tls addresses with a port, as Docker requires', () => {
    assert.deepEqual(parse({ 'gelf-address': 'udp://graylog:12201' }).target, { kind: 'udp', host: 'graylog', port: 12201 });
    assert.deepEqual(parse({ 'gelf-address': 'tcp://[::1]:12201' }).target, { kind: 'tcp', host: '::1', port: 12201 });
    assert.equal(parse({ 'gelf-address': 'tcp+tls://localhost:12202', 'gelf-tls-skip-verify': 'true' }).target.kind, 'tls');
    fails({}, /must specify a value for log opt 'gelf-address'/);
    fails({ 'gelf-address': 'udp://graylog' }, /expected udp:\/\/host:port/);
    fails({ 'gelf-address': 'http://graylog:80' }, /expected udp:\/\/host:port/);
  });

  it('defaults as Docker: gzip at level 1, 3 reconnects 1 s apart', () => {
    const udp = parse({ 'gelf-address': 'udp://h:1' });
    assert.equal(udp.compression, 'gzip');
    assert.equal(udp.compressionLevel, 1);
    const tcp = parse({ 'gelf-address': 'tcp://h:1' });
    assert.equal(tcp.maxReconnect, 3);
    assert.equal(tcp.reconnectDelayMs, 1000);
    assert.deepEqual(gelfRetryPolicy(tcp), { initialDelayMs: 1000, maxDelayMs: 8000 });
    assert.deepEqual(gelfRetryPolicy(parse({ 'gelf-address': 'tcp://h:1', 'gelf-tcp-max-reconnect': '0', 'gelf-tcp-reconnect-delay': '0' })), { initialDelayMs: 100, maxDelayMs: 100 });
  });

  it('refuses what Docker refuses', () => {
    fails({ 'gelf-address': 'tcp://h:1', 'gelf-compression-type': 'gzip' }, /compression is only supported on UDP/);
    fails({ 'gelf-address': 'tcp://h:1', 'gelf-compression-level': '1' }, /compression is only supported on UDP/);
    fails({ 'gelf-address': 'udp://h:1', 'gelf-tcp-max-reconnect': '1' }, /only valid for TCP/);
    fails({ 'gelf-address': 'udp://h:1', 'gelf-compression-type': 'lz4' }, /expected gzip, zlib or none/);
    fails({ 'gelf-address': 'udp://h:1', 'gelf-compression-level': '10' }, /from -1 to 9/);
    fails({ 'gelf-address': 'tcp://h:1', 'gelf-tcp-reconnect-delay': '-1' }, /from 0 to/);
    fails({ 'gelf-address': 'tcp://h:1', 'gelf-tls-ca-cert': '/x' }, /only valid with a tcp\+tls/);
    fails({ 'gelf-address': 'tcp+tls://h:1', 'gelf-tls-ca-cert': '/nonexistent/ca.pem' }, /cannot read the file of log opt 'gelf-tls-ca-cert'/);
    assert.equal(parse({ 'gelf-address': 'udp://h:1', 'gelf-compression-level': '+5' }).compressionLevel, 5);
  });
});
