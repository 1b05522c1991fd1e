// syslog, as Docker's syslog driver writes it (moby daemon/logger/syslog): the same four
// formats, priorities, framing and `syslog-*` options, over udp, tcp, tcp+tls, unix and
// unixgram. One difference on purpose: the header's time is the line's time, not the
// send time, because logship may deliver a line long after it was written.
import { InvalidOptionError } from '../options/values.ts';
import { defineOptions, type OptionValues } from '../options/schema.ts';
import { RateLimitedWarning } from '../observability/log.ts';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type SendResult } from '../delivery/backend.ts';
import { type ContainerContext } from '../shaping/container.ts';
import { type OutgoingLine } from '../shaping/line.ts';
import { parseHostPort, splitScheme } from '../transport/address.ts';
import { MAX_UDP_PAYLOAD, UdpConnection, UnixDatagramConnection } from '../transport/datagram.ts';
import { range, resultInLines } from '../transport/requests.ts';
import { type ReplayWindow, StreamConnection, type StreamTarget } from '../transport/stream.ts';
import { tlsFileOptions, tlsOptions } from '../transport/tls.ts';

export type SyslogFormat = '' | 'rfc3164' | 'rfc5424' | 'rfc5424micro';

export type SyslogTarget =
  | StreamTarget
  | { kind: 'udp'; host: string; port: number }
  | { kind: 'unixgram'; path: string };

export interface SyslogConfig {
  target: SyslogTarget;
  /** The facility code shifted into place (facility × 8). */
  facility: number;
  format: SyslogFormat;
  /** RFC 5425 octet counting: Docker uses it for rfc5424 formats over tcp+tls only. */
  octetCounting: boolean;
}

const FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
];
const FACILITY_CODES: Record<string, number> = Object.fromEntries(
  FACILITIES.map((name, i) => [name, name.startsWith('local') ? 16 + Number(name.slice(5)) : i]),
);

const FORMATS: readonly SyslogFormat[] = ['', 'rfc3164', 'rfc5424', 'rfc5424micro'];

/**
 * Docker's empty address is the local syslog socket, /dev/log. On a systemd host that is
 * journald's /run/systemd/journal/dev-log, which the plugin sees through its journal mount.
 */
export const LOCAL_SYSLOG_SOCKET = '/run/systemd/journal/dev-log';

const SEVERITY_INFO = 6;
const SEVERITY_ERR = 3;

// A message longer than the largest UDP payload is cut to fit, and so is one a unix
// datagram socket refuses as too long (over its send buffer, about 208 KiB by default).
export { MAX_UDP_PAYLOAD };
const datagramTruncation = new RateLimitedWarning('syslog: cut messages longer than one datagram takes');

const TLS_FILE = 'a PEM file, as the plugin sees it';

export const SYSLOG_OPTIONS = defineOptions([
  {
    key: 'syslog-address',
    type: 'string',
    accepts: '`udp://host[:port]`, `tcp://host[:port]`, `tcp+tls://host[:port]`, `unix:///path`, `unixgram:///path` (port 514)', defaultDoc: "the local syslog socket", doc: "`udp://host[:port]`, `tcp://host[:port]`, `tcp+tls://host[:port]` (port 514 by default), `unix:///path` or `unixgram:///path`. Empty is Docker's `/dev/log`, which on a systemd host is journald's `dev-log`: the plugin sees it as `/run/systemd/journal/dev-log` through its `journal` mount" },
  { key: 'syslog-facility', type: 'custom', accepts: 'a number 0-23 or a facility name (`user`, `local0`...)', parse: parseFacility, defaultDoc: "`daemon`", doc: "`kern user mail daemon auth syslog lpr news uucp cron authpriv ftp local0`…`local7`, or a number 0–23" },
  { key: 'syslog-format', type: 'custom', accepts: '`rfc3164`, `rfc5424` or `rfc5424micro`', parse: parseFormat, defaultDoc: "empty", doc: "empty: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`; `rfc3164` adds the host name; `rfc5424`: `<PRI>1 TIME HOST TAG PID TAG - MSG`; `rfc5424micro`: the same with microseconds" },
  { key: 'syslog-tls-ca-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "the system's CAs", doc: "PEM file of the CA that signs the server's certificate (`tcp+tls`)" },
  { key: 'syslog-tls-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "none", doc: "PEM client certificate and key, for servers that ask for one (both or neither)" },
  { key: 'syslog-tls-key', type: 'string', accepts: TLS_FILE, defaultDoc: "none", doc: "PEM client certificate and key, for servers that ask for one (both or neither)" },
  // Like Docker, its mere presence skips verification, whatever its value.
  { key: 'syslog-tls-skip-verify', type: 'custom', empty: 'value', accepts: 'present (any value) or absent', parse: () => true, defaultDoc: "absent", doc: "present (with **any** value, even `false`, as in Docker) skips verifying the server's certificate" },
]);

export function configureSyslog(values: OptionValues<typeof SYSLOG_OPTIONS>): SyslogConfig {
  const target = parseSyslogAddress(values['syslog-address'] ?? '', values);
  const format = values['syslog-format'] ?? '';
  return {
    target,
    facility: (values['syslog-facility'] ?? FACILITY_CODES.daemon!) << 3,
    format,
    octetCounting: target.kind === 'tls' && (format === 'rfc5424' || format === 'rfc5424micro'),
  };
}

function parseFormat(value: string): SyslogFormat {
  if (FORMATS.includes(value as SyslogFormat)) return value as SyslogFormat;
  throw new InvalidOptionError(
    `invalid value '${value}' for log opt 'syslog-format': expected rfc3164, rfc5424 or rfc5424micro (or empty for Docker's default)`,
  );
}

function parseSyslogAddress(address: string, values: OptionValues<typeof SYSLOG_OPTIONS>): SyslogTarget {
  if (address === '') return { kind: 'unixgram', path: LOCAL_SYSLOG_SOCKET };
  const invalid = (why: string): InvalidOptionError =>
    new InvalidOptionError(
      `invalid value '${address}' for log opt 'syslog-address': ${why}; expected udp://host[:port], tcp://host[:port], tcp+tls://host[:port], unix:///path or unixgram:///path`,
    );
  const split = splitScheme(address);
  if (!split) throw invalid('not in the form proto://address');
  const { scheme, rest } = split;
  if (scheme === 'unix' || scheme === 'unixgram') {
    if (!rest.startsWith('/')) throw invalid('the socket path must be absolute');
    return { kind: scheme, path: rest };
  }
  if (scheme !== 'udp' && scheme !== 'tcp' && scheme !== 'tcp+tls') throw invalid(`unknown protocol '${scheme}'`);
  const hostPort = parseHostPort(rest, 514);
  if (!hostPort || hostPort.host === '') throw invalid('bad host or port');
  // Like Docker, TLS options with another protocol are accepted and unused.
  if (scheme !== 'tcp+tls') return { kind: scheme, ...hostPort };
  // Like Docker, the mere presence of syslog-tls-skip-verify skips verification.
  const tls = tlsOptions({ ...tlsFileOptions('syslog-tls', values), skipVerify: values['syslog-tls-skip-verify'] ?? false, servername: hostPort.host });
  return { kind: 'tls', ...hostPort, tls };
}

function parseFacility(value: string): number {
  const named = FACILITY_CODES[value];
  if (named !== undefined) return named;
  if (/^\d+$/.test(value) && Number(value) <= 23) return Number(value);
  throw new InvalidOptionError(
    `invalid value '${value}' for log opt 'syslog-facility': expected a number 0-23 or one of ${FACILITIES.join(', ')}`,
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** Go's time.Stamp, `Jan _2 15:04:05`, in UTC. */
function stamp(date: Date): string {
  const day = date.getUTCDate();
  return `${MONTHS[date.getUTCMonth()]} ${day < 10 ? ' ' : ''}${day} ${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}:${pad2(date.getUTCSeconds())}`;
}

/** RFC 3339 in UTC; with micro, Go's `.999999` (trailing zeros dropped, no dot when none is left). */
function rfc3339(timeNano: bigint, date: Date, micro: boolean): string {
  const base = date.toISOString().slice(0, 19);
  if (!micro) return base + 'Z';
  const fraction = String((timeNano % 1_000_000_000n) / 1000n).padStart(6, '0').replace(/0+$/, '');
  return base + (fraction === '' ? '' : '.' + fraction) + 'Z';
}

/**
 * Builds one message's header (everything before the line) the way Docker's formatter
 * does; the line and the trailing newline follow it.
 */
export function syslogHeader(config: SyslogConfig, container: ContainerContext, pid: number, line: OutgoingLine): string {
  const pri = config.facility | (line.source === 'stderr' ? SEVERITY_ERR : SEVERITY_INFO);
  const date = new Date(Number(line.timeNano / 1_000_000n));
  const tag = container.tag;
  switch (config.format) {
    case '':
      return `<${pri}>${stamp(date)} ${tag}[${pid}]: `;
    case 'rfc3164':
      return `<${pri}>${stamp(date)} ${container.hostname} ${tag}[${pid}]: `;
    case 'rfc5424':
    case 'rfc5424micro':
      return `<${pri}>1 ${rfc3339(line.timeNano, date, config.format === 'rfc5424micro')} ${container.hostname} ${tag} ${pid} ${tag} - `;
  }
}

/** A batch's framed messages, one after another in one buffer; message i ends at `ends[i]`. */
export interface SyslogBatch {
  bytes: Buffer;
  ends: number[];
}

/**
 * A container's messages: header, line, `\n`, with the `LEN ` prefix when octet counting, a
 * batch's into one buffer. A stream's header is the same for every line within a second (a
 * microsecond in rfc5424micro), so it is made once for them: a header string, its Buffer and
 * a Buffer.concat per message were most of the CPU shipping short lines (bench/delivery-backends.ts, profiled).
 */
export class SyslogEncoder {
  private readonly config: SyslogConfig;
  private readonly container: ContainerContext;
  private readonly pid: number;
  private headersAt = NaN;
  private readonly headers: { stdout: Buffer | null; stderr: Buffer | null } = { stdout: null, stderr: null };

  constructor(config: SyslogConfig, container: ContainerContext, pid: number) {
    this.config = config;
    this.container = container;
    this.pid = pid;
  }

  private header(line: OutgoingLine): Buffer {
    const at = this.config.format === 'rfc5424micro' ? Number(line.timeNano / 1000n) : Math.floor(Number(line.timeNano / 1_000_000n) / 1000);
    if (at !== this.headersAt) {
      this.headersAt = at;
      this.headers.stdout = this.headers.stderr = null;
    }
    const source = line.source === 'stderr' ? 'stderr' : 'stdout';
    return (this.headers[source] ??= Buffer.from(syslogHeader(this.config, this.container, this.pid, line)));
  }

  encode(lines: readonly OutgoingLine[]): SyslogBatch {
    const headers = lines.map((line) => this.header(line));
    let total = 0;
    for (let i = 0; i < lines.length; i++) {
      const length = headers[i]!.length + lines[i]!.line.length + 1;
      total += length + (this.config.octetCounting ? String(length).length + 1 : 0);
    }
    const bytes = Buffer.allocUnsafe(total);
    const ends = new Array<number>(lines.length);
    let pos = 0;
    for (let i = 0; i < lines.length; i++) {
      const header = headers[i]!;
      const text = lines[i]!.line;
      if (this.config.octetCounting) pos += bytes.write(`${header.length + text.length + 1} `, pos, 'latin1');
      pos += header.copy(bytes, pos);
      pos += text.copy(bytes, pos);
      bytes[pos++] = 0x0a;
      ends[i] = pos;
    }
    return { bytes, ends };
  }
}

/** One framed message: header, line, `\n`, with the `LEN ` prefix when octet counting. */
export function encodeSyslogMessage(config: SyslogConfig, container: ContainerContext, pid: number, line: OutgoingLine): Buffer {
  return new SyslogEncoder(config, container, pid).encode([line]).bytes;
}

/** The batch's messages, each a view of its bytes (datagrams go one by one). */
function messagesOf(batch: SyslogBatch): Buffer[] {
  return batch.ends.map((end, i) => batch.bytes.subarray(i === 0 ? 0 : batch.ends[i - 1], end));
}

const NEWLINE = Buffer.from('\n');

/** A message cut to `max` bytes, still ending in the newline every message ends with. */
function cut(message: Buffer, max: number): Buffer {
  return Buffer.concat([message.subarray(0, max - 1), NEWLINE]);
}

/** Sends framed messages; the result's indexes are the messages'. */
interface Transport {
  send(batch: SyslogBatch, signal: AbortSignal): Promise<SendResult>;
  close(): void;
}

/**
 * What a receiver that closes may not have read yet: a second of batches, at most one batch's
 * worth of bytes (the stream batch limit below), which covers loopback's socket buffers.
 */
const REPLAY: ReplayWindow = { ms: 1000, maxBytes: 4 << 20 };

/** tcp, tls and unix streams: no receiver refuses a line, so a failure is the connection's and the batch goes again whole. */
class StreamTransport implements Transport {
  private readonly connection: StreamConnection;
  constructor(target: StreamTarget) {
    this.connection = new StreamConnection(target, undefined, REPLAY);
  }
  async send(batch: SyslogBatch, signal: AbortSignal): Promise<SendResult> {
    await this.connection.write([batch.bytes], signal);
    return DELIVERED;
  }
  close(): void {
    this.connection.close();
  }
}

/** udp: each datagram goes on its own, so only those the socket refused go again. */
class UdpTransport implements Transport {
  private readonly connection: UdpConnection;
  constructor(host: string, port: number) {
    this.connection = new UdpConnection(host, port);
  }

  async send(batch: SyslogBatch, signal: AbortSignal): Promise<SendResult> {
    const truncated: number[] = [];
    const datagrams = messagesOf(batch).map((message, i) => {
      if (message.length <= MAX_UDP_PAYLOAD) return message;
      datagramTruncation.warn({ transport: 'udp', bytes: message.length, max: MAX_UDP_PAYLOAD });
      truncated.push(i);
      return cut(message, MAX_UDP_PAYLOAD);
    });
    const { failed, error } = await this.connection.send(datagrams, signal);
    const result: { retry?: NonNullable<SendResult['retry']>; truncated?: number[] } = {};
    if (failed.length > 0) result.retry = { lines: failed, reason: String(error?.message) };
    if (truncated.length > 0) result.truncated = truncated.filter((i) => !failed.includes(i));
    return result;
  }

  close(): void {
    this.connection.close();
  }
}

/**
 * unixgram: a message the socket refuses as too long is cut to one UDP payload, as over udp,
 * and sent again; one refused even so is rejected. The datagrams the socket took are never
 * sent twice: after any other failure only the messages from the one refused on go again.
 */
class DatagramTransport implements Transport {
  private readonly connection: UnixDatagramConnection;
  constructor(path: string) {
    this.connection = new UnixDatagramConnection(path);
  }

  async send(batch: SyslogBatch, signal: AbortSignal): Promise<SendResult> {
    const messages = messagesOf(batch);
    const cuts = new Set<number>();
    const { givenUp, stopped } = await this.connection.sendAll(messages, signal, (i, datagram) => {
      if (datagram.length <= MAX_UDP_PAYLOAD) return null;
      datagramTruncation.warn({ transport: 'unixgram', bytes: datagram.length, max: MAX_UDP_PAYLOAD });
      cuts.add(i);
      return cut(datagram, MAX_UDP_PAYLOAD);
    });
    for (const { index } of givenUp) cuts.delete(index);
    const result: { -readonly [K in keyof SendResult]: SendResult[K] } = {
      truncated: [...cuts].filter((i) => stopped === null || i < stopped.at),
      rejected: givenUp.map(({ index, reason }) => ({ index, code: 'too_large', reason })),
    };
    if (stopped) {
      const given = new Set(givenUp.map((g) => g.index));
      result.retry = { lines: range(stopped.at, messages.length).filter((i) => !given.has(i)), reason: stopped.reason };
    }
    return result;
  }

  close(): void {
    this.connection.close();
  }
}

function transportFor(target: SyslogTarget): Transport {
  switch (target.kind) {
    case 'udp':
      return new UdpTransport(target.host, target.port);
    case 'unixgram':
      return new DatagramTransport(target.path);
    default:
      return new StreamTransport(target);
  }
}

class SyslogBackend implements Backend {
  private readonly encoder: SyslogEncoder;
  private readonly transport: Transport;

  constructor(config: SyslogConfig, container: ContainerContext) {
    this.encoder = new SyslogEncoder(config, container, process.pid);
    this.transport = transportFor(config.target);
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    const lineOf: number[] = [];
    // Docker's syslog driver drops empty lines.
    const sent = lines.filter((line, i) => line.line.length > 0 && lineOf.push(i) > 0);
    if (sent.length === 0) return DELIVERED;
    return resultInLines(await this.transport.send(this.encoder.encode(sent), signal), lineOf);
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}

export const syslogFactory: BackendFactory<SyslogConfig, typeof SYSLOG_OPTIONS> = {
  name: 'syslog',
  options: SYSLOG_OPTIONS,
  configure: configureSyslog,
  batchLimits(config: SyslogConfig): BatchLimits {
    // Datagrams go one by one anyway; streams take larger writes.
    const stream = config.target.kind === 'tcp' || config.target.kind === 'tls' || config.target.kind === 'unix';
    return stream ? { maxLines: 5000, maxBytes: 4 << 20 } : { maxLines: 1000, maxBytes: 1 << 20 };
  },
  create(config: SyslogConfig, container: ContainerContext): Backend {
    return new SyslogBackend(config, container);
  },
};
