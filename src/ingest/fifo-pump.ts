// The pump of one FIFO (one StartLogging): read to EOF, its frames checked and handed to the
// container's store in batches. It never waits on the store: a failed write is counted and dropped.
import type net from 'node:net';
import { EntryScan, scanEntry } from '../codec/entry-scan.ts';
import { InvalidEntryError, decodeLogEntry } from '../codec/log-entry.ts';
import { RateLimitedWarning, log } from '../observability/log.ts';
import { fifoBytesSkipped, linesDropped, linesReceived } from '../observability/metrics.ts';
import { Deframer } from './deframer.ts';
import { openFifo } from './fifo-reader.ts';
import { FrameBatch } from './frame-batch.ts';

/** Where the frames go: the container's store (declared here so ingest does not reach up into it). */
export interface FrameSink {
  /** A batch is only valid during the call: a sink that keeps it for later copies it. */
  append(batch: FrameBatch): void;
  /** A producer writes into the sink from construction until it finishes. */
  attachProducer(): void;
  detachProducer(): void;
}

export interface FifoPumpStats {
  frames: number;
  corruptFrames: number;
  skippedBytes: number;
}

/** How reading ended: at EOF (the daemon closed its end), or cut off with the stream still open. */
export type Ending = 'eof' | 'cut';

const corruptWarning = new RateLimitedWarning('fifo: skipped corrupt input');
const scan = new EntryScan();
/**
 * Every logger's reads pass through this one batch: a read is stored before the next one
 * runs, and a store that must keep a batch for later copies it.
 */
const batch = new FrameBatch(Buffer.alloc(0));

export class FifoPump {
  readonly fifoPath: string;
  readonly containerId: string;
  readonly stats: FifoPumpStats = { frames: 0, corruptFrames: 0, skippedBytes: 0 };
  /** Settles when reading stopped and the store no longer counts on this producer. */
  readonly finished: Promise<Ending>;
  private readonly store: FrameSink;
  private readonly deframer = new Deframer();
  private readonly fifo: net.Socket;

  /**
   * `resume` set: the FIFO was being read by an earlier plugin process; it holds the bytes
   * that process had read but not yet stored, when it could hand them over.
   */
  constructor(fifoPath: string, containerId: string, store: FrameSink, resume?: Buffer) {
    this.fifoPath = fifoPath;
    this.containerId = containerId;
    this.store = store;
    if (resume) this.deframer.resume(resume);
    this.fifo = openFifo(fifoPath, (chunk) => this.onChunk(chunk));
    store.attachProducer();
    this.finished = new Promise((resolve) => {
      let ending: Ending = 'cut';
      this.fifo.on('end', () => (ending = 'eof'));
      this.fifo.on('error', (err) => log.warn('fifo: read failed', { container: containerId, error: err.message }));
      this.fifo.on('close', () => {
        this.finish(ending);
        resolve(ending);
      });
    });
  }

  private onChunk(chunk: Buffer): void {
    const { buf, starts, ends, skippedBytes } = this.deframer.push(chunk);
    batch.reset(buf);
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i]!;
      const end = ends[i]!;
      if (scanEntry(buf, start + 4, end, scan) && (!scan.unusual || decodes(buf.subarray(start + 4, end)))) {
        batch.add(start, end, scan.timeHi, scan.timeLo);
      } else {
        this.stats.corruptFrames++;
        linesDropped.inc({ reason: 'corrupt' });
        corruptWarning.warn({ container: this.containerId, reason: 'not a LogEntry with source stdout or stderr' });
      }
    }
    this.stats.frames += starts.length;
    linesReceived.inc(starts.length);
    if (skippedBytes > 0) {
      this.stats.skippedBytes += skippedBytes;
      fifoBytesSkipped.inc(skippedBytes);
      corruptWarning.warn({ container: this.containerId, reason: 'frame length out of range', skippedBytes });
    }
    this.store.append(batch);
  }

  private finish(ending: Ending): void {
    if (ending === 'eof' && this.deframer.bufferedBytes > 0) {
      this.stats.skippedBytes += this.deframer.bufferedBytes;
      fifoBytesSkipped.inc(this.deframer.bufferedBytes);
      log.warn('fifo: stream ended inside a frame', { container: this.containerId, bytes: this.deframer.bufferedBytes });
    }
    this.store.detachProducer();
    log.debug('fifo: logging ended', { container: this.containerId, ...this.stats });
  }

  /**
   * Stops reading without waiting for EOF (plugin shutdown) and returns the bytes of a frame
   * begun but not complete: the next process continues the stream with them.
   */
  abort(): Buffer {
    this.fifo.destroy();
    return this.deframer.heldBack();
  }
}

/**
 * What the store keeps, every reader (ReadLogs, delivery, a reopened writer) can decode:
 * entries the fast scan cannot vouch for (partial metadata, attrs, unknown fields: rare, the
 * daemon sends metadata only with 16 KiB chunks) are checked with protobufjs once, here.
 */
function decodes(payload: Buffer): boolean {
  try {
    decodeLogEntry(payload);
    return true;
  } catch (err) {
    if (!(err instanceof InvalidEntryError)) throw err;
    return false;
  }
}
