// One logger instance: the FIFO of one StartLogging, read to EOF and written to the
// container's store. It never waits on the store: a failed write is counted and dropped.
import type net from 'node:net';
import { Deframer } from '../fifo/deframer.ts';
import { EntryScan, scanEntry } from '../fifo/entry-scan.ts';
import { openFifo } from '../fifo/reader.ts';
import { RateLimitedWarning, log } from '../observability/log.ts';
import type { ContainerStore } from '../store/container-store.ts';
import { FrameBatch } from '../store/frame-batch.ts';

export interface ContainerLogStats {
  frames: number;
  corruptFrames: number;
  skippedBytes: number;
}

const corruptWarning = new RateLimitedWarning('fifo: skipped corrupt input');
const scan = new EntryScan();

export class ContainerLog {
  readonly fifoPath: string;
  readonly containerId: string;
  readonly stats: ContainerLogStats = { frames: 0, corruptFrames: 0, skippedBytes: 0 };
  /** Settles when the FIFO reached EOF (or failed) and the store no longer counts on it. */
  readonly finished: Promise<void>;
  private readonly store: ContainerStore;
  private readonly deframer = new Deframer();
  private readonly fifo: net.Socket;

  constructor(fifoPath: string, containerId: string, store: ContainerStore) {
    this.fifoPath = fifoPath;
    this.containerId = containerId;
    this.store = store;
    this.fifo = openFifo(fifoPath, (chunk) => this.onChunk(chunk));
    store.attachProducer();
    this.finished = new Promise((resolve) => {
      this.fifo.on('error', (err) => log.warn('fifo: read failed', { container: containerId, error: err.message }));
      this.fifo.on('close', () => {
        this.finish();
        resolve();
      });
    });
  }

  private onChunk(chunk: Buffer): void {
    const { buf, starts, ends, skippedBytes } = this.deframer.push(chunk);
    const batch = new FrameBatch(buf);
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i]!;
      const end = ends[i]!;
      if (scanEntry(buf, start + 4, end, scan)) {
        batch.add(start, end, scan.timeHi, scan.timeLo);
      } else {
        this.stats.corruptFrames++;
        corruptWarning.warn({ container: this.containerId, reason: 'not a LogEntry with source stdout or stderr' });
      }
    }
    this.stats.frames += starts.length;
    if (skippedBytes > 0) {
      this.stats.skippedBytes += skippedBytes;
      corruptWarning.warn({ container: this.containerId, reason: 'frame length out of range', skippedBytes });
    }
    this.store.append(batch);
  }

  private finish(): void {
    if (this.deframer.bufferedBytes > 0) {
      this.stats.skippedBytes += this.deframer.bufferedBytes;
      log.warn('fifo: stream ended inside a frame', { container: this.containerId, bytes: this.deframer.bufferedBytes });
    }
    this.store.detachProducer();
    log.debug('fifo: logging ended', { container: this.containerId, ...this.stats });
  }

  /** Stops reading without waiting for EOF: only for plugin shutdown. */
  abort(): void {
    this.fifo.destroy();
  }
}
