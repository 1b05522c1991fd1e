// Datagrams: an AF_UNIX SOCK_DGRAM socket (journald, syslog's unixgram; the unix-dgram addon,
// since Node has none) and a connected UDP socket (syslog's udp). A datagram has no
// acknowledgement: what the kernel took is gone, so a failure says which datagrams it took.
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import os from 'node:os';
import { SendError, abortError, transientError } from '../delivery/backend.ts';

interface UnixDgramSocket {
  connect(path: string): void;
  send(buf: Buffer, callback: (err?: Error & { code?: number | string }) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
  once(event: 'writable', listener: () => void): void;
  off(event: 'writable', listener: () => void): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

// Loaded on first use: the native addon is needed only by journald and syslog over unixgram,
// and if it cannot load, those sends fail (and are retried) while everything else works.
let unixDgram: UnixDgramModule | null = null;
function loadUnixDgram(): UnixDgramModule {
  unixDgram ??= createRequire(import.meta.url)('unix-dgram') as UnixDgramModule;
  return unixDgram;
}

/**
 * A datagram the socket did not take: `sent` datagrams before it were. EMSGSIZE (longer than
 * the socket's send buffer, about 208 KiB by default) is the datagram's own fault; any other
 * error is the receiver's (gone, not reading) and transient.
 */
export class DatagramError extends SendError {
  readonly sent: number;
  readonly tooLarge: boolean;

  constructor(message: string, sent: number, tooLarge: boolean, cause?: unknown) {
    super(message, { transient: !tooLarge, ...(tooLarge ? { rejectCode: 'too_large' as const } : {}), cause });
    this.sent = sent;
    this.tooLarge = tooLarge;
  }
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/**
 * An AF_UNIX SOCK_DGRAM socket connected to one path (Node has none of its own). A datagram
 * the kernel cannot queue yet (the receiver is slow) is sent again once the socket is writable.
 */
export class UnixDatagramConnection {
  private readonly path: string;
  private socket: UnixDgramSocket | null = null;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Sends each datagram in order, going on past one the socket refuses as too long: `tooLong`
   * gives a shorter one to try in its place, or null to give it up. Any other failure means
   * the receiver went away, and the datagrams the kernel had queued for it are lost with it
   * (a datagram socket has no acknowledgement): the whole batch must go again. It throws
   * then, unless datagrams were given up: then it resolves with `stopped` at 0, so that the
   * caller sends everything again but those. Resolves to the datagrams given up, with why.
   */
  async sendAll(
    datagrams: readonly Buffer[],
    signal: AbortSignal,
    tooLong: (index: number, datagram: Buffer) => Buffer | null,
  ): Promise<{ givenUp: Array<{ index: number; reason: string }>; stopped: { at: number; reason: string } | null }> {
    const queue = [...datagrams];
    const givenUp: Array<{ index: number; reason: string }> = [];
    for (let from = 0; from < queue.length; ) {
      try {
        await this.send(from === 0 ? queue : queue.slice(from), signal);
        break;
      } catch (err) {
        if (!(err instanceof DatagramError)) throw err;
        const at = from + err.sent;
        if (!err.tooLarge) {
          if (givenUp.length === 0) throw err;
          return { givenUp, stopped: { at: 0, reason: err.message } };
        }
        const shorter = tooLong(at, queue[at]!);
        if (shorter === null) givenUp.push({ index: at, reason: err.message });
        else queue[at] = shorter;
        from = shorter === null ? at + 1 : at;
      }
    }
    return { givenUp, stopped: null };
  }

  /** Sends each datagram in order; throws a DatagramError at the first the socket does not take. */
  async send(datagrams: readonly Buffer[], signal: AbortSignal): Promise<void> {
    let socket: UnixDgramSocket;
    try {
      socket = this.connected();
    } catch (err) {
      throw new DatagramError((err as Error).message, 0, false, err);
    }
    let i = 0;
    try {
      while (i < datagrams.length) {
        if (trySend(socket, datagrams[i]!)) i++;
        else await writable(socket, signal);
      }
    } catch (err) {
      const code = errnoName(err);
      if (code === 'EMSGSIZE') throw new DatagramError(`unixgram://${this.path}: a ${datagrams[i]!.length}-byte datagram is longer than the socket takes (EMSGSIZE)`, i, true, err);
      this.close();
      throw new DatagramError(`sending to unixgram://${this.path} failed: ${code ?? (err as Error).message}`, i, false, err);
    }
  }

  close(): void {
    const socket = this.socket;
    this.socket = null;
    try {
      socket?.close();
    } catch {
      /* already closed */
    }
  }

  private connected(): UnixDgramSocket {
    if (this.socket) return this.socket;
    const socket = loadUnixDgram().createSocket('unix_dgram');
    let failure: Error | null = null;
    socket.on('error', (err) => (failure = err));
    socket.connect(this.path); // synchronous: reports through 'error' before returning
    if (failure) {
      socket.close();
      const code = errnoName(failure);
      throw new Error(`cannot connect to unixgram://${this.path}: ${code ?? (failure as Error).message}`);
    }
    this.socket = socket;
    return socket;
  }
}

/** unix-dgram reports the negative errno as `code`; its name (EMSGSIZE, ECONNREFUSED), if known. */
function errnoName(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return typeof code === 'number' ? ERRNO_NAMES.get(-code) : undefined;
}

/** True once sent, false when the socket is congested; throws what the kernel refused. */
function trySend(socket: UnixDgramSocket, datagram: Buffer): boolean {
  let outcome: Error | null | undefined;
  // unix-dgram calls back synchronously, before send returns.
  socket.send(datagram, (err) => (outcome = err ?? null));
  if (outcome === null) return true;
  if (outcome === undefined) throw new Error('unix-dgram did not report the outcome of a send');
  if (outcome.message === 'congestion') return false;
  throw outcome;
}

function writable(socket: UnixDgramSocket, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onWritable = (): void => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = (): void => {
      socket.off('writable', onWritable);
      reject(abortError(signal));
    };
    socket.once('writable', onWritable);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The largest UDP payload over IPv4. */
export const MAX_UDP_PAYLOAD = 65_507;

/**
 * A connected UDP socket, so an ICMP port-unreachable fails the next send instead of
 * vanishing. Datagrams go on their own: each send says which the socket refused.
 */
export class UdpConnection {
  private readonly host: string;
  private readonly port: number;
  private socket: Promise<dgram.Socket> | null = null;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  /**
   * Sends every datagram (the caller keeps each within MAX_UDP_PAYLOAD); resolves to the
   * indexes the socket refused, ascending, and the first error. Throws a transient
   * SendError when the socket cannot be had or refused them all.
   */
  async send(datagrams: readonly Buffer[], signal: AbortSignal): Promise<{ failed: number[]; error: Error | null }> {
    if (signal.aborted) throw abortError(signal);
    let socket: dgram.Socket;
    try {
      socket = await this.connected();
    } catch (err) {
      throw transientError(err);
    }
    const failed: number[] = [];
    let error: Error | null = null;
    await new Promise<void>((resolve) => {
      let pending = datagrams.length;
      if (pending === 0) resolve();
      datagrams.forEach((datagram, i) => {
        socket.send(datagram, (err) => {
          if (err) {
            error ??= err;
            failed.push(i);
          }
          if (--pending === 0) resolve();
        });
      });
    });
    if (error) this.close();
    if (datagrams.length > 0 && failed.length === datagrams.length) throw transientError(error);
    return { failed: failed.sort((a, b) => a - b), error };
  }

  close(): void {
    const socket = this.socket;
    this.socket = null;
    void socket?.then((s) => s.close(), () => {});
  }

  private connected(): Promise<dgram.Socket> {
    this.socket ??= new Promise((resolve, reject) => {
      const socket = dgram.createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
      socket.on('error', () => {}); // each send reports its own error
      socket.connect(this.port, this.host, (err?: Error) => {
        if (err) {
          socket.close();
          this.socket = null;
          reject(err);
        } else resolve(socket);
      });
    });
    return this.socket;
  }
}
