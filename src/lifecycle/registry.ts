// The plugin's live state: one ContainerLog per FIFO (per StartLogging), one store per
// container shared by its loggers and readers. Stores outlive loggers: a stopped
// container's `docker logs` opens a new, empty FIFO and must find every line still there.
import path from 'node:path';
import { MAX_FRAME_BYTES } from '../fifo/deframer.ts';
import { RateLimitedWarning, log } from '../observability/log.ts';
import { ContainerStore } from '../store/container-store.ts';
import type { ReadRequest } from '../store/log-reader.ts';
import type { ContainerInfo } from '../protocol/wire.ts';
import { ContainerLog } from './container-log.ts';
import { DEFAULT_STORE_OPTIONS, type LogOptions } from './options.ts';

export class LoggingError extends Error {}

const dropWarning = new RateLimitedWarning('store: dropped lines that could not be written');

export class Registry {
  private readonly logs = new Map<string, ContainerLog>();
  private readonly stores = new Map<string, ContainerStore>();
  private readonly containersDir: string;
  private readonly fifoDir: string;

  constructor(dataDir: string, fifoDir: string) {
    this.containersDir = path.join(dataDir, 'containers');
    this.fifoDir = path.resolve(fifoDir);
  }

  /** Begins reading a FIFO into the container's store. Throws LoggingError for bad input. */
  start(fifoPath: string, info: ContainerInfo, options: LogOptions): void {
    const containerId = info.id;
    const fifo = this.checkFifoPath(fifoPath);
    if (this.logs.has(fifo)) throw new LoggingError(`already logging from ${fifo}`);
    const store = this.storeFor(containerId, options);
    let logger: ContainerLog;
    try {
      logger = new ContainerLog(fifo, containerId, store);
    } catch (err) {
      this.release(containerId);
      throw new LoggingError(`cannot open ${fifo}: ${(err as Error).message}`);
    }
    this.logs.set(fifo, logger);
    void logger.finished.then(() => {
      this.logs.delete(fifo);
      this.release(containerId);
    });
  }

  /**
   * The daemon closes its end of the FIFO only after this returns; the logger keeps
   * reading until EOF, so no line still in the pipe is lost.
   */
  stop(fifoPath: string): void {
    if (!this.logs.has(path.resolve(fifoPath))) log.debug('StopLogging for an unknown FIFO', { fifo: fifoPath });
  }

  async *read(containerId: string, req: ReadRequest, signal: AbortSignal): AsyncGenerator<Buffer[]> {
    const store = this.storeFor(containerId, null);
    try {
      yield* store.read(req, signal);
    } finally {
      this.release(containerId);
    }
  }

  /** Stops reading every FIFO (the data stays in the pipes) and closes every store. */
  async shutdown(): Promise<void> {
    for (const logger of this.logs.values()) logger.abort();
    await Promise.all([...this.logs.values()].map((l) => l.finished));
    await Promise.all([...this.stores.values()].map((s) => s.close()));
  }

  private checkFifoPath(fifoPath: string): string {
    const resolved = path.resolve(fifoPath);
    if (path.dirname(resolved) !== this.fifoDir) {
      throw new LoggingError(`FIFO path ${fifoPath} is outside ${this.fifoDir}`);
    }
    return resolved;
  }

  private storeFor(containerId: string, options: LogOptions | null): ContainerStore {
    let store = this.stores.get(containerId);
    if (!store) {
      const dir = path.join(this.containersDir, containerId);
      store = new ContainerStore(dir, options?.store ?? DEFAULT_STORE_OPTIONS, MAX_FRAME_BYTES, (lines, err) =>
        dropWarning.warn({ container: containerId, lines, error: String(err) }),
      );
      this.stores.set(containerId, store);
    } else if (options) {
      store.setOptions(options.store);
    }
    return store;
  }

  /** Closes and forgets a store nobody holds, unless someone takes it again meanwhile. */
  private release(containerId: string): void {
    const store = this.stores.get(containerId);
    if (!store?.idle) return;
    void store.close().then(() => {
      if (store.idle && this.stores.get(containerId) === store) this.stores.delete(containerId);
    });
  }
}
