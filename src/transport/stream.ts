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
 * One stream to the receiver, dialled on first use and again after any failure. `onData`
 * sees what the receiver sends back (fluentd's acks); the current socket closing rejects
 * whatever waits on it through `closed`.
 */
export class StreamConnection {
  private readonly target: StreamTarget;
  private readonly onData: ((chunk: Buffer) => void) | undefined;
  private current: net.Socket | null = null;

  constructor(target: StreamTarget, onData?: (chunk: Buffer) => void) {
    this.target = target;
    this.onData = onData;
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

  private async writeOnce(chunks: readonly Buffer[], signal: AbortSignal): Promise<net.Socket> {
    const socket = await this.socket(signal);
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
    return socket;
  }

  close(): void {
    this.current?.destroy();
    this.current = null;
  }

  private async socket(signal: AbortSignal): Promise<net.Socket> {
    const open = this.current;
    // A receiver that closed its end (a restart) is dialled again before writing, so the
    // batch does not go into a socket whose peer is gone.
    if (open && !open.destroyed && !open.readableEnded) return open;
    open?.destroy();
    this.current = null;
    signal.throwIfAborted();
    const socket = await connect(this.target, signal);
    socket.on('error', () => socket.destroy()); // reported through 'close' to the waiters
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      if (this.current === socket) this.current = null;
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
