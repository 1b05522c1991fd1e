// The pump of one FIFO (one StartLogging): read to EOF, its frames checked and handed to the
// container's store in batches. It never waits on the store: a failed write is counted and dropped.
// Each read is kept in the stream's journal until its frames are stored (see read-journal.ts).
// With redact-local, a frame whose line holds a secret is stored with the line masked (one
// 16 KiB chunk at a time: a secret cut by the daemon's chunking is masked only in the shipped copy).
import fs from 'node:fs';
import type net from 'node:net';
import { EntryScan, scanEntry } from '../codec/entry-scan.ts';
import { InvalidEntryError, decodeLogEntry } from '../codec/log-entry.ts';
import { RateLimitedWarning, log } from '../observability/log.ts';
import { fifoBytesSkipped, linesDropped, linesReceived } from '../observability/metrics.ts';
import { Deframer } from './deframer.ts';
import { openFifo, readFifo } from './fifo-reader.ts';
import { FrameBatch } from './frame-batch.ts';
import { ReadJournal } from './read-journal.ts';

/** Where the frames go: the container's store (declared here so ingest does not reach up into it). */
export interface FrameSink {
  /**
   * A batch is only valid during the call: a sink that keeps it for later copies it. True
   * when the sink is done with it on return (written, or dropped and counted); else a
   * promise that settles when it is (a store still opening its files keeps it meanwhile).
   */
  append(batch: FrameBatch): true | Promise<void>;
  /** Settles once appends are done with on return: the store's files are open, or cannot be. */
  ready(): Promise<void>;
  /** A producer writes into the sink from construction until it finishes. */
  attachProducer(): void;
  detachProducer(): void;
}

/**
 * What masks the stored copy's lines (redact-local: shaping's Redactor; declared here so ingest
 * does not reach down the pipeline into shaping). Returns `line` itself when nothing matched.
 */
export interface LineMasker {
  redact(line: Buffer): Buffer;
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
  private readonly redactor: LineMasker | null;
  private readonly journal: ReadJournal;
  /** Null until the store is ready, and after an abort that came first. */
  private fifo: net.Socket | null = null;
  private aborted = false;
  /** Appends made, so that a deferred cut of the journal knows whether it is the last. */
  private appends = 0;

  /**
   * Opens the FIFO at once (throws if it cannot) and reads it once the store is ready.
   * `resuming`: the FIFO was being read by an earlier plugin process, which left in the
   * journal at `journalPath` what it had read but not stored.
   */
  constructor(
    fifoPath: string,
    containerId: string,
    store: FrameSink,
    journalPath: string,
    resuming: boolean,
    localRedactor: LineMasker | null = null,
  ) {
    this.fifoPath = fifoPath;
    this.redactor = localRedactor;
    this.containerId = containerId;
    this.store = store;
    const fd = openFifo(fifoPath);
    const { journal, leftover } = ReadJournal.open(journalPath, resuming);
    this.journal = journal;
    store.attachProducer();
    // A resumed stream has a full pipe waiting: it is read only once the store writes on the
    // spot, so each read is cut from the journal as soon as it is stored. A new one reads at
    // once (a StartLogging for `docker logs` writes nothing, and must not open the store's
    // files): its first reads wait for the files with the journal uncut, so a kill while
    // they are written stores those again.
    this.finished = (resuming ? store.ready() : Promise.resolve()).then(() => this.read(fd, resuming, leftover));
  }

  private read(fd: number, resuming: boolean, leftover: Buffer): Promise<Ending> {
    if (this.aborted) {
      fs.closeSync(fd);
      this.finish('cut');
      return Promise.resolve('cut');
    }
    if (resuming) {
      // The earlier process may have died in the middle of a frame, or after a read it had
      // no time to journal: the first frame must show the source field, not just a length.
      this.deframer.resume(leftover);
      if (leftover.length > 0) this.onChunk(Buffer.alloc(0)); // its whole frames, at once
    }
    const fifo = readFifo(fd, (chunk) => {
      this.journal.note(chunk);
      this.onChunk(chunk);
    });
    this.fifo = fifo;
    return new Promise((resolve) => {
      let ending: Ending = 'cut';
      fifo.on('end', () => (ending = 'eof'));
      fifo.on('error', (err) => log.warn('fifo: read failed', { container: this.containerId, error: err.message }));
      fifo.on('close', () => {
        this.finish(ending);
        resolve(ending);
      });
    });
  }

  private onChunk(chunk: Buffer): void {
    const { buf, starts, ends, skippedBytes } = this.deframer.push(chunk);
    batch.reset(buf);
    let masked: Map<number, Buffer> | null = null;
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i]!;
      const end = ends[i]!;
      if (scanEntry(buf, start + 4, end, scan) && (!scan.unusual || decodes(buf.subarray(start + 4, end)))) {
        if (this.redactor !== null && scan.lineEnd > scan.lineStart) {
          const line = buf.subarray(scan.lineStart, scan.lineEnd);
          const out = this.redactor.redact(line);
          if (out !== line) (masked ??= new Map()).set(batch.length, withLine(buf, start, end, scan.lineStart, scan.lineEnd, out));
        }
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
    if (masked !== null) rewrite(batch, masked);
    const stored = this.store.append(batch);
    if (starts.length === 0) return; // the journal already ends as the deframer does
    const append = ++this.appends;
    if (stored === true) this.journal.stored(this.deframer.heldBack());
    else {
      // Settles after the turn that writes every batch queued so far: only the last
      // append's settling may cut, or it would cut reads still waiting.
      void stored.then(() => {
        if (append === this.appends) this.journal.stored(this.deframer.heldBack());
      });
    }
  }

  private finish(ending: Ending): void {
    if (ending === 'eof' && this.deframer.bufferedBytes > 0) {
      this.stats.skippedBytes += this.deframer.bufferedBytes;
      fifoBytesSkipped.inc(this.deframer.bufferedBytes);
      log.warn('fifo: stream ended inside a frame', { container: this.containerId, bytes: this.deframer.bufferedBytes });
    }
    this.journal.close();
    this.store.detachProducer();
    log.debug('fifo: logging ended', { container: this.containerId, ...this.stats });
  }

  /**
   * Stops reading without waiting for EOF (plugin shutdown): the journal keeps the frame
   * begun but not complete, and the next process continues the stream with it.
   */
  abort(): void {
    this.aborted = true;
    this.fifo?.destroy();
  }
}

/** The frame buf[start, end) with its line field, at [lineStart, lineEnd), replaced by `line`. */
function withLine(buf: Buffer, start: number, end: number, lineStart: number, lineEnd: number, line: Buffer): Buffer {
  // The length varint ends at lineStart, its earlier bytes have the high bit set, and the
  // field's one-byte tag comes before it.
  let tag = lineStart - 1;
  while (tag > start + 4 && buf[tag - 1]! & 0x80) tag--;
  tag--;
  const length: number[] = [];
  for (let n = line.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  const payload = Buffer.concat([buf.subarray(start + 4, tag), Buffer.from([buf[tag]!, ...length]), line, buf.subarray(lineEnd, end)]);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}

/** Lays the batch's frames out again in new bytes, with the masked ones in place of theirs. */
function rewrite(b: FrameBatch, masked: Map<number, Buffer>): void {
  const frames: Buffer[] = [];
  for (let i = 0; i < b.length; i++) frames.push(masked.get(i) ?? b.buf.subarray(b.starts[i]!, b.ends[i]!));
  let pos = 0;
  for (let i = 0; i < frames.length; i++) {
    b.starts[i] = pos;
    pos += frames[i]!.length;
    b.ends[i] = pos;
  }
  b.buf = Buffer.concat(frames);
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
