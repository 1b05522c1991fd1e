// The plugin's live state: one ContainerLog per FIFO (per StartLogging), one store per
// container shared by its loggers, readers and delivery loops. Stores outlive loggers: a
// stopped container's `docker logs` opens a new, empty FIFO and must find every line
// still there, and its backends keep shipping until they have caught up.
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerContext, BackendFactory } from '../delivery/backend.ts';
import { Delivery, loadDeliveryState, saveDeliveryState } from '../delivery/delivery.ts';
import type { LogEntry } from '../fifo/log-entry.ts';
import { MAX_FRAME_BYTES } from '../fifo/deframer.ts';
import { RateLimitedWarning, log, redact } from '../observability/log.ts';
import { type LiveSources, linesDropped } from '../observability/metrics.ts';
import { containerContext } from '../shaping/context.ts';
import { TemplateError } from '../shaping/tag.ts';
import { ContainerStore } from '../store/container-store.ts';
import type { ReadRequest } from '../store/log-reader.ts';
import type { ContainerInfo } from '../protocol/wire.ts';
import { ContainerLog } from './container-log.ts';
import { DEFAULT_STORE_OPTIONS, InvalidOptionError, type LogOptions, parseLogOptions } from './options.ts';

export class LoggingError extends Error {}

const dropWarning = new RateLimitedWarning('store: dropped lines that could not be written');

export class Registry {
  private readonly logs = new Map<string, ContainerLog>();
  private readonly stores = new Map<string, ContainerStore>();
  private readonly containersDir: string;
  private readonly fifoDir: string;
  private readonly delivery = new Delivery((containerId) => this.release(containerId));

  constructor(dataDir: string, fifoDir: string) {
    this.containersDir = path.join(dataDir, 'containers');
    this.fifoDir = path.resolve(fifoDir);
  }

  /**
   * Begins reading a FIFO into the container's store, and shipping it to the selected
   * backends. Throws LoggingError or InvalidOptionError for bad input.
   */
  start(fifoPath: string, info: ContainerInfo, options: LogOptions): void {
    const containerId = info.id;
    const fifo = this.checkFifoPath(fifoPath);
    if (this.logs.has(fifo)) throw new LoggingError(`already logging from ${fifo}`);
    const context = contextFor(info, options);
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
    if (options.backends.length > 0) {
      try {
        saveDeliveryState(store.dir, { config: info.config, container: context });
      } catch (err) {
        log.warn('delivery: could not save the state a restart resumes from', { container: containerId.slice(0, 12), error: String(err) });
      }
      this.delivery.ensure(store, options.backends, context);
    }
  }

  /**
   * At plugin start: resumes shipping every store whose delivery state is on disk, so
   * lines a stopped container left unshipped reach their backends without a StartLogging.
   * Loops with nothing left to ship end at once and release their store.
   */
  resumeDelivery(factories: readonly BackendFactory<unknown>[]): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.containersDir);
    } catch {
      return;
    }
    for (const containerId of names) {
      const state = loadDeliveryState(path.join(this.containersDir, containerId));
      if (!state) continue;
      let options: LogOptions;
      try {
        options = parseLogOptions(state.config, factories);
      } catch (err) {
        log.warn('delivery: cannot resume a container whose options no longer parse', { container: containerId.slice(0, 12), error: redact(String(err)) });
        continue;
      }
      this.delivery.ensure(this.storeFor(containerId, null), options.backends, state.container);
      this.release(containerId);
    }
  }

  /** What the metrics read at scrape time. */
  liveSources(): LiveSources {
    return {
      lag: () => this.delivery.lag(),
      openContainers: () => this.stores.size,
      storeBytes: () => {
        let bytes = 0;
        for (const store of this.stores.values()) {
          try {
            const snap = store.snapshot();
            bytes += snap.closed.reduce((n, s) => n + s.bytes, 0) + (snap.current?.size ?? 0);
          } catch {
            // a store being removed; the next scrape counts it right
          }
        }
        return bytes;
      },
    };
  }

  /**
   * The daemon closes its end of the FIFO only after this returns; the logger keeps
   * reading until EOF, so no line still in the pipe is lost.
   */
  stop(fifoPath: string): void {
    if (!this.logs.has(path.resolve(fifoPath))) log.debug('StopLogging for an unknown FIFO', { fifo: fifoPath });
  }

  async *read(containerId: string, req: ReadRequest, signal: AbortSignal): AsyncGenerator<LogEntry[]> {
    const store = this.storeFor(containerId, null);
    try {
      yield* store.read(req, signal);
    } finally {
      this.release(containerId);
    }
  }

  /** Stops reading every FIFO (the data stays in the pipes), stops shipping, closes every store. */
  async shutdown(): Promise<void> {
    for (const logger of this.logs.values()) logger.abort();
    await Promise.all([...this.logs.values()].map((l) => l.finished));
    await this.delivery.shutdown();
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
      store = new ContainerStore(dir, options?.store ?? DEFAULT_STORE_OPTIONS, MAX_FRAME_BYTES, (lines, err) => {
        linesDropped.inc({ reason: 'store_error' }, lines);
        dropWarning.warn({ container: containerId, lines, error: String(err) });
      });
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

/** The tag executes at StartLogging, so a template that fails on this container fails `docker run`. */
function contextFor(info: ContainerInfo, options: LogOptions): ContainerContext {
  try {
    return containerContext(info, options.shaping);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new InvalidOptionError(`invalid value '${options.shaping.tag.source}' for log opt 'tag': ${err.message}`);
  }
}
