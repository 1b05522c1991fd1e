// One container's store as the rest of the plugin sees it: appends from its producers
// (the FIFO readers of its current and past loggers), reads for `docker logs`, and the
// wake-ups that let followers see new records without polling.
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { RateLimitedWarning, log } from '../observability/log.ts';
import { linesStored } from '../observability/metrics.ts';
import type { FrameBatch } from '../ingest/frame-batch.ts';
import { AppendError, LogWriter } from './log-writer.ts';
import { type ReadRequest, type StoreView, readStore } from './log-reader.ts';
import { type StoreSnapshot, segmentPath, snapshotFromDisk } from './segments.ts';
import type { StoreOptions } from './options.ts';

/** Where the next record will be: its index, and its segment and byte offset there. */
export interface StorePosition {
  index: number;
  seq: number;
  offset: number;
}

/**
 * Records reach the disk at most this long after their write (plus the sync's own time): a
 * power cut costs at most about the last second of lines. The sync runs on the thread pool,
 * once a second for a container that keeps logging, and not at all for an idle one.
 */
const SYNC_AFTER_MS = 1000;

const syncWarning = new RateLimitedWarning('store: could not sync a segment to disk');

export class ContainerStore implements StoreView {
  readonly dir: string;
  readonly maxPayload: number;
  private options: StoreOptions;
  private writer: LogWriter | null = null;
  private opening: Promise<void> | null = null;
  /** A close in progress: a writer opened meanwhile must wait for it (same files). */
  private closing: Promise<void> = Promise.resolve();
  /** Appends that arrived while the writer was being opened, in order, and end-position requests. */
  private waiting: (FrameBatch | ((writer: LogWriter | null) => void))[] = [];
  private producers = 0;
  private readers = 0;
  private consumers = 0;
  /** Evictions in progress, which need the writer open. */
  private evicting = 0;
  private readonly changes = new EventEmitter();
  private changesSoFar = 0;
  private readonly onDropped: (lines: number, err: unknown) => void;
  private readonly onRotated: () => void;
  /** Set from a write until the sync that puts it on disk starts. */
  private syncTimer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private syncNext: Promise<void> | null = null;

  constructor(
    dir: string,
    options: StoreOptions,
    maxPayload: number,
    onDropped: (lines: number, err: unknown) => void,
    onRotated: () => void = () => {},
  ) {
    this.dir = dir;
    this.options = options;
    this.maxPayload = maxPayload;
    this.onDropped = onDropped;
    this.onRotated = onRotated;
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

  /** A delivery loop that ships from the store holds it like a reader. */
  attachConsumer(): void {
    this.consumers++;
  }

  detachConsumer(): void {
    this.consumers--;
  }

  /** True while nothing holds the store: the registry may close and forget it. */
  get idle(): boolean {
    return this.producers === 0 && this.readers === 0 && this.consumers === 0 && this.evicting === 0;
  }

  /**
   * Never blocks and never throws: what cannot be written is counted as dropped. The batch's
   * bytes may be reused once this returns (they are the FIFO reader's buffer). True when it
   * is written (or dropped) on return; while the files open it waits in memory, and the
   * promise settles once it is written.
   */
  append(batch: FrameBatch): true | Promise<void> {
    if (batch.length === 0) return true;
    if (this.writer) {
      this.write(batch);
      return true;
    }
    this.waiting.push(batch.copy());
    const written = new Promise<void>((resolve) => this.waiting.push(() => resolve()));
    void this.openWriter();
    return written;
  }

  /** Settles once the store's files are open (appends are then written as they are made), or cannot be. */
  async ready(): Promise<void> {
    await this.openWriter();
  }

  /**
   * The end of the store once every append made before this call is written: where a new
   * delivery cursor starts, so it ships what is logged from now on. Opens the writer to
   * know the current segment's record count.
   */
  endPosition(): Promise<StorePosition> {
    return new Promise((resolve, reject) => {
      // Answered in turn with the appends queued for the writer: later ones are not counted.
      const answer = (writer: LogWriter | null): void => {
        if (!writer) return reject(new Error('the store could not be opened'));
        const { current, endIndex } = writer.snapshot();
        resolve({ index: endIndex!, seq: current!.seq, offset: current!.size });
      };
      if (this.writer) answer(this.writer);
      else {
        this.waiting.push(answer);
        void this.openWriter();
      }
    });
  }

  /** Opens the writer once; appends queued meanwhile are written in order. Null if it failed. */
  private async openWriter(): Promise<LogWriter | null> {
    this.opening ??= this.closing.then(() => LogWriter.open(this.dir, this.options, this.maxPayload)).then(
      (writer) => {
        this.writer = writer;
        const waiting = this.waiting;
        this.waiting = [];
        for (const item of waiting) {
          if (typeof item === 'function') item(writer);
          else this.write(item);
        }
      },
      (err: unknown) => {
        const waiting = this.waiting;
        this.waiting = [];
        let lines = 0;
        for (const item of waiting) {
          if (typeof item === 'function') item(null);
          else lines += item.length;
        }
        this.opening = null;
        if (lines > 0) this.onDropped(lines, err);
        else log.warn('store: cannot open', { dir: this.dir, error: String(err) });
        this.changed(); // followers waiting for those appends see they are gone
      },
    );
    await this.opening;
    return this.writer;
  }

  private write(batch: FrameBatch): void {
    const writer = this.writer!;
    const seq = writer.currentSeq;
    try {
      writer.append(batch);
      linesStored.inc(batch.length);
    } catch (err) {
      const unwritten = err instanceof AppendError ? err.unwritten : batch.length;
      linesStored.inc(batch.length - unwritten);
      this.onDropped(unwritten, err instanceof AppendError ? err.cause : err);
    }
    this.changed();
    if (writer.currentSeq !== seq) this.onRotated();
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = null;
      this.syncData().catch((err: unknown) => syncWarning.warn({ dir: this.dir, error: String(err) }));
    }, SYNC_AFTER_MS).unref();
  }

  /**
   * Evicts the oldest rotated segment through the writer, as max-file does, opening the
   * writer if nobody writes now. Returns the bytes freed; null when there was nothing to evict.
   */
  async evictOldest(): Promise<number | null> {
    this.evicting++;
    try {
      await this.closing; // a close under way ends with no writer: open one after it
      const writer = await this.openWriter();
      const freed = writer?.evictOldest() ?? null;
      if (freed !== null) this.changed();
      return freed;
    } finally {
      this.evicting--;
    }
  }

  /**
   * Puts the records written before this call on disk: the current segment's data (rotated
   * segments were synced as they closed). Calls while a sync runs share the next one, which
   * starts once it is done: one that began before a call may have missed its records.
   */
  syncData(): Promise<void> {
    if (!this.syncing) {
      this.syncing = this.syncCurrent().finally(() => (this.syncing = null));
      return this.syncing;
    }
    this.syncNext ??= this.syncing
      .catch(() => {})
      .then(() => {
        this.syncNext = null;
        return this.syncData();
      });
    return this.syncNext;
  }

  private async syncCurrent(): Promise<void> {
    const { current } = this.snapshot();
    if (!current) return;
    let file: FileHandle;
    try {
      file = await fs.promises.open(segmentPath(this.dir, current.seq, false), 'r');
    } catch (err) {
      // Rotated and compressed meanwhile (synced as it closed), removed with max-file=1, or
      // the whole store removed (retention).
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      await file.datasync(); // any descriptor of the file flushes all of its data
    } finally {
      await file.close();
    }
  }

  snapshot(): StoreSnapshot {
    return this.writer ? this.writer.snapshot() : snapshotFromDisk(this.dir);
  }

  /** Appends still waiting for the writer count too: a follower must not stop before them. */
  isLive(): boolean {
    return this.producers > 0 || this.waiting.some((item) => typeof item !== 'function');
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
