// One byte stream to a receiver (tcp, tls, unix), dialled on first use and again after any
// failure. It neither buffers nor retries: a failed write destroys the socket and throws a
// transient SendError, the engine retries later, and the next write dials again.
import net from 'node:net';
import tls from 'node:tls';
import { abortError, transientError } from '../delivery/backend.ts';

export type StreamTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'tls'; host: string; port: number; tls: tls.ConnectionOptions }
  | { kind: 'unix'; path: string };

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
