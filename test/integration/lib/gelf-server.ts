// A GELF server on loopback for the backend tests (no Graylog here, backends.md §1): UDP
// datagrams decompressed by their magic (gzip 1f 8b, zlib 78, or plain JSON) and chunked
// messages put together (magic 1e 0f, 8-byte id, sequence, count, at most 128 chunks, as
// Graylog's input takes them), and TCP or TLS streams of NUL-terminated JSON, on one port.
// What Graylog would refuse (a chunk sequence out of range, more than 128 chunks, a message
// that is not a GELF 1.1 object with host and short_message) is recorded as a violation.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';

export interface GelfMessage {
  version: string;
  host: string;
  short_message: string;
  timestamp: number;
  level: number;
  [field: `_${string}`]: unknown;
}

export interface Received {
  transport: 'udp' | 'tcp' | 'tls';
  /** Datagrams it came in (UDP), 1 when not chunked. */
  chunks: number;
  compression: 'gzip' | 'zlib' | 'none';
  message: GelfMessage;
}

export class GelfServer {
  readonly received: Received[] = [];
  readonly violations: string[] = [];
  /**
   * Connections that closed inside a frame: the sender died mid-write (a plugin killed with
   * part of a frame in the kernel) or this server stopped. Graylog drops such a tail; what
   * the sender does next (send the line again) is for the test to check, not a violation.
   */
  cutAtClose = 0;
  readonly port: number;
  private readonly tlsFiles: { cert: string; key: string } | undefined;
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private tls: tls.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly partials = new Map<string, { count: number; parts: Map<number, Buffer> }>();

  /** UDP and TCP on `port`, TLS on `port + 1` when given a certificate. */
  constructor(port: number, tlsFiles?: { cert: string; key: string }) {
    this.port = port;
    this.tlsFiles = tlsFiles;
  }

  get tlsPort(): number {
    return this.port + 1;
  }

  async start(): Promise<void> {
    const udp = dgram.createSocket('udp4');
    udp.on('message', (datagram) => this.datagram(datagram));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.port, '127.0.0.1', () => resolve());
    });
    this.udp = udp;
    this.tcp = net.createServer((socket) => this.stream(socket, 'tcp'));
    await listen(this.tcp, this.port);
    if (this.tlsFiles) {
      this.tls = tls.createServer({ cert: fs.readFileSync(this.tlsFiles.cert), key: fs.readFileSync(this.tlsFiles.key) }, (socket) => this.stream(socket, 'tls'));
      await listen(this.tls, this.tlsPort);
    }
  }

  /** Closes every port and connection (what it received stays). */
  async stop(): Promise<void> {
    const udp = this.udp;
    this.udp = null;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    for (const server of [this.tcp, this.tls]) if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.tcp = null;
    this.tls = null;
  }

  messages(filter: (m: GelfMessage) => boolean = () => true): GelfMessage[] {
    return this.received.map((r) => r.message).filter(filter);
  }

  private stream(socket: net.Socket, transport: 'tcp' | 'tls'): void {
    this.sockets.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
      for (let end = pending.indexOf(0); end !== -1; end = pending.indexOf(0)) {
        this.message(pending.subarray(0, end), transport, 1, 'none');
        pending = pending.subarray(end + 1);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (pending.length > 0) this.cutAtClose++;
      this.sockets.delete(socket);
    });
  }

  private datagram(datagram: Buffer): void {
    if (datagram[0] !== 0x1e || datagram[1] !== 0x0f) return this.payload(datagram, 1);
    const id = datagram.toString('hex', 2, 10);
    const seq = datagram[10]!;
    const count = datagram[11]!;
    if (count === 0 || count > 128 || seq >= count) {
      this.violations.push(`chunk ${seq} of ${count}: out of range`);
      return;
    }
    const entry = this.partials.get(id) ?? { count, parts: new Map<number, Buffer>() };
    this.partials.set(id, entry);
    if (entry.count !== count) this.violations.push(`message ${id}: chunks say ${entry.count} and ${count} in all`);
    entry.parts.set(seq, Buffer.from(datagram.subarray(12)));
    if (entry.parts.size < count) return;
    this.partials.delete(id);
    this.payload(Buffer.concat(Array.from({ length: count }, (_, i) => entry.parts.get(i)!)), count);
  }

  private payload(payload: Buffer, chunks: number): void {
    try {
      if (payload[0] === 0x1f && payload[1] === 0x8b) this.message(zlib.gunzipSync(payload), 'udp', chunks, 'gzip');
      else if (payload[0] === 0x78) this.message(zlib.inflateSync(payload), 'udp', chunks, 'zlib');
      else this.message(payload, 'udp', chunks, 'none');
    } catch (err) {
      this.violations.push(`udp: cannot decompress a message: ${(err as Error).message}`);
    }
  }

  private message(json: Buffer, transport: Received['transport'], chunks: number, compression: Received['compression']): void {
    let message: GelfMessage;
    try {
      message = JSON.parse(json.toString('utf8')) as GelfMessage;
    } catch {
      this.violations.push(`${transport}: a message that is not JSON`);
      return;
    }
    if (message.version !== '1.1' || typeof message.host !== 'string' || typeof message.short_message !== 'string' || message.short_message === '') {
      this.violations.push(`${transport}: not a GELF 1.1 message with host and short_message`);
    }
    for (const [key, value] of Object.entries(message)) {
      if (key.startsWith('_') && typeof value !== 'string' && typeof value !== 'number') this.violations.push(`${key}: GELF fields are strings or numbers`);
    }
    this.received.push({ transport, chunks, compression, message });
  }
}

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}
