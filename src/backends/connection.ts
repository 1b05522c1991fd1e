// What the backends share: parsing `scheme://host:port` / `unix:///path` addresses and
// showing them in errors, reading TLS material named by log-opts, the errors of an aborted
// or failed send, a result told in another numbering, one lazily (re)connected byte stream
// (syslog, fluentd) and a unix datagram socket (syslog, journald).
// Neither buffers or retries on its own: a failed write destroys the socket and throws,
// the engine retries later, and the next write dials again.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { type SendResult, SendError } from '../delivery/backend.ts';
import { InvalidOptionError } from '../lifecycle/options.ts';

export type StreamTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'tls'; host: string; port: number; tls: tls.ConnectionOptions }
  | { kind: 'unix'; path: string };

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Splits `host[:port]` (IPv6 in brackets) as Go's net.SplitHostPort does, with the default
 * port when none is given. Returns null when it is malformed.
 */
export function parseHostPort(hostPort: string, defaultPort: number): HostPort | null {
  const match = /^(?:\[([^\]]*)\]|([^:/[\]]*))(?::(\d{1,5}))?$/.exec(hostPort);
  if (!match) return null;
  const host = match[1] ?? match[2] ?? '';
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { host, port };
}

/**
 * An address log-opt's value as an error message shows it: quoted, unless it has an @ and
 * so may hold `user:password@`.
 */
export function shownAddress(value: string): string {
  return value.includes('@') ? '(not shown: it has an @)' : `'${value}'`;
}

/**
 * The TLS client options from log-opts naming a CA, a client certificate and its key (PEM
 * files), and skip-verify. Files are read now, so a missing one fails `docker run` clearly.
 */
export function tlsOptions(
  opts: Readonly<Record<string, string>>,
  keys: { ca: string; cert: string; key: string },
  skipVerify: boolean,
  servername: string,
): tls.ConnectionOptions {
  const read = (key: string): Buffer | undefined => {
    const file = opts[key];
    if (file === undefined || file === '') return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new InvalidOptionError(`cannot read the file of log opt '${key}' (${file}): ${(err as Error).message}`);
    }
  };
  const ca = read(keys.ca);
  const cert = read(keys.cert);
  const privateKey = read(keys.key);
  if ((cert === undefined) !== (privateKey === undefined)) {
    throw new InvalidOptionError(`log opts '${keys.cert}' and '${keys.key}' must be given together`);
  }
  const options: tls.ConnectionOptions = { rejectUnauthorized: !skipVerify };
  if (ca !== undefined) options.ca = ca;
  if (cert !== undefined && privateKey !== undefined) {
    options.cert = cert;
    options.key = privateKey;
  }
  // SNI takes a name, never an IP address.
  if (servername !== '' && net.isIP(servername) === 0) options.servername = servername;
  return options;
}

export function describeTarget(target: StreamTarget): string {
  return target.kind === 'unix' ? `unix://${target.path}` : `${target.kind}://${target.host}:${target.port}`;
}

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Without acknowledgements, a batch counts as delivered once the kernel took it. A receiver
 * that then closes (a restart, a crash) discards what it had not read yet, and Linux answers
 * data that reaches a closed socket with a reset, so the last batches before a lost
 * connection may be gone though their sends succeeded. Those written within `ms` before the
 * loss (at most `maxBytes`, the newest kept) are written again, first, on the next
 * connection: a receiver's restart costs duplicates, not lines.
 */
export interface ReplayWindow {
  ms: number;
  maxBytes: number;
}

interface WrittenBatch {
  at: number;
  chunks: readonly Buffer[];
  bytes: number;
}

/** What a send aborted by the engine (shutdown, its send deadline) fails with: transient, saying why. */
export function abortError(signal: AbortSignal): SendError {
  const reason: unknown = signal.reason;
  return new SendError(reason instanceof Error ? reason.message : 'aborted', { transient: true, cause: reason });
}

/** `err` as a transient SendError: the receiver or the way to it failed, not the batch. */
export function transientError(err: unknown): SendError {
  if (err instanceof SendError && err.transient) return err;
  return new SendError(err instanceof Error ? err.message : String(err), { transient: true, cause: err });
}

/**
 * A result whose indexes count something else (datagrams, events, entries) told in lines:
 * `lineOf[i]` is the line of item i. A line named more than once is named once; one both
 * retried and delivered goes again whole.
 */
export function resultInLines(result: SendResult, lineOf: readonly number[]): SendResult {
  const out: { -readonly [K in keyof SendResult]: SendResult[K] } = {};
  const lines = (items: readonly number[]): number[] => [...new Set(items.map((i) => lineOf[i]!))].sort((a, b) => a - b);
  if (result.rejected) {
    const seen = new Set<number>();
    out.rejected = result.rejected.flatMap((r) => {
      const index = lineOf[r.index]!;
      if (seen.has(index)) return [];
      seen.add(index);
      return [{ ...r, index }];
    });
  }
  if (result.retry) out.retry = { ...result.retry, ...(result.retry.lines ? { lines: lines(result.retry.lines) } : {}) };
  if (result.truncated) out.truncated = lines(result.truncated);
  return out;
}

/** The indexes from `from` to `to` (excluded): the lines of a batch from one on. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/**
 * Seconds or an HTTP date, as a Retry-After header gives them, in milliseconds from `now`;
 * undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * One stream to the receiver, dialled on first use and again after any failure. `onData`
 * sees what the receiver sends back (fluentd's acks); the current socket closing rejects
 * whatever waits on it through `closed`.
 */
export class StreamConnection {
  private readonly target: StreamTarget;
  private readonly onData: ((chunk: Buffer) => void) | undefined;
  private readonly replay: ReplayWindow | null;
  private current: net.Socket | null = null;
  /** What the current socket took within the replay window, oldest first. */
  private recent: WrittenBatch[] = [];
  /** What a lost connection may have dropped: written first on the next one. */
  private unconfirmed: Buffer[] = [];
  private forget: NodeJS.Timeout | null = null;

  /**
   * `replay`: for a protocol without acknowledgements (syslog), the batches written within
   * this window before a connection is lost go again on the next one (see ReplayWindow).
   */
  constructor(target: StreamTarget, onData?: (chunk: Buffer) => void, replay?: ReplayWindow) {
    this.target = target;
    this.onData = onData;
    this.replay = replay ?? null;
  }

  /**
   * Writes the buffers in order; resolves once the kernel has taken them all. Every failure
   * is transient: a stream refuses no line of its own, only the connection fails.
   */
  async write(chunks: readonly Buffer[], signal: AbortSignal): Promise<net.Socket> {
    try {
      return await this.writeOnce(chunks, signal);
    } catch (err) {
      throw transientError(err);
    }
  }

  private async writeOnce(batch: readonly Buffer[], signal: AbortSignal): Promise<net.Socket> {
    const socket = await this.socket(signal);
    const replayed = this.unconfirmed;
    const chunks = replayed.length === 0 ? batch : [...replayed, ...batch];
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const onClose = (): void => fail(new Error(`connection to ${describeTarget(this.target)} closed`));
      const onAbort = (): void => fail(abortError(signal));
      const cleanup = (): void => {
        socket.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
      };
      socket.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.cork();
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]!);
      socket.write(chunks[chunks.length - 1] ?? Buffer.alloc(0), (err) => {
        cleanup();
        if (err) fail(err);
        else resolve();
      });
      socket.uncork();
    });
    if (this.replay) {
      if (replayed.length > 0) this.unconfirmed = [];
      this.remember(chunks);
    }
    return socket;
  }

  close(): void {
    const socket = this.current;
    this.current = null;
    this.recent = [];
    if (this.forget) clearTimeout(this.forget);
    this.forget = null;
    socket?.destroy();
  }

  private remember(batch: readonly Buffer[]): void {
    const window = this.replay!;
    // An idle connection lets go of its last batches once they are out of the window.
    if (this.forget) this.forget.refresh();
    else this.forget = setTimeout(() => (this.recent = []), window.ms).unref();
    let bytes = 0;
    for (const chunk of batch) bytes += chunk.length;
    const now = performance.now();
    this.recent.push({ at: now, chunks: batch, bytes });
    let kept = 0;
    for (const b of this.recent) kept += b.bytes;
    while (this.recent.length > 1 && (this.recent[0]!.at < now - window.ms || kept > window.maxBytes)) {
      kept -= this.recent.shift()!.bytes;
    }
  }

  /** The socket went away without close(): what it took lately may not have been read. */
  private lost(): void {
    if (!this.replay || this.recent.length === 0) return;
    const since = performance.now() - this.replay.ms;
    const unread = this.recent.filter((b) => b.at >= since).flatMap((b) => b.chunks);
    this.recent = [];
    // Older than what is pending already: a replay that failed itself stays first.
    this.unconfirmed = [...this.unconfirmed, ...unread];
  }

  private async socket(signal: AbortSignal): Promise<net.Socket> {
    const open = this.current;
    // A receiver that closed its end (a restart) is dialled again before writing, so the
    // batch does not go into a socket whose peer is gone.
    if (open && !open.destroyed && !open.readableEnded) return open;
    if (open) {
      this.current = null;
      open.destroy();
      this.lost();
    }
    signal.throwIfAborted();
    const socket = await connect(this.target, signal);
    socket.on('error', () => socket.destroy()); // reported through 'close' to the waiters
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      if (this.current !== socket) return;
      this.current = null;
      this.lost();
    });
    if (this.onData) socket.on('data', this.onData);
    else socket.resume();
    this.current = socket;
    return socket;
  }
}

function connect(target: StreamTarget, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const ready = target.kind === 'tls' ? 'secureConnect' : 'connect';
    if (target.kind === 'tls') socket = tls.connect({ ...target.tls, host: target.host, port: target.port });
    else if (target.kind === 'tcp') socket = net.connect({ host: target.host, port: target.port });
    else socket = net.connect({ path: target.path });
    const timer = setTimeout(() => fail(new Error(`connecting to ${describeTarget(target)} timed out`)), CONNECT_TIMEOUT_MS);
    const fail = (err: Error): void => {
      done();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => fail(err);
    const onAbort = (): void => fail(abortError(signal));
    const done = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off(ready, onReady);
      signal.removeEventListener('abort', onAbort);
    };
    const onReady = (): void => {
      done();
      if (target.kind !== 'unix') socket.setNoDelay(true).setKeepAlive(true, 30_000);
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once(ready, onReady);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

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
