import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { ExtensionCodec, decode, decodeMulti, encode } from '@msgpack/msgpack';
import { FluentdEncoder, } from '../../src/backends/fluentd.ts';
import { fluentdFactory } from '../../src/backends/fluentd.ts';
import { context, line } from './backend-context.ts';
import { InvalidOptionError, parseGoDuration, parseRamInBytes } from '../../src/options/values.ts';

// What Docker's driver sent: [tag, time, record, option] per line (Message mode).
const capture = fs.readFileSync(new URL('../fixtures/docker-captures/docker-fluentd-raw.msgpack', import.meta.url));

const eventTimes = new ExtensionCodec();
eventTimes.register({
  type: 0,
  encode: () => null,
  decode: (data) => {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { epoch: view.getUint32(0), nano: view.getUint32(4) };
  },
});

type Captured = [string, number | { epoch: number; nano: number }, Record<string, string>, Record<string, string>];
const captured = [...decodeMulti(capture, { extensionCodec: eventTimes })] as Captured[];

/** msgpack of one record pair as Docker encodes it (str keys and values). */
const pair = (key: string, value: string): Buffer => Buffer.concat([Buffer.from(encode(key)), Buffer.from(encode(value))]);

describe('fluentd records match Docker', () => {
  for (const [index, subSecond] of [[0, false], [2, true]] as const) {
    it(`carry the same tag, time and record (${subSecond ? 'EventTime' : 'integer time'})`, () => {
      const [tag, time, record] = captured[index]!;
      const ctx = context({ id: record.container_id!, name: record.container_name!.slice(1), tag });
      const epoch = typeof time === 'number' ? time : time.epoch;
      const nano = typeof time === 'number' ? 0 : time.nano;
      const sent = line(record.log!, record.source as 'stdout', new Date(epoch * 1000).toISOString(), nano);
      const bytes = new FluentdEncoder(ctx, subSecond).encode([sent], null);

      const [gotTag, entries, option] = decode(bytes, { extensionCodec: eventTimes }) as [string, [unknown, Record<string, string>][], Record<string, unknown>];
      assert.equal(gotTag, tag);
      assert.deepEqual(entries, [[time, record]]);
      assert.deepEqual(option, { size: 1 });
      // Byte for byte: each key/value pair and the time are encoded as Docker encodes them.
      for (const [key, value] of Object.entries(record)) assert.ok(bytes.includes(pair(key, value)), key);
      const timeBytes = subSecond ? capture.subarray(0x13e, 0x148) : capture.subarray(0x0e, 0x13);
      assert.equal(timeBytes[0], subSecond ? 0xd7 : 0xd2);
      assert.ok(bytes.includes(timeBytes));
    });
  }

  it('adds attributes (which override fixed keys) and the partial fields, all strings', () => {
    const ctx = context({ attributes: [['foo', 'bar'], ['E1', 'xyz'], ['container_name', 'renamed']] });
    const fragment = { ...line('partial', 'stdout', '2026-11-21T23:06:40Z'), partial: { id: 'p'.repeat(64), ordinal: 1, last: false } };
    const [, entries, option] = decode(new FluentdEncoder(ctx, false).encode([fragment, line('x', 'stderr', '2026-11-21T23:06:41Z')], 'abc')) as [string, [number, Record<string, string>][], unknown];
    assert.deepEqual(entries[0]![1], {
      source: 'stdout',
      log: 'partial',
      container_id: ctx.id,
      container_name: 'renamed',
      foo: 'bar',
      E1: 'xyz',
      partial_message: 'true',
      partial_id: 'p'.repeat(64),
      partial_ordinal: '1',
      partial_last: 'false',
    });
    assert.equal(entries[1]![1].source, 'stderr');
    assert.equal(entries[1]![0], 1795302401);
    assert.deepEqual(option, { size: 2, chunk: 'abc' });
  });

  it('sends a line that is not UTF-8 as its raw bytes', () => {
    const raw = Buffer.from([0x68, 0xff, 0xfe, 0x69]);
    const bytes = new FluentdEncoder(context(), false).encode([line(raw, 'stdout', '2026-11-21T23:06:40Z')], null);
    assert.ok(bytes.includes(Buffer.concat([Buffer.from([0xa3]), Buffer.from('log'), Buffer.from([0xa4]), raw])));
  });

  it('encodes long lines and many entries with the wide headers', () => {
    const long = 'x'.repeat(70_000);
    const lines = Array.from({ length: 20 }, (_, i) => line(i === 0 ? long : `l${i}`, 'stdout', '2026-11-21T23:06:40Z'));
    const [, entries] = decode(new FluentdEncoder(context(), false).encode(lines, null)) as [string, [number, Record<string, string>][]];
    assert.equal(entries.length, 20);
    assert.equal(entries[0]![1].log, long);
    assert.equal(entries[19]![1].log, 'l19');
  });
});

describe('fluentd options', () => {
  it('has Docker defaults', () => {
    const config = configureBackend(fluentdFactory, {});
    assert.deepEqual(config.target, { kind: 'tcp', host: '127.0.0.1', port: 24224 });
    assert.equal(config.bufferLimitBytes, 1024 * 1024);
    assert.equal(config.retryWaitMs, 1000);
    assert.equal(config.subSecondPrecision, false);
    assert.equal(config.requestAck, false);
  });

  it('parses addresses as Docker does', () => {
    assert.deepEqual(configureBackend(fluentdFactory, { 'fluentd-address': 'fluent.example:24225' }).target, { kind: 'tcp', host: 'fluent.example', port: 24225 });
    assert.deepEqual(configureBackend(fluentdFactory, { 'fluentd-address': 'tcp://:24226' }).target, { kind: 'tcp', host: '127.0.0.1', port: 24226 });
    assert.deepEqual(configureBackend(fluentdFactory, { 'fluentd-address': 'unix:///run/fluent.sock' }).target, { kind: 'unix', path: '/run/fluent.sock' });
    const tls = configureBackend(fluentdFactory, { 'fluentd-address': 'tls://localhost', 'fluentd-tls-skip-verify': 'true' }).target;
    assert.equal(tls.kind === 'tls' && tls.port, 24224);
    assert.equal(tls.kind === 'tls' && tls.tls.rejectUnauthorized, false);
  });

  it('parses durations and binary sizes', () => {
    assert.equal(parseGoDuration('k', '1m30s'), 90_000);
    assert.equal(parseGoDuration('k', '250ms'), 250);
    assert.equal(parseGoDuration('k', '1.5s'), 1500);
    assert.equal(parseRamInBytes('k', '8m'), 8 * 1024 * 1024);
    assert.equal(parseRamInBytes('k', '512KiB'), 512 * 1024);
    assert.equal(configureBackend(fluentdFactory, { 'fluentd-retry-wait': '2s', 'fluentd-buffer-limit': '2m' }).retryWaitMs, 2000);
    assert.equal(configureBackend(fluentdFactory, { 'fluentd-read-timeout': '5s' }).ackTimeoutMs, 5000);
  });

  it('refuses bad values, naming the option', () => {
    const bad: Record<string, string>[] = [
      { 'fluentd-address': 'udp://h:1' },
      { 'fluentd-address': 'tcp://h:1/path' },
      { 'fluentd-address': 'unix://' },
      { 'fluentd-address': 'h:70000' },
      { 'fluentd-async': 'yes' },
      { 'fluentd-request-ack': 'maybe' },
      { 'fluentd-retry-wait': '1' },
      { 'fluentd-retry-wait': '-1s' },
      { 'fluentd-max-retries': '-1' },
      { 'fluentd-buffer-limit': 'lots' },
      { 'fluentd-async-reconnect-interval': '20s' },
      { 'fluentd-address': 'tls://h', 'fluentd-tls-ca-cert': '/nonexistent.pem' },
    ];
    for (const opts of bad) {
      assert.throws(() => configureBackend(fluentdFactory, opts), (err: Error) => err instanceof InvalidOptionError && /log opt/.test(err.message), JSON.stringify(opts));
    }
  });
});

describe('fluentd records with parse-json fields', () => {
  it('add the object\'s keys as record keys with msgpack\'s own types; Docker\'s keys and the attributes win a clash', () => {
    const ctx = context({ attributes: [['team', 'core']] });
    const raw = '{"level":"warn","n":42,"ratio":0.5,"ok":true,"none":null,"tags":["a",1],"req":{"id":"r1","ms":12},"log":"x","source":"y","container_id":"z","team":"other","partial_id":"p"}';
    const json = { ...line(raw, 'stdout', '2026-11-21T23:06:40Z'), fields: JSON.parse(raw) as Record<string, unknown> };
    const [, entries] = decode(new FluentdEncoder(ctx, false).encode([json], null)) as [string, [number, Record<string, unknown>][]];
    assert.deepEqual(entries[0]![1], {
      source: 'stdout',
      log: raw,
      container_id: ctx.id,
      container_name: '/' + ctx.name,
      team: 'core',
      level: 'warn',
      n: 42,
      ratio: 0.5,
      ok: true,
      none: null,
      tags: ['a', 1],
      req: { id: 'r1', ms: 12 },
    });
  });

  it('encode a line without fields exactly as before', () => {
    const ctx = context();
    const plain = line('{"level":"warn"}', 'stdout', '2026-11-21T23:06:40Z');
    const [, entries] = decode(new FluentdEncoder(ctx, false).encode([plain], null)) as [string, [number, Record<string, unknown>][]];
    assert.deepEqual(Object.keys(entries[0]![1]), ['source', 'log', 'container_id', 'container_name']);
  });

  it('keep the buffer growing for a batch of large objects', () => {
    const big = { blob: 'é'.repeat(50_000), list: Array.from({ length: 2000 }, (_, i) => i) };
    const raw = JSON.stringify(big);
    const lines = Array.from({ length: 5 }, () => ({ ...line(raw, 'stdout', '2026-11-21T23:06:40Z'), fields: big }));
    const [, entries] = decode(new FluentdEncoder(context(), false).encode(lines, null)) as [string, [number, Record<string, unknown>][]];
    assert.equal(entries.length, 5);
    for (const [, record] of entries) assert.deepEqual({ blob: record.blob, list: record.list }, big);
  });
});
