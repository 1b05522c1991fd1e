// GELF 1.1, as Docker's gelf driver sends it (moby daemon/logger/gelf with the vendored
// Graylog2/go-gelf): the same message (Docker's fields, the attributes as `_` fields, keys
// in Go's sorted order), UDP datagrams compressed with gzip, zlib or nothing and chunked
// past 1420 bytes (magic 1e 0f, an 8-byte random id, sequence, count, at most 128 chunks),
// TCP frames ended by a NUL. What differs on purpose (README): tcp+tls; the address is
// resolved on every connection; a message too long for 128 chunks is shortened, marked and
// counted, not lost; reconnection never gives up (the store keeps the lines).
import { randomFillSync } from 'node:crypto';
import zlib from 'node:zlib';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type Rejection, type RetryPolicy, type SendResult, transientError } from '../delivery/backend.ts';
import { RateLimitedWarning } from '../observability/log.ts';
import { type OptionValues, defineOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import { parseHostPort } from '../transport/address.ts';
import { UdpConnection } from '../transport/datagram.ts';
import { resultInLines, utf8Pieces } from '../transport/requests.ts';
import { type ReplayWindow, StreamConnection, type StreamTarget } from '../transport/stream.ts';
import { tlsFileOptions, tlsOptions } from '../transport/tls.ts';
import { goJsonBytes, goJsonString, goJsonValue, isPlainJsonText } from './go-json.ts';

const MAX_INT = 2 ** 31 - 1;


/** Go's strconv.Atoi (an optional sign) within bounds, as Docker reads the compression level. */
function level(value: string, key: string): number {
  const n = /^[+-]?\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= -1 && n <= 9)) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number from -1 to 9`);
  return n;
}

export const GELF_OPTIONS = defineOptions([
  { key: 'gelf-address', type: 'string', required: true, accepts: '`udp://host:port`, `tcp://host:port` or `tcp+tls://host:port`', doc: '`udp://host:port`, `tcp://host:port` or `tcp+tls://host:port` (a port is required, as in Docker): the GELF input' },
  { key: 'gelf-compression-type', type: 'enum', defaultDoc: '`gzip`', values: ['gzip', 'zlib', 'none'], doc: '`gzip`, `zlib` or `none`: how UDP messages are compressed (UDP only, as in Docker)' },
  { key: 'gelf-compression-level', type: 'custom', defaultDoc: '`1`', accepts: '-1 (the library default) to 9', parse: level, doc: '-1 (the library default) to 9: the compression level (UDP only)' },
  { key: 'gelf-tcp-max-reconnect', type: 'int', defaultDoc: '`3`', min: 0, max: MAX_INT, doc: 'a whole number from 0: retries at `gelf-tcp-reconnect-delay` before the delay doubles (TCP only); lines are never given up' },
  { key: 'gelf-tcp-reconnect-delay', type: 'int', defaultDoc: '`1`', min: 0, max: MAX_INT, unit: 'seconds', doc: 'whole seconds from 0: the delay before reconnecting after a failed connection or write (TCP only)' },
  { key: 'gelf-tls-ca-cert', type: 'string', accepts: 'a PEM file', defaultDoc: "the system's CAs", doc: 'PEM file of the CA that signs the server\'s certificate (`tcp+tls`)' },
  { key: 'gelf-tls-cert', type: 'string', accepts: 'a PEM file', doc: 'PEM client certificate, with `gelf-tls-key`, for servers that ask for one (`tcp+tls`)' },
  { key: 'gelf-tls-key', type: 'string', accepts: 'a PEM file', doc: 'PEM key of `gelf-tls-cert`' },
  { key: 'gelf-tls-skip-verify', type: 'bool', defaultDoc: '`false`', doc: '`true` skips verifying the server\'s certificate (`tcp+tls`)' },
]);

export type GelfCompression = 'gzip' | 'zlib' | 'none';

export type GelfTarget = { kind: 'udp'; host: string; port: number } | StreamTarget;

export interface GelfConfig {
  target: GelfTarget;
  compression: GelfCompression;
  compressionLevel: number;
  /** The first reconnection's delay, and how many times it doubles. */
  reconnectDelayMs: number;
  maxReconnect: number;
}

/** Defaults as Docker's (go-gelf's); absent from the schema, since Docker refuses some options where they mean nothing only when given. */
export function configureGelf(values: OptionValues<typeof GELF_OPTIONS>): GelfConfig {
  const given = new Set(Object.entries(values).filter(([, v]) => v !== undefined).map(([k]) => k));
  const address = values['gelf-address'];
  const match = /^(udp|tcp|tcp\+tls):\/\/([^/?#]*)/.exec(address);
  const hostPort = match && /:\d+$/.test(match[2]!) ? parseHostPort(match[2]!, 0) : null;
  if (!match || !hostPort) {
    throw new InvalidOptionError(
      `invalid value '${address}' for log opt 'gelf-address': expected udp://host:port, tcp://host:port or tcp+tls://host:port`,
    );
  }
  const scheme = match[1]!;
  // Docker refuses these where they mean nothing, so a mistaken transport shows at `docker run`.
  for (const key of ['gelf-compression-type', 'gelf-compression-level']) {
    if (given.has(key) && scheme !== 'udp') throw new InvalidOptionError(`log opt '${key}': compression is only supported on UDP`);
  }
  for (const key of ['gelf-tcp-max-reconnect', 'gelf-tcp-reconnect-delay']) {
    if (given.has(key) && scheme === 'udp') throw new InvalidOptionError(`log opt '${key}' is only valid for TCP`);
  }
  for (const key of ['gelf-tls-ca-cert', 'gelf-tls-cert', 'gelf-tls-key', 'gelf-tls-skip-verify']) {
    if (given.has(key) && scheme !== 'tcp+tls') throw new InvalidOptionError(`log opt '${key}' is only valid with a tcp+tls:// gelf-address`);
  }
  const host = hostPort.host === '' ? 'localhost' : hostPort.host;
  const target: GelfTarget =
    scheme === 'udp' ? { kind: 'udp', host, port: hostPort.port }
    : scheme === 'tcp' ? { kind: 'tcp', host, port: hostPort.port }
    : { kind: 'tls', host, port: hostPort.port, tls: tlsOptions({ ...tlsFileOptions('gelf-tls', values), skipVerify: values['gelf-tls-skip-verify'] ?? false, servername: host }) };
  return {
    target,
    compression: values['gelf-compression-type'] ?? 'gzip',
    compressionLevel: values['gelf-compression-level'] ?? 1,
    reconnectDelayMs: (values['gelf-tcp-reconnect-delay'] ?? 1) * 1000,
    maxReconnect: values['gelf-tcp-max-reconnect'] ?? 3,
  };
}

const LEVEL_INFO = 6;
const LEVEL_ERR = 3;
/** Field names GELF allows (and `_id`, which it reserves). */
const FIELD_NAME = /^[\w.-]+$/;

/**
 * The messages of one container. Everything but the line, its time and level is the same
 * for every message, so it is encoded once: `{"version":"1.1","host":…,"short_message":`
 * before the line and Docker's `_` fields, sorted as Go sorts a map's keys, after it.
 */
export class GelfEncoder {
  private readonly head: string;
  private readonly extra: string;
  private readonly extraKeys: Set<string>;
  /** A plain line's message around its bytes: the head and the string's quote; the quote, time and level; the fields. */
  private readonly headBytes: Buffer;
  private readonly tailBytes: Buffer;
  private midMs = NaN;
  private readonly mids: { stdout: Buffer | null; stderr: Buffer | null } = { stdout: null, stderr: null };

  constructor(container: ContainerContext) {
    this.head = `{"version":"1.1","host":${goJsonString(container.hostname)},"short_message":`;
    const fields = new Map<string, string>([
      ['_container_id', container.id],
      ['_container_name', container.name],
      ['_image_id', container.imageId],
      ['_image_name', container.imageName],
      ['_command', container.command],
      ['_tag', container.tag],
      ['_created', container.created],
    ]);
    // An attribute of the same name replaces Docker's field, as in Docker.
    for (const [key, value] of container.attributes) fields.set(key.startsWith('_') ? key : '_' + key, value);
    this.extraKeys = new Set(fields.keys());
    this.extra = [...fields.keys()]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((key) => `,${goJsonString(key)}:${goJsonString(fields.get(key)!)}`)
      .join('');
    this.headBytes = Buffer.from(this.head + '"');
    this.tailBytes = Buffer.from(this.extra + '}');
  }

  /**
   * `","timestamp":…,"level":…` after a plain line's bytes: made once per millisecond and
   * stream (a busy container's lines share them), where a message built as a string and
   * encoded again was most of the CPU shipping short lines (bench/delivery-backends.ts).
   */
  private mid(line: OutgoingLine): Buffer {
    const ms = Number(line.timeNano / 1_000_000n);
    if (ms !== this.midMs) {
      this.midMs = ms;
      this.mids.stdout = this.mids.stderr = null;
    }
    const source = line.source === 'stderr' ? 'stderr' : 'stdout';
    return (this.mids[source] ??= Buffer.from(`","timestamp":${ms / 1000},"level":${source === 'stderr' ? LEVEL_ERR : LEVEL_INFO}`));
  }

  private plain(line: OutgoingLine): boolean {
    return !line.fields && isPlainJsonText(line.line);
  }

  /** The TCP frames of these lines, each message ended by its NUL, one after another in one buffer. */
  frames(lines: readonly OutgoingLine[]): Buffer {
    const messages: Array<Buffer | null> = new Array(lines.length);
    const mids: Array<Buffer | null> = new Array(lines.length);
    const fixed = this.headBytes.length + this.tailBytes.length + 1;
    let total = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (this.plain(line)) {
        const mid = this.mid(line);
        mids[i] = mid;
        messages[i] = null;
        total += fixed + line.line.length + mid.length;
      } else {
        const message = this.encode(line);
        messages[i] = message;
        total += message.length + 1;
      }
    }
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    for (let i = 0; i < lines.length; i++) {
      const message = messages[i];
      if (message) {
        pos += message.copy(out, pos);
      } else {
        pos += this.headBytes.copy(out, pos);
        pos += lines[i]!.line.copy(out, pos);
        pos += mids[i]!.copy(out, pos);
        pos += this.tailBytes.copy(out, pos);
      }
      out[pos++] = 0;
    }
    return out;
  }

  /** The message's JSON; `line` replaces the line's bytes (when cut), `marker` adds `_logship_truncated`. */
  encode(line: OutgoingLine, text: Buffer = line.line, truncatedFrom?: number): Buffer {
    if (text === line.line && truncatedFrom === undefined && this.plain(line)) return Buffer.concat([this.headBytes, text, this.mid(line), this.tailBytes]);
    const level = line.source === 'stderr' ? LEVEL_ERR : LEVEL_INFO;
    // Docker's time: whole milliseconds as seconds (a float64, printed the shortest way, as JS does).
    const timestamp = Number(line.timeNano / 1_000_000n) / 1000;
    let json = `${this.head}${goJsonBytes(text)},"timestamp":${timestamp},"level":${level}${this.extra}`;
    if (line.fields) json += this.fieldsJson(line.fields);
    if (truncatedFrom !== undefined) json += `,"_logship_truncated":${truncatedFrom}`;
    return Buffer.from(json + '}');
  }

  /**
   * parse-json's keys as `_` fields. GELF's values are strings and numbers: other values go
   * as compact JSON text; names GELF refuses, and Docker's own fields, are left out.
   */
  private fieldsJson(fields: Readonly<Record<string, unknown>>): string {
    let out = '';
    for (const [key, value] of Object.entries(fields)) {
      const name = '_' + key;
      if (!FIELD_NAME.test(key) || name === '_id' || this.extraKeys.has(name) || name === '_logship_truncated') continue;
      const text = typeof value === 'string' || typeof value === 'number' ? goJsonValue(value) : goJsonString(JSON.stringify(value));
      out += `,${goJsonString(name)}:${text}`;
    }
    return out;
  }
}

export const CHUNK_SIZE = 1420;
const CHUNK_HEADER = 12;
const CHUNK_DATA = CHUNK_SIZE - CHUNK_HEADER;
export const MAX_CHUNKS = 128;
/** The most a message compressed may weigh: 128 chunks. */
export const MAX_UDP_MESSAGE = MAX_CHUNKS * CHUNK_DATA;

export function compress(message: Buffer, compression: GelfCompression, level: number): Buffer {
  if (compression === 'none') return message;
  return compression === 'gzip' ? zlib.gzipSync(message, { level }) : zlib.deflateSync(message, { level });
}

/**
 * The datagrams of one message: itself if it fits one, else chunks of 1408 bytes behind
 * the chunk header (go-gelf's sizes). `id` is 8 random bytes.
 */
export function chunk(payload: Buffer, id: Buffer): Buffer[] {
  if (payload.length <= CHUNK_SIZE) return [payload];
  const count = Math.ceil(payload.length / CHUNK_DATA);
  if (count > MAX_CHUNKS) throw new RangeError(`a ${payload.length}-byte GELF message needs ${count} chunks (at most ${MAX_CHUNKS})`);
  const chunks: Buffer[] = [];
  for (let seq = 0; seq < count; seq++) {
    const data = payload.subarray(seq * CHUNK_DATA, (seq + 1) * CHUNK_DATA);
    const datagram = Buffer.allocUnsafe(CHUNK_HEADER + data.length);
    datagram[0] = 0x1e;
    datagram[1] = 0x0f;
    id.copy(datagram, 2);
    datagram[10] = seq;
    datagram[11] = count;
    data.copy(datagram, CHUNK_HEADER);
    chunks.push(datagram);
  }
  return chunks;
}

const shortened = new RateLimitedWarning('gelf: shortened messages longer than 128 UDP chunks');

/**
 * One line's UDP payload (compressed): whole when it fits 128 chunks, else the line cut (at
 * a UTF-8 boundary) until it does, with `_logship_truncated` giving its length in bytes.
 * Null when even an empty line does not fit (attributes weighing more than 180 KB).
 */
export function udpPayload(encoder: GelfEncoder, line: OutgoingLine, config: GelfConfig): { payload: Buffer; truncated: boolean } | null {
  let payload = compress(encoder.encode(line), config.compression, config.compressionLevel);
  if (payload.length <= MAX_UDP_MESSAGE) return { payload, truncated: false };
  let keep = line.line.length;
  for (;;) {
    // Proportionally shorter, with a margin for compression not being linear.
    keep = Math.min(keep - 1, Math.floor((keep * MAX_UDP_MESSAGE * 0.95) / payload.length));
    if (keep < 0) return null;
    const text = keep === 0 ? Buffer.alloc(0) : utf8Pieces(line.line, keep)[0]!;
    payload = compress(encoder.encode(line, text, line.line.length), config.compression, config.compressionLevel);
    if (payload.length <= MAX_UDP_MESSAGE) {
      shortened.warn({ bytes: line.line.length, kept: text.length });
      return { payload, truncated: true };
    }
    if (keep === 0) return null;
  }
}

/**
 * UDP through transport/datagram.ts, with two things of GELF's own: a connection made again
 * every minute (and after a failure), so that the address is resolved again (Docker resolves
 * it once, at `docker run`), and the datagrams sent a window at a time, the next after a turn
 * of the event loop: 128 chunks of one message and the lines after it are otherwise one
 * burst that overflows a receiver's socket buffer (about 208 KB by default), and UDP drops
 * what does not fit without a word.
 */
class GelfUdp {
  private static readonly REFRESH_MS = 60_000;
  private static readonly WINDOW = 16;
  private readonly host: string;
  private readonly port: number;
  private connection: UdpConnection | null = null;
  private madeAt = 0;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  /** Sends each message's datagrams; resolves to the messages of which a datagram failed, and the first error. */
  async send(messages: readonly Buffer[][], signal: AbortSignal): Promise<{ failed: number[]; error: Error | null }> {
    if (this.connection && Date.now() - this.madeAt > GelfUdp.REFRESH_MS) this.close();
    if (!this.connection) {
      this.connection = new UdpConnection(this.host, this.port);
      this.madeAt = Date.now();
    }
    const connection = this.connection;
    const owner: number[] = [];
    const datagrams: Buffer[] = [];
    messages.forEach((chunks, i) => {
      for (const chunk of chunks) {
        owner.push(i);
        datagrams.push(chunk);
      }
    });
    const failed = new Set<number>();
    let error: Error | null = null;
    for (let from = 0; from < datagrams.length; from += GelfUdp.WINDOW) {
      if (from > 0) await new Promise((resolve) => setImmediate(resolve));
      const window = datagrams.slice(from, from + GelfUdp.WINDOW);
      try {
        const sent = await connection.send(window, signal);
        for (const k of sent.failed) failed.add(owner[from + k]!);
        error ??= sent.error;
      } catch (err) {
        if (signal.aborted) throw err;
        for (let k = 0; k < window.length; k++) failed.add(owner[from + k]!);
        error ??= err as Error;
      }
    }
    if (error) this.close();
    return { failed: [...failed].sort((a, b) => a - b), error };
  }

  close(): void {
    this.connection?.close();
    this.connection = null;
  }
}

/**
 * GELF over TCP has no acknowledgement: what a server that closes had not read yet goes
 * again on the next connection (a second of batches, at most one batch's bytes), as syslog's.
 */
const REPLAY: ReplayWindow = { ms: 1000, maxBytes: 4 << 20 };

class GelfBackend implements Backend {
  private readonly config: GelfConfig;
  private readonly encoder: GelfEncoder;
  private readonly udp: GelfUdp | null;
  private readonly stream: StreamConnection | null;

  constructor(config: GelfConfig, container: ContainerContext) {
    this.config = config;
    this.encoder = new GelfEncoder(container);
    const target = config.target;
    this.udp = target.kind === 'udp' ? new GelfUdp(target.host, target.port) : null;
    this.stream = target.kind === 'udp' ? null : new StreamConnection(target, undefined, REPLAY);
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    const lineOf: number[] = [];
    // Docker's driver drops empty lines.
    const sent = lines.filter((line, i) => line.line.length > 0 && lineOf.push(i) > 0);
    if (sent.length === 0) return DELIVERED;
    return resultInLines(this.stream ? await this.sendStream(sent, this.stream, signal) : await this.sendUdp(sent, this.udp!, signal), lineOf);
  }

  /** TCP has no acknowledgement: a batch is done once the kernel took it, and goes again whole after a failure. */
  private async sendStream(lines: readonly OutgoingLine[], stream: StreamConnection, signal: AbortSignal): Promise<SendResult> {
    await stream.write([this.encoder.frames(lines)], signal);
    return DELIVERED;
  }

  private async sendUdp(lines: readonly OutgoingLine[], udp: GelfUdp, signal: AbortSignal): Promise<SendResult> {
    const messages: Buffer[][] = [];
    const sentIndex: number[] = [];
    const truncated: number[] = [];
    const rejected: Rejection[] = [];
    const id = Buffer.allocUnsafe(8 * lines.length);
    randomFillSync(id);
    lines.forEach((line, i) => {
      const out = udpPayload(this.encoder, line, this.config);
      if (out === null) {
        rejected.push({ index: i, code: 'too_large', reason: `its GELF message does not fit ${MAX_CHUNKS} UDP chunks even without the line` });
        return;
      }
      if (out.truncated) truncated.push(i);
      messages.push(chunk(out.payload, id.subarray(8 * i, 8 * i + 8)));
      sentIndex.push(i);
    });
    const { failed, error } = messages.length > 0 ? await udp.send(messages, signal) : { failed: [], error: null };
    // Each message goes on its own: only those with a datagram the socket refused go again.
    if (failed.length === messages.length && messages.length > 0) throw transientError(error);
    const again = failed.map((k) => sentIndex[k]!);
    const againSet = new Set(again);
    const result: { -readonly [K in keyof SendResult]: SendResult[K] } = {};
    if (rejected.length > 0) result.rejected = rejected;
    const cut = truncated.filter((i) => !againSet.has(i));
    if (cut.length > 0) result.truncated = cut;
    if (again.length > 0) result.retry = { lines: again, reason: String(error?.message) };
    return result;
  }

  async close(): Promise<void> {
    this.udp?.close();
    this.stream?.close();
  }
}

/** Retries after `gelf-tcp-reconnect-delay`, doubling `gelf-tcp-max-reconnect` times, then steady: never giving up. */
export function gelfRetryPolicy(config: GelfConfig): RetryPolicy {
  const initialDelayMs = Math.max(config.reconnectDelayMs, 100);
  return { initialDelayMs, maxDelayMs: Math.max(initialDelayMs, Math.min(initialDelayMs * 2 ** Math.min(config.maxReconnect, 20), 60_000)) };
}

export const gelfFactory: BackendFactory<GelfConfig, typeof GELF_OPTIONS> = {
  name: 'gelf',
  options: GELF_OPTIONS,
  configure: configureGelf,
  batchLimits(config: GelfConfig): BatchLimits {
    return config.target.kind === 'udp' ? { maxLines: 1000, maxBytes: 1 << 20 } : { maxLines: 5000, maxBytes: 4 << 20 };
  },
  retryPolicy: gelfRetryPolicy,
  create(config: GelfConfig, container: ContainerContext): Backend {
    return new GelfBackend(config, container);
  },
};
