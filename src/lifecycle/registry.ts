// The plugin's live state: one FifoPump per FIFO (per StartLogging), one store per
// container shared by its loggers, readers and delivery loops. Stores outlive loggers: a
// stopped container's `docker logs` opens a new, empty FIFO and must find every line
// still there, and its backends keep shipping until they have caught up.
import fs from 'node:fs';
import path from 'node:path';
import type { AnyBackendFactory } from '../delivery/backend.ts';
import { Delivery, loadDeliveryState, saveDeliveryState } from '../delivery/delivery.ts';
import { MAX_FRAME_BYTES } from '../ingest/deframer.ts';
import { FifoPump } from '../ingest/fifo-pump.ts';
import { RateLimitedWarning, log, redact } from '../observability/log.ts';
import { type LiveSources, fifosResumed, linesDropped } from '../observability/metrics.ts';
import type { ContainerStatus, StatusSource } from '../observability/status.ts';
import { InvalidOptionError } from '../options/values.ts';
import { type ContainerContext, type ContainerInfo, containerContext } from '../shaping/container.ts';
import { type Redactor, ShortSecretError, redactorFor } from '../shaping/redact.ts';
import { TemplateError } from '../shaping/tag.ts';
import { ContainerStore } from '../store/container-store.ts';
import { NO_LIMITS, type StoreHolder, StoreJanitor, type StoreLimits, type SweepResult, tightenModes } from '../store/janitor.ts';
import type { ReadRequest } from '../store/log-reader.ts';
import { DEFAULT_STORE_OPTIONS } from '../store/options.ts';
import { Attachments, type StartLoggingBodies } from './attachments.ts';
import { type BackendEnvironment, type LogOptions, NO_ENVIRONMENT, parseLogOptions } from './options.ts';

export class LoggingError extends Error {}

const dropWarning = new RateLimitedWarning('store: dropped lines that could not be written');

// A store taken only to be read, shipped or evicted from: its writer, if opened, must not
// start compressing segments its container chose to keep plain. StartLogging brings the real options.
const UNCHANGED_STORE_OPTIONS = { ...DEFAULT_STORE_OPTIONS, compress: false };

export interface RegistryOptions {
  /** The daemon's StartLogging body both ways, which attachments are kept in (protocol/wire.ts's START_LOGGING). */
  requests: StartLoggingBodies;
  /** What log-opt `backend` may select; none: the local copy only. */
  backends?: readonly AnyBackendFactory[];
  /** The plugin settings handed to backends (Settings.backends). */
  environment?: BackendEnvironment;
  /** With limits, a janitor applies retention and quota in the background (see StoreJanitor). */
  limits?: StoreLimits;
}

interface Attached {
  logger: FifoPump;
  info: ContainerInfo;
}

export class Registry implements StoreHolder {
  private readonly logs = new Map<string, Attached>();
  private readonly stores = new Map<string, ContainerStore>();
  private readonly containersDir: string;
  private readonly fifoDir: string;
  private readonly delivery = new Delivery((containerId) => this.release(containerId));
  private readonly attachments: Attachments;
  private readonly janitor: StoreJanitor;
  /** Container id → name, for the status page (a stopped container's store has no logger left). */
  private readonly names = new Map<string, string>();
  /** Container id → entries read from its FIFOs at the last status snapshot, for lines/s. */
  private readonly readSamples = new Map<string, { frames: number; atMs: number }>();
  private readonly backends: readonly AnyBackendFactory[];
  private readonly environment: BackendEnvironment;

  constructor(dataDir: string, fifoDir: string, { requests, backends = [], environment = NO_ENVIRONMENT, limits = NO_LIMITS }: RegistryOptions) {
    this.containersDir = path.join(dataDir, 'containers');
    this.fifoDir = path.resolve(fifoDir);
    this.backends = backends;
    this.environment = environment;
    this.attachments = new Attachments(path.join(dataDir, 'attachments'), requests);
    this.janitor = new StoreJanitor(this.containersDir, limits, this);
    this.janitor.start();
  }

  /**
   * Begins reading a FIFO into the container's store, and shipping it to the backends its
   * log-opts select; returns the options they parsed into (the one place log-opts are
   * parsed). Throws LoggingError or InvalidOptionError for bad input.
   * `resuming`: the FIFO was read by an earlier process (see FifoPump).
   */
  start(fifoPath: string, info: ContainerInfo, resuming = false): LogOptions {
    const containerId = info.id;
    const options = parseLogOptions(info.config, this.backends, this.environment);
    const fifo = this.checkFifoPath(fifoPath);
    if (this.logs.has(fifo)) throw new LoggingError(`already logging from ${fifo}`);
    const context = contextFor(info, options);
    const redactor = redactorOf(options, info.env);
    const store = this.storeFor(containerId, options);
    this.names.set(containerId, context.name);
    let logger: FifoPump;
    try {
      const journal = this.attachments.prepareJournal(fifo);
      logger = new FifoPump(fifo, containerId, store, journal, resuming, options.shaping.redaction?.local ? redactor : null);
    } catch (err) {
      this.release(containerId);
      throw new LoggingError(`cannot open ${fifo}: ${(err as Error).message}`);
    }
    this.attachments.save({ file: fifo, info });
    this.logs.set(fifo, { logger, info });
    void logger.finished.then((ending) => {
      this.logs.delete(fifo);
      // Cut off (shutdown): the daemon still writes into it, the next process reads on.
      if (ending === 'eof') this.attachments.remove(fifo);
      this.release(containerId);
    });
    if (options.backends.length > 0) {
      try {
        saveDeliveryState(store.dir, { config: info.config, container: context, env: redactedEnv(options, info.env) });
      } catch (err) {
        log.warn('delivery: could not save the state a restart resumes from', { container: containerId.slice(0, 12), error: String(err) });
      }
      this.delivery.ensure(store, options.backends, context, redactor);
    }
    return options;
  }

  /**
   * Reads again every FIFO an earlier plugin process was reading and the daemon still
   * holds; a container writing into one is blocked until then, so call it first thing.
   */
  reattach(): number {
    let count = 0;
    for (const { file, info } of this.attachments.load()) {
      // The daemon removes a FIFO after StopLogging; if it is gone, so is the logger.
      if (!fs.existsSync(file)) {
        this.attachments.remove(file);
        continue;
      }
      try {
        this.start(file, info, true);
        count++;
        fifosResumed.inc();
        log.info('logging resumed', { container: info.id.slice(0, 12), name: info.name });
      } catch (err) {
        log.warn('cannot resume logging', { container: info.id.slice(0, 12), fifo: file, error: redact(String(err)) });
        this.attachments.remove(file);
      }
    }
    return count;
  }

  /**
   * At plugin start: resumes shipping every store whose delivery state is on disk, so
   * lines a stopped container left unshipped reach their backends without a StartLogging.
   * Loops with nothing left to ship end at once and release their store.
   */
  resumeDelivery(): void {
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
        options = parseLogOptions(state.config, this.backends, this.environment);
      } catch (err) {
        log.warn('delivery: cannot resume a container whose options no longer parse', { container: containerId.slice(0, 12), error: redact(String(err)) });
        continue;
      }
      let redactor: Redactor | null;
      try {
        redactor = redactorOf(options, state.env);
      } catch (err) {
        log.warn('delivery: cannot resume a container whose options no longer parse', { container: containerId.slice(0, 12), error: String(err) });
        continue;
      }
      this.names.set(containerId, state.container.name);
      this.delivery.ensure(this.storeFor(containerId, null), options.backends, state.container, redactor);
      this.release(containerId);
    }
  }

  /** At plugin start: makes stores written by earlier versions readable by root only (see tightenModes). */
  tightenStoreModes(): void {
    try {
      const changed = tightenModes(this.containersDir);
      if (changed > 0) log.info('store: made the files and folders of earlier versions\' stores private to root', { changed });
    } catch (err) {
      log.warn('store: could not make every store private to root', { error: String(err) });
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

  /** What the status page reads: taken when asked, from what the loggers, stores and shippers keep. */
  statusSource(): StatusSource {
    return { containers: () => this.containerStatus() };
  }

  private containerStatus(): ContainerStatus[] {
    const now = Date.now();
    const frames = new Map<string, number>();
    for (const { logger } of this.logs.values()) frames.set(logger.containerId, (frames.get(logger.containerId) ?? 0) + logger.stats.frames);
    const out: ContainerStatus[] = [];
    for (const [id, store] of this.stores) {
      let storedBytes = 0;
      let segments = 0;
      try {
        const snap = store.snapshot();
        storedBytes = snap.closed.reduce((n, s) => n + s.bytes, 0) + (snap.current?.size ?? 0);
        segments = snap.closed.length + (snap.current ? 1 : 0);
      } catch {
        // a store being removed
      }
      const read = frames.get(id) ?? 0;
      const last = this.readSamples.get(id);
      const seconds = last ? (now - last.atMs) / 1000 : 0;
      this.readSamples.set(id, { frames: read, atMs: now });
      out.push({
        id: id.slice(0, 12),
        name: this.names.get(id) ?? '',
        running: frames.has(id),
        storedBytes,
        segments,
        linesPerSec: last && seconds > 0 ? Math.max(0, read - last.frames) / seconds : 0,
        backends: this.delivery.status(id),
      });
    }
    for (const id of this.readSamples.keys()) if (!this.stores.has(id)) this.readSamples.delete(id);
    return out.sort((a, b) => a.name.localeCompare(b.name));
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

  isHeld(containerId: string): boolean {
    return this.stores.has(containerId);
  }

  async evictOldest(containerId: string): Promise<number | null> {
    const store = this.storeFor(containerId, null);
    try {
      return await store.evictOldest();
    } finally {
      this.release(containerId);
    }
  }

  /** Applies retention and quota now (the janitor also does, on its own schedule). */
  sweep(now?: number): Promise<SweepResult> {
    return this.janitor.sweep(now);
  }

  /**
   * Stops reading every FIFO, stops shipping and closes every store. What is still in the
   * pipes stays there, and the attachments stay, so the next process reads on from where
   * this one stopped.
   */
  async shutdown(): Promise<void> {
    this.janitor.stop();
    const attached = [...this.logs.entries()];
    for (const [, { logger }] of attached) logger.abort();
    await Promise.all(attached.map(([, a]) => a.logger.finished));
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
      const onDropped = (lines: number, err: unknown): void => {
        linesDropped.inc({ reason: 'store_error' }, lines);
        dropWarning.warn({ container: containerId, lines, error: String(err) });
      };
      store = new ContainerStore(dir, options?.store ?? UNCHANGED_STORE_OPTIONS, MAX_FRAME_BYTES, onDropped, () =>
        this.janitor.noteRotation(),
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

/** redact-env's values are the container's: a value too short to mask fails `docker run`. */
function redactorOf(options: LogOptions, env: readonly string[] | undefined): Redactor | null {
  try {
    return redactorFor(options.shaping.redaction, env ?? []);
  } catch (err) {
    if (!(err instanceof ShortSecretError)) throw err;
    throw new InvalidOptionError(`invalid value '${options.shaping.redaction!.envNames.join(',')}' for log opt 'redact-env': ${err.message}`);
  }
}

/** The env entries redact-env names: what a restarted plugin needs to go on masking them. */
function redactedEnv(options: LogOptions, env: readonly string[]): string[] | undefined {
  const names = options.shaping.redaction?.envNames ?? [];
  if (names.length === 0) return undefined;
  return env.filter((e) => names.some((n) => e.startsWith(`${n}=`)));
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
