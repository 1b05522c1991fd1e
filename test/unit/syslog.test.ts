import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { LOCAL_SYSLOG_SOCKET, SyslogEncoder, encodeSyslogMessage } from '../../src/backends/syslog.ts';
import { syslogFactory } from '../../src/backends/syslog.ts';
import { context, line } from './backend-context.ts';
import { InvalidOptionError } from '../../src/options/values.ts';

const captures = new URL('../fixtures/docker-captures/', import.meta.url);
// Docker's messages, one per line: what dockerd (PID 2597, host `vm`) sent to rsyslog.
const tcpCapture = fs.readFileSync(new URL('docker-syslog-tcp.bin', captures));
const tlsCapture = fs.readFileSync(new URL('docker-syslog-tls.bin', captures));
const DOCKERD_PID = 2597;

function messages(capture: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < capture.length; ) {
    const end = capture.indexOf(0x0a, start) + 1;
    out.push(capture.subarray(start, end));
    start = end;
  }
  return out;
}

describe('syslog encoding matches Docker byte for byte', () => {
  const tcp = messages(tcpCapture);
  const cases: { format: string; tag: string; at: string; micros?: number; index: number; source: 'stdout' | 'stderr'; text: string }[] = [
    { format: '', tag: 'f81fcd13a82e', at: '2026-11-21T23:06:56Z', index: 0, source: 'stderr', text: 'err-tcp-' },
    { format: '', tag: 'f81fcd13a82e', at: '2026-11-21T23:06:56Z', index: 1, source: 'stdout', text: 'out-tcp-' },
    { format: 'rfc3164', tag: '85196bdb55d4', at: '2026-11-21T23:06:57Z', index: 2, source: 'stderr', text: 'err-tcp-rfc3164' },
    { format: 'rfc5424', tag: 'ad40e87e433c', at: '2026-11-21T23:06:57Z', index: 4, source: 'stdout', text: 'out-tcp-rfc5424' },
    { format: 'rfc5424micro', tag: '47a0d147dea1', at: '2026-11-21T23:06:58Z', micros: 36959, index: 6, source: 'stdout', text: 'out-tcp-rfc5424micro' },
    { format: 'rfc5424micro', tag: '47a0d147dea1', at: '2026-11-21T23:06:58Z', micros: 37351, index: 7, source: 'stderr', text: 'err-tcp-rfc5424micro' },
  ];
  for (const c of cases) {
    it(`tcp, format '${c.format}', ${c.source}`, () => {
      const config = configureBackend(syslogFactory, { 'syslog-address': 'tcp://127.0.0.1:5514', 'syslog-format': c.format });
      const encoded = encodeSyslogMessage(config, context({ tag: c.tag }), DOCKERD_PID, line(c.text, c.source, c.at, (c.micros ?? 0) * 1000));
      assert.equal(encoded.toString(), tcp[c.index]!.toString());
      assert.deepEqual(encoded, tcp[c.index]);
    });
  }

  it('tcp+tls: octet counting for rfc5424, newlines for the default format', () => {
    const tls = messages(tlsCapture);
    const ctx = context({ tag: '0bf8015a29f8' });
    const rfc5424 = configureBackend(syslogFactory, { 'syslog-address': 'tcp+tls://127.0.0.1:6514', 'syslog-format': 'rfc5424' });
    assert.equal(rfc5424.octetCounting, true);
    assert.deepEqual(encodeSyslogMessage(rfc5424, ctx, DOCKERD_PID, line('err-tls-rfc5424', 'stderr', '2026-11-21T23:06:58Z')), tls[2]);
    const plain = configureBackend(syslogFactory, { 'syslog-address': 'tcp+tls://127.0.0.1:6514' });
    assert.equal(plain.octetCounting, false);
    assert.deepEqual(
      encodeSyslogMessage(plain, context({ tag: '5bf6ca4e3591' }), DOCKERD_PID, line('out-tls-', 'stdout', '2026-11-21T23:06:58Z')),
      tls[1],
    );
  });

  it("a batch is its lines' messages one after another, the header made again when the second, microsecond or stream changes", () => {
    const lines = [
      line('a', 'stdout', '2026-01-02T03:04:05Z', 1000),
      line('b', 'stdout', '2026-01-02T03:04:05Z', 2000),
      line('c', 'stderr', '2026-01-02T03:04:05Z', 2000),
      line('dd', 'stdout', '2026-01-02T03:04:06Z', 0),
      line('e'.repeat(300), 'stdout', '2026-01-02T03:04:06Z', 999_999_999),
    ];
    for (const [address, format] of [['tcp://h', ''], ['tcp://h', 'rfc3164'], ['tcp://h', 'rfc5424micro'], ['tcp+tls://h', 'rfc5424']] as const) {
      const config = configureBackend(syslogFactory, { 'syslog-address': address, 'syslog-format': format });
      const batch = new SyslogEncoder(config, context({ tag: 't' }), 7).encode(lines);
      const one = lines.map((l) => encodeSyslogMessage(config, context({ tag: 't' }), 7, l));
      assert.deepEqual(batch.bytes, Buffer.concat(one), `${address} ${format}`);
      assert.deepEqual(batch.ends, one.map((_, i) => one.slice(0, i + 1).reduce((n, m) => n + m.length, 0)));
    }
    const micro = configureBackend(syslogFactory, { 'syslog-address': 'tcp://h', 'syslog-format': 'rfc5424micro' });
    const text = new SyslogEncoder(micro, context({ tag: 't' }), 7).encode(lines.slice(0, 2)).bytes.toString();
    assert.equal(text, '<30>1 2026-01-02T03:04:05.000001Z vm t 7 t - a\n<30>1 2026-01-02T03:04:05.000002Z vm t 7 t - b\n');
  });

  it('keeps raw bytes, drops trailing zeros of micro time, pads single-digit days', () => {
    const micro = configureBackend(syslogFactory, { 'syslog-address': 'udp://h', 'syslog-format': 'rfc5424micro' });
    const raw = Buffer.from([0xff, 0x41]);
    const encoded = encodeSyslogMessage(micro, context({ tag: 't' }), 1, line(raw, 'stdout', '2026-01-02T03:04:05Z', 120_000_000));
    assert.deepEqual(encoded, Buffer.concat([Buffer.from('<30>1 2026-01-02T03:04:05.12Z vm t 1 t - '), raw, Buffer.from('\n')]));
    const whole = encodeSyslogMessage(micro, context({ tag: 't' }), 1, line('x', 'stdout', '2026-01-02T03:04:05Z'));
    assert.equal(whole.toString(), '<30>1 2026-01-02T03:04:05Z vm t 1 t - x\n');
    const unix = configureBackend(syslogFactory, { 'syslog-address': 'udp://h' });
    assert.equal(encodeSyslogMessage(unix, context({ tag: 't' }), 1, line('x', 'stdout', '2026-01-02T03:04:05Z')).toString(), '<30>Jan  2 03:04:05 t[1]: x\n');
  });
});

describe('syslog options', () => {
  it('parses every transport with Docker defaults (port 514, facility daemon)', () => {
    assert.deepEqual(configureBackend(syslogFactory, { 'syslog-address': 'udp://10.0.0.1' }).target, { kind: 'udp', host: '10.0.0.1', port: 514 });
    assert.deepEqual(configureBackend(syslogFactory, { 'syslog-address': 'tcp://[::1]:601' }).target, { kind: 'tcp', host: '::1', port: 601 });
    assert.deepEqual(configureBackend(syslogFactory, { 'syslog-address': 'unix:///dev/log' }).target, { kind: 'unix', path: '/dev/log' });
    assert.deepEqual(configureBackend(syslogFactory, { 'syslog-address': 'unixgram:///x/y.sock' }).target, { kind: 'unixgram', path: '/x/y.sock' });
    assert.deepEqual(configureBackend(syslogFactory, {}).target, { kind: 'unixgram', path: LOCAL_SYSLOG_SOCKET });
    assert.equal(configureBackend(syslogFactory, {}).facility, 3 << 3);
    const tls = configureBackend(syslogFactory, { 'syslog-address': 'tcp+tls://localhost', 'syslog-tls-skip-verify': 'false' }).target;
    assert.equal(tls.kind, 'tls');
    // Docker skips verification whenever the key is present, whatever its value.
    assert.equal(tls.kind === 'tls' && tls.tls.rejectUnauthorized, false);
  });

  it('parses facilities by name and number', () => {
    assert.equal(configureBackend(syslogFactory, { 'syslog-facility': 'local3' }).facility, 19 << 3);
    assert.equal(configureBackend(syslogFactory, { 'syslog-facility': 'authpriv' }).facility, 10 << 3);
    assert.equal(configureBackend(syslogFactory, { 'syslog-facility': '23' }).facility, 23 << 3);
  });

  it('refuses bad values, naming the option and what it accepts', () => {
    const bad: Record<string, string>[] = [
      { 'syslog-address': '10.0.0.1:514' },
      { 'syslog-address': 'http://x' },
      { 'syslog-address': 'tcp://host:99999' },
      { 'syslog-address': 'unix://relative' },
      { 'syslog-facility': 'local8' },
      { 'syslog-facility': '24' },
      { 'syslog-format': 'rfc5425' },
      { 'syslog-address': 'tcp+tls://h', 'syslog-tls-ca-cert': '/nonexistent/ca.pem' },
      { 'syslog-address': 'tcp+tls://h', 'syslog-tls-cert': '/etc/hostname' },
    ];
    for (const opts of bad) {
      assert.throws(() => configureBackend(syslogFactory, opts), (err: Error) => err instanceof InvalidOptionError && /log opt/.test(err.message), JSON.stringify(opts));
    }
  });
});
