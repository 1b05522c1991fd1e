// One container's store as the rest of the plugin sees it: appends from its producers
// (the FIFO readers of its current and past loggers), reads for `docker logs`, and the
// wake-ups that let followers see new records without polling.
import { EventEmitter, once } from 'node:events';
import type { StoreOptions } from '../lifecycle/options.ts';
import { log } from '../observability/log.ts';
import type { FrameBatch } from './frame-batch.ts';
import { LogWriter } from './log-writer.ts';
import { type ReadRequest, type StoreView, readStore } from './log-reader.ts';
import { type StoreSnapshot, snapshotFromDisk } from './segments.ts';

export class ContainerStore implements StoreView {
  readonly dir: string;
  readonly maxPayload: number;
  private options: StoreOptions;
  private writer: LogWriter | null = null;
  private opening: Promise<void> | null = null;
  /** A close in progress: a writer opened meanwhile must wait for it (same files). */
  private closing: Promise<void> = Promise.resolve();
  /** Appends that arrived while the writer was being opened, in order. */
  private waiting: FrameBatch[] = [];
  private producers = 0;
  private readers = 0;
  private readonly changes = new EventEmitter();
  private changesSoFar = 0;
  private readonly onDropped: (lines: number, err: unknown) => void;

  constructor(dir: string, options: StoreOptions, maxPayload: number, onDropped: (lines: number, err: unknown) => void) {
    this.dir = dir;
    this.options = options;
    this.maxPayload = maxPayload;
    this.onDropped = onDropped;
    this.changes.setMaxListeners(0);
  }

  setOptions(options: StoreOptions): void {
    this.options = options;
    this.writer?.setOptions(options);
  }

  attachProducer(): void {
    this.producers++;
  }

  detachProducer(): void {
    this.producers--;
    this.changed();
  }

  private changed(): void {
    this.changesSoFar++;
    this.changes.emit('change');
  }

  /** True while nothing holds the store: the registry may close and forget it. */
  get idle(): boolean {
    return this.producers === 0 && this.readers === 0;
  }

  /**
   * Never blocks and never throws: what cannot be written is counted as dropped. The batch's
   * bytes may be reused once this returns (they are the FIFO reader's buffer).
   */
  append(batch: FrameBatch): void {
    if (batch.length === 0) return;
    if (this.writer) {
      this.write(batch);
      return;
    }
    this.waiting.push(batch.copy());
    this.opening ??= this.closing.then(() => LogWriter.open(this.dir, this.options, this.maxPayload)).then(
      (writer) => {
        this.writer = writer;
        const waiting = this.waiting;
        this.waiting = [];
        for (const batch of waiting) this.write(batch);
      },
      (err: unknown) => {
        const lines = this.waiting.reduce((n, batch) => n + batch.length, 0);
        this.waiting = [];
        this.opening = null;
        this.onDropped(lines, err);
      },
    );
  }

  private write(batch: FrameBatch): void {
    try {
      this.writer!.append(batch);
    } catch (err) {
      this.onDropped(batch.length, err);
    }
    this.changed();
  }

  snapshot(): StoreSnapshot {
    return this.writer ? this.writer.snapshot() : snapshotFromDisk(this.dir);
  }

  isLive(): boolean {
    return this.producers > 0;
  }

  changeCount(): number {
    return this.changesSoFar;
  }

  async nextChange(seen: number, signal: AbortSignal): Promise<void> {
    if (this.changesSoFar !== seen) return;
    try {
      await once(this.changes, 'change', { signal });
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  }

  async *read(req: ReadRequest, signal: AbortSignal): AsyncGenerator<Buffer[]> {
    this.readers++;
    try {
      await this.opening; // lines queued for a writer being opened are part of the history
      yield* readStore(this, req, signal);
    } finally {
      this.readers--;
    }
  }

  /** Waits for a pending open and background compression, then closes the files. */
  close(): Promise<void> {
    const opening = this.opening;
    this.closing = this.closing.then(async () => {
      await opening;
      const writer = this.writer;
      this.writer = null;
      // An append during this close has started a new open (chained after us): keep it.
      if (this.opening === opening) this.opening = null;
      await writer?.close().catch((err: unknown) => log.warn('store: close failed', { dir: this.dir, error: String(err) }));
    });
    return this.closing;
  }
}
