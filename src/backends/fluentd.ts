// fluentd's forward protocol with the records Docker's fluentd driver sends (moby
// daemon/logger/fluentd): same tag, record keys, time encoding and `fluentd-*` options,
// over tcp, unix and (unlike Docker's driver) tls. A batch goes as one Forward-mode
// message, `[tag, [[time, record], ...], option]`, which every forward input accepts;
// with `fluentd-request-ack` its chunk id must come back before the batch counts as sent.
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { decode, encode } from '@msgpack/msgpack';
import { InvalidOptionError, parseGoDuration, parseTimerDuration } from '../options/values.ts';
import { defineOptions, type OptionValues } from '../options/schema.ts';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type RetryPolicy, type SendResult, SendError } from '../delivery/backend.ts';
import { type ContainerContext } from '../shaping/container.ts';
import { type OutgoingLine } from '../shaping/line.ts';
import { abortError, transientError } from '../delivery/backend.ts';
import { parseHostPort, splitScheme } from '../transport/address.ts';
import { StreamConnection, describeTarget, type StreamTarget } from '../transport/stream.ts';
import { tlsFileOptions, tlsOptions } from '../transport/tls.ts';

export interface FluentdConfig {
  target: StreamTarget;
  /** Time as EventTime (seconds and nanoseconds) instead of whole seconds. */
  subSecondPrecision: boolean;
  requestAck: boolean;
  /** Most bytes in flight (one batch): Docker's fluentd-buffer-limit. */
  bufferLimitBytes: number;
  /** The engine's first wait before retrying a failed batch. */
  retryWaitMs: number;
  /** How long to wait for an ack (fluentd-read-timeout); otherwise the engine's send deadline. */
  ackTimeoutMs: number | null;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 24224;
const DEFAULT_BUFFER_LIMIT = 1024 * 1024;
/**
 * A batch is held in memory, and forward inputs refuse or warn about larger messages
 * (Fluent Bit's limit is 6 MB by default, fluentd warns at 8 MB).
 */
const MAX_BUFFER_LIMIT = 64 * 1024 * 1024;
const DEFAULT_RETRY_WAIT_MS = 1000;
/**
 * What Docker's driver waits when fluentd-retry-wait is 0 (or under 1 ms, which it truncates
 * to 0): fluent-logger-golang replaces a zero RetryWait with its default, 500 ms.
 */
const ZERO_RETRY_WAIT_MS = 500;
/** Retries back off from fluentd-retry-wait up to this (the engine's usual cap), never giving up. */
const MAX_RETRY_DELAY_MS = 30_000;

const TLS_FILE = 'a PEM file, as the plugin sees it';

export const FLUENTD_OPTIONS = defineOptions([
  {
    key: 'fluentd-address',
    type: 'string',
    accepts: '`host:port`, `tcp://host:port`, `tls://host:port` or `unix:///path`', defaultDoc: "`tcp://127.0.0.1:24224`", doc: "`host[:port]`, `tcp://host[:port]`, `tls://host[:port]` (no path) or `unix:///path`" },
  { key: 'fluentd-async', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "validated and ignored: logship never fails or delays `docker run` for an unreachable receiver" },
  { key: 'fluentd-async-connect', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "validated and ignored: logship never fails or delays `docker run` for an unreachable receiver" },
  { key: 'fluentd-async-reconnect-interval', type: 'custom', accepts: 'a duration from 100ms to 10s', parse: parseReconnectInterval, defaultDoc: "", doc: "validated (100ms–10s) and ignored: logship reconnects on the next retry" },
  {
    key: 'fluentd-buffer-limit',
    type: 'size',
    units: 'binary',
    max: MAX_BUFFER_LIMIT,
    default: '1m', defaultDoc: "`1m`", doc: "most line bytes in one batch (binary units, as Docker: `1m` = 1,048,576), at most `64m`: a batch is held in memory, and forward inputs refuse or warn about larger messages (Fluent Bit's limit is 6 MB by default, fluentd warns at 8 MB)" },
  { key: 'fluentd-retry-wait', type: 'custom', default: '1s', accepts: 'a duration from 0 to 24h (0: 500ms, as Docker)', parse: parseRetryWait, defaultDoc: "`1s`", doc: "first wait before retrying a failed batch (a Go duration up to `24h`, in whole milliseconds as Docker keeps it); it doubles, with jitter, up to 30 s (or this value if larger). `0`, or under 1 ms, is 500 ms, as in Docker's driver (its client takes 0 as its default), never a tight reconnect loop" },
  { key: 'fluentd-max-retries', type: 'custom', accepts: 'a whole number', parse: parseMaxRetries, defaultDoc: "`2147483647`", doc: "validated and **ignored**: logship never gives up on a line (Docker drops it after this many retries); the store's size bounds an outage instead" },
  { key: 'fluentd-sub-second-precision', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "EventTime (seconds and nanoseconds) instead of whole seconds" },
  { key: 'fluentd-request-ack', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "ask for an ack of each batch's chunk id; a batch counts as delivered only once it came back (exact at-least-once; recommended)" },
  { key: 'fluentd-write-timeout', type: 'duration', defaultDoc: "", doc: "validated (a Go duration) and ignored" },
  { key: 'fluentd-read-timeout', type: 'duration', timer: true, min: 0, defaultDoc: "none", doc: "how long to wait for an ack before the batch is retried (up to `24h`, rounded up to whole milliseconds; without it, or past 60 s, the engine's 60 s limit on a send)" },
  { key: 'fluentd-tls-ca-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "the system's CAs", doc: "(logship only) PEM file of the CA for `tls://`" },
  { key: 'fluentd-tls-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "none", doc: "(logship only) PEM client certificate and key" },
  { key: 'fluentd-tls-key', type: 'string', accepts: TLS_FILE, defaultDoc: "none", doc: "(logship only) PEM client certificate and key" },
  { key: 'fluentd-tls-skip-verify', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "(logship only) `true` skips verifying the server's certificate" },
]);

export function configureFluentd(values: OptionValues<typeof FLUENTD_OPTIONS>): FluentdConfig {
  const readTimeout = values['fluentd-read-timeout'] ?? 0;
  return {
    target: parseFluentdAddress(values['fluentd-address'] ?? '', values),
    subSecondPrecision: values['fluentd-sub-second-precision'],
    requestAck: values['fluentd-request-ack'],
    bufferLimitBytes: values['fluentd-buffer-limit'],
    retryWaitMs: values['fluentd-retry-wait'],
    ackTimeoutMs: readTimeout > 0 ? readTimeout : null,
  };
}

function parseReconnectInterval(value: string, key: string): number {
  const ms = parseGoDuration(key, value);
  if (ms < 100 || ms > 10_000) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a duration from 100ms to 10s`);
  return ms;
}

function parseMaxRetries(value: string, key: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number`);
  }
  return Number(value);
}

/** Docker keeps whole milliseconds (`int(d.Seconds() * 1000)`), and its client takes 0 as its default. */
function parseRetryWait(value: string): number {
  parseTimerDuration('fluentd-retry-wait', value, 0); // within what a timer takes
  const ms = Math.trunc(parseGoDuration('fluentd-retry-wait', value));
  return ms === 0 ? ZERO_RETRY_WAIT_MS : ms;
}

function parseFluentdAddress(address: string, values: OptionValues<typeof FLUENTD_OPTIONS>): StreamTarget {
  const invalid = (why: string): InvalidOptionError =>
    new InvalidOptionError(
      `invalid value '${address}' for log opt 'fluentd-address': ${why}; expected host:port, tcp://host:port, tls://host:port or unix:///path`,
    );
  const full = address === '' ? `tcp://${DEFAULT_HOST}:${DEFAULT_PORT}` : address.includes('://') ? address : `tcp://${address}`;
  const { scheme, rest } = splitScheme(full) ?? { scheme: '', rest: '' };
  if (scheme === 'unix') {
    if (rest.replace(/^\/+/, '') === '') throw invalid('the socket path is empty');
    return { kind: 'unix', path: rest };
  }
  if (scheme !== 'tcp' && scheme !== 'tls') throw invalid(`unsupported scheme '${scheme}'`);
  if (rest.includes('/')) throw invalid('it should not contain a path element');
  const hostPort = parseHostPort(rest, DEFAULT_PORT);
  if (!hostPort) throw invalid('bad host or port');
  const host = hostPort.host || DEFAULT_HOST;
  if (scheme === 'tcp') return { kind: 'tcp', host, port: hostPort.port };
  const tls = tlsOptions({ ...tlsFileOptions('fluentd-tls', values), skipVerify: values['fluentd-tls-skip-verify'], servername: host });
  return { kind: 'tls', host, port: hostPort.port, tls };
}

/**
 * Just enough msgpack to write a Forward-mode message. Hand-written because a line is raw
 * bytes that must go as a msgpack str unchanged, as Docker's driver sends it, and a
 * library would make a JS string of it first (mangling bytes that are not UTF-8).
 */
class MsgpackWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  private header(n: number, fix: number, fixMax: number, op16: number, op32: number): void {
    this.reserve(5);
    if (n <= fixMax) this.buf[this.pos++] = fix | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = op16;
      this.pos = this.buf.writeUInt16BE(n, this.pos);
    } else {
      this.buf[this.pos++] = op32;
      this.pos = this.buf.writeUInt32BE(n, this.pos);
    }
  }

  array(n: number): void {
    this.header(n, 0x90, 15, 0xdc, 0xdd);
  }

  map(n: number): void {
    this.header(n, 0x80, 15, 0xde, 0xdf);
  }

  str(bytes: Buffer): void {
    const n = bytes.length;
    this.reserve(5 + n);
    if (n < 32) this.buf[this.pos++] = 0xa0 | n;
    else if (n < 0x100) {
      this.buf[this.pos++] = 0xd9;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xda;
      this.pos = this.buf.writeUInt16BE(n, this.pos);
    } else {
      this.buf[this.pos++] = 0xdb;
      this.pos = this.buf.writeUInt32BE(n, this.pos);
    }
    this.pos += bytes.copy(this.buf, this.pos);
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A non-negative integer in the smallest signed form, as Go's msgp writes int64. */
  int(n: number): void {
    this.reserve(9);
    if (n < 0x80) this.buf[this.pos++] = n;
    else if (n < 0x8000) {
      this.buf[this.pos++] = 0xd1;
      this.pos = this.buf.writeInt16BE(n, this.pos);
    } else if (n < 0x80000000) {
      this.buf[this.pos++] = 0xd2;
      this.pos = this.buf.writeInt32BE(n, this.pos);
    } else {
      this.buf[this.pos++] = 0xd3;
      this.pos = this.buf.writeBigInt64BE(BigInt(n), this.pos);
    }
  }

  /** Forward protocol EventTime: fixext8, type 0, seconds and nanoseconds as uint32 BE. */
  eventTime(seconds: number, nanos: number): void {
    this.reserve(10);
    this.buf[this.pos++] = 0xd7;
    this.buf[this.pos++] = 0x00;
    this.pos = this.buf.writeUInt32BE(seconds, this.pos);
    this.pos = this.buf.writeUInt32BE(nanos, this.pos);
  }

  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

const utf8 = (s: string): Buffer => Buffer.from(s);
const KEY_SOURCE = utf8('source');
const KEY_LOG = utf8('log');
const SOURCE_VALUE = { stdout: utf8('stdout'), stderr: utf8('stderr') };
const PARTIAL_KEYS = {
  message: utf8('partial_message'),
  id: utf8('partial_id'),
  ordinal: utf8('partial_ordinal'),
  last: utf8('partial_last'),
};
const TRUE = utf8('true');
const FALSE = utf8('false');
const NO_FIELDS: [string, unknown][] = [];

/**
 * The fields Docker's fluentd driver adds to every record of a container (container_id,
 * container_name, then the attributes, which may replace source or log), and the keys a
 * parsed JSON line may therefore not set. The kafka backend's json records are the same.
 */
export interface FluentdRecordFields {
  fields: ReadonlyMap<string, string>;
  sourceOverride: boolean;
  logOverride: boolean;
  ownKeys: ReadonlySet<string>;
}

export function fluentdRecordFields(container: ContainerContext): FluentdRecordFields {
  const fields = new Map<string, string>([
    ['container_id', container.id],
    ['container_name', '/' + container.name],
  ]);
  for (const [key, value] of container.attributes) fields.set(key, value);
  const ownKeys = new Set([...fields.keys(), 'source', 'log', ...Object.values(PARTIAL_KEYS).map(String)]);
  return { fields, sourceOverride: fields.has('source'), logOverride: fields.has('log'), ownKeys };
}

/** Encodes the records of one container; the parts that never change are encoded once. */
export class FluentdEncoder {
  private readonly tag: Buffer;
  private readonly subSecond: boolean;
  /** container_id, container_name and the attributes, already encoded as key/value pairs. */
  private readonly fixedPairs: Buffer;
  private readonly fixedCount: number;
  /** An attribute named `source` or `log` replaces that field, as in Docker's map. */
  private readonly sourceOverride: boolean;
  private readonly logOverride: boolean;
  /** Keys a parsed JSON line may not set: Docker's own, the attributes and the partial_* ones. */
  private readonly ownKeys: ReadonlySet<string>;

  constructor(container: ContainerContext, subSecond: boolean) {
    this.tag = utf8(container.tag);
    this.subSecond = subSecond;
    const { fields, sourceOverride, logOverride, ownKeys } = fluentdRecordFields(container);
    this.sourceOverride = sourceOverride;
    this.logOverride = logOverride;
    this.ownKeys = ownKeys;
    const writer = new MsgpackWriter(256);
    for (const [key, value] of fields) {
      writer.str(utf8(key));
      writer.str(utf8(value));
    }
    this.fixedPairs = Buffer.from(writer.result());
    this.fixedCount = fields.size;
  }

  /** `[tag, [[time, record], ...], option]`; `chunk` is set for ack mode. */
  encode(lines: readonly OutgoingLine[], chunk: string | null): Buffer {
    let size = 64;
    // A line's fields come from its own bytes, so they take about as much again.
    for (const line of lines) size += (line.fields ? 2 : 1) * line.line.length + this.fixedPairs.length + 64;
    const w = new MsgpackWriter(size);
    w.array(3);
    w.str(this.tag);
    w.array(lines.length);
    for (const line of lines) {
      w.array(2);
      const seconds = Number(line.timeNano / 1_000_000_000n);
      if (this.subSecond) w.eventTime(seconds, Number(line.timeNano % 1_000_000_000n));
      else w.int(seconds);
      const partial = line.partial;
      const extra = line.fields ? Object.entries(line.fields).filter(([key]) => !this.ownKeys.has(key)) : NO_FIELDS;
      w.map(
        this.fixedCount + (this.sourceOverride ? 0 : 1) + (this.logOverride ? 0 : 1) + (partial ? 4 : 0) + extra.length,
      );
      if (!this.sourceOverride) {
        w.str(KEY_SOURCE);
        w.str(SOURCE_VALUE[line.source]);
      }
      if (!this.logOverride) {
        w.str(KEY_LOG);
        w.str(line.line);
      }
      w.raw(this.fixedPairs);
      if (partial) {
        w.str(PARTIAL_KEYS.message);
        w.str(TRUE);
        w.str(PARTIAL_KEYS.id);
        w.str(utf8(partial.id));
        w.str(PARTIAL_KEYS.ordinal);
        w.str(utf8(String(partial.ordinal)));
        w.str(PARTIAL_KEYS.last);
        w.str(partial.last ? TRUE : FALSE);
      }
      for (const [key, value] of extra) {
        w.str(utf8(key));
        // Nested objects as maps, arrays, numbers, booleans and null as msgpack's own types.
        w.raw(encode(value));
      }
    }
    w.map(chunk === null ? 1 : 2);
    w.str(utf8('size'));
    w.int(lines.length);
    if (chunk !== null) {
      w.str(utf8('chunk'));
      w.str(utf8(chunk));
    }
    return w.result();
  }
}

class FluentdBackend implements Backend {
  private readonly config: FluentdConfig;
  private readonly encoder: FluentdEncoder;
  private readonly connection: StreamConnection;
  /** Bytes the receiver sent back since the current batch went out (ack mode). */
  private received: Buffer[] = [];
  private onReceived: (() => void) | null = null;

  constructor(config: FluentdConfig, container: ContainerContext) {
    this.config = config;
    this.encoder = new FluentdEncoder(container, config.subSecondPrecision);
    this.connection = new StreamConnection(config.target, (chunk) => {
      this.received.push(chunk);
      this.onReceived?.();
    });
  }

  /** Every failure but encoding is the connection's or the receiver's, so transient. */
  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (lines.length === 0) return DELIVERED;
    const chunk = this.config.requestAck ? randomBytes(16).toString('base64') : null;
    let message: Buffer;
    try {
      message = this.encoder.encode(lines, chunk);
    } catch (err) {
      throw new SendError(`fluentd: encoding the records failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
    }
    this.received = [];
    const socket = await this.connection.write([message], signal);
    if (chunk !== null) await this.ack(socket, chunk, signal).catch((err: unknown) => Promise.reject(transientError(err)));
    return DELIVERED;
  }

  /** Waits for the receiver to ack `chunk`. */
  private ack(socket: net.Socket, chunk: string, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (err: Error | null): void => {
        if (timer) clearTimeout(timer);
        this.onReceived = null;
        socket.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve();
      };
      const check = (): void => {
        let reply: unknown;
        try {
          reply = decode(Buffer.concat(this.received));
        } catch (err) {
          if (err instanceof RangeError) return; // not all of it yet
          finish(new Error(`unreadable ack from ${describeTarget(this.config.target)}: ${(err as Error).message}`));
          return;
        }
        const ack = (reply as { ack?: unknown } | null)?.ack;
        finish(ack === chunk ? null : new Error(`fluentd answered ack ${String(ack)} for chunk ${chunk}`));
      };
      const onClose = (): void => finish(new Error(`connection to ${describeTarget(this.config.target)} closed before the ack`));
      const onAbort = (): void => finish(abortError(signal));
      const timeoutMs = this.config.ackTimeoutMs;
      const timer =
        timeoutMs === null
          ? null
          : setTimeout(() => finish(new Error(`no ack from ${describeTarget(this.config.target)} within ${timeoutMs} ms`)), timeoutMs);
      this.onReceived = check;
      socket.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
      if (this.received.length > 0) check();
    });
  }

  async close(): Promise<void> {
    this.connection.close();
  }
}

export const fluentdFactory: BackendFactory<FluentdConfig, typeof FLUENTD_OPTIONS> = {
  name: 'fluentd',
  options: FLUENTD_OPTIONS,
  configure: configureFluentd,
  batchLimits(config: FluentdConfig): BatchLimits {
    return { maxLines: 10_000, maxBytes: config.bufferLimitBytes };
  },
  retryPolicy(config: FluentdConfig): RetryPolicy {
    return { initialDelayMs: config.retryWaitMs, maxDelayMs: Math.max(MAX_RETRY_DELAY_MS, config.retryWaitMs) };
  },
  create(config: FluentdConfig, container: ContainerContext): Backend {
    return new FluentdBackend(config, container);
  },
};
