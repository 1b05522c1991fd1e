// Appends records to a container's current segment, rotates by size, compresses closed
// segments in the background and keeps at most `maxFiles` segments.
//
// Writes are synchronous: one writeSync of a whole batch of records per FIFO chunk goes to
// the page cache in microseconds, keeps the order of batches trivially, and lets readers
// see a size that is always at a record boundary. Compression runs on zlib's thread pool.
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { EntryScan, scanEntry } from '../codec/entry-scan.ts';
import { log } from '../observability/log.ts';
import type { FrameBatch } from '../ingest/frame-batch.ts';
import { RECORD_OVERHEAD, encodeRecords, recordsBytes, scanForward } from './record-format.ts';
import {
  STORE_DIR_MODE,
  STORE_FILE_MODE,
  type SegmentInfo,
  type StoreSnapshot,
  listSegmentFiles,
  readManifestFile,
  segmentPath,
  writeManifest,
} from './segments.ts';
import type { StoreOptions } from './options.ts';

/** Some records of an append were not written (disk full, I/O error); those before were. */
export class AppendError extends Error {
  readonly unwritten: number;

  constructor(unwritten: number, cause: unknown) {
    super(`${unwritten} records not written: ${String(cause)}`, { cause });
    this.unwritten = unwritten;
  }
}

interface CurrentSegment {
  seq: number;
  /** The index of its first record in the container's whole history. */
  firstIndex: number;
  /** -1 until the file could be opened (a rotation on a full disk leaves it to the next write). */
  fd: number;
  size: number;
  count: number;
  minNano: bigint;
  maxNano: bigint;
}

/**
 * Reads an existing current segment once: its records and time bounds, and where its
 * whole records end (a crash can cut the last write short, or leave garbage after it).
 */
async function scanSegment(file: FileHandle, seq: number, firstIndex: number, size: number, maxPayload: number): Promise<CurrentSegment> {
  const desc: CurrentSegment = { seq, firstIndex, fd: -1, size: 0, count: 0, minNano: 0n, maxNano: 0n };
  const scan = new EntryScan();
  let timed = 0;
  const { end, count } = await scanForward(file, size, maxPayload, (payload) => {
    // Damage inside a record must not keep the store from opening: such a record has no
    // time to count, and readers skip it.
    if (!scanEntry(payload, 0, payload.length, scan)) return;
    const t = scan.timeNano();
    if (timed === 0 || t < desc.minNano) desc.minNano = t;
    if (timed === 0 || t > desc.maxNano) desc.maxNano = t;
    timed++;
  });
  desc.size = end;
  desc.count = count;
  return desc;
}

/**
 * Records are laid out here before their write: writes are synchronous, so every writer can
 * share it, and a FIFO read costs no allocation. A bigger batch gets a buffer of its own.
 */
const SCRATCH_BYTES = 256 * 1024;
const GZIP_READ_BYTES = 1024 * 1024;
const GZIP_OUTPUT_BYTES = 256 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

export class LogWriter {
  private readonly dir: string;
  private options: StoreOptions;
  private closed: SegmentInfo[];
  private current: CurrentSegment;
  private compressing: Promise<void> = Promise.resolve();
  private readonly compressionQueued = new Set<number>();
  private isOpen = true;

  private constructor(dir: string, options: StoreOptions, closed: SegmentInfo[], current: CurrentSegment) {
    this.dir = dir;
    this.options = options;
    this.closed = closed;
    this.current = current;
  }

  /**
   * Opens the store in `dir`, creating it if needed. Recovers from a crash: a torn record
   * at the end of the current segment is cut off, and closed segments left uncompressed
   * are queued for compression again.
   */
  static async open(dir: string, options: StoreOptions, maxPayload: number): Promise<LogWriter> {
    await fs.promises.mkdir(dir, { recursive: true, mode: STORE_DIR_MODE });
    const files = listSegmentFiles(dir);
    // An eviction whose manifest could not be written (disk full) leaves entries with no file.
    const manifest = readManifestFile(dir);
    const closed = manifest.closed.filter((seg) => files.some((f) => f.seq === seg.seq));
    const lastClosed = closed.at(-1)?.seq ?? 0;
    const currentSeq = files.filter((f) => !f.compressed && f.seq > lastClosed).at(-1)?.seq ?? lastClosed + 1;

    const currentPath = segmentPath(dir, currentSeq, false);
    const file = await fs.promises.open(currentPath, fs.existsSync(currentPath) ? 'r+' : 'w+', STORE_FILE_MODE);
    let current: CurrentSegment;
    try {
      const { size } = await file.stat();
      current = await scanSegment(file, currentSeq, manifest.currentFirstIndex, size, maxPayload);
      if (current.size !== size) {
        log.warn('store: cut a torn record off the end of a segment', { dir, seq: currentSeq, bytes: size - current.size });
        await file.truncate(current.size);
      }
    } finally {
      await file.close();
    }
    current.fd = fs.openSync(currentPath, 'a', STORE_FILE_MODE);
    const writer = new LogWriter(dir, options, closed, current);
    writer.removeStrays(files);
    for (const seg of closed) {
      if (!seg.compressed && options.compress) writer.scheduleCompression(seg.seq);
    }
    return writer;
  }

  /** Later StartLogging calls for the same container may bring new limits. */
  setOptions(options: StoreOptions): void {
    this.options = options;
  }

  /** The segment being appended to; a change means a rotation. */
  get currentSeq(): number {
    return this.current.seq;
  }

  snapshot(): StoreSnapshot {
    const { seq, size, firstIndex, count } = this.current;
    return { closed: [...this.closed], current: { seq, size, firstIndex }, endIndex: firstIndex + count };
  }

  /**
   * Appends frames in order, with one write per run of frames that fits the current
   * segment. Throws AppendError on I/O errors (disk full): the caller counts and drops.
   * Every failure leaves the store as it was before the failed step, so the writes after
   * it succeed again as soon as there is space.
   */
  append(batch: FrameBatch): void {
    const { starts, ends } = batch;
    let start = 0;
    let pieceBytes = 0;
    try {
      for (let i = 0; i < batch.length; i++) {
        const recordBytes = ends[i]! - starts[i]! + RECORD_OVERHEAD - 4;
        const used = this.current.size + pieceBytes;
        if (used > 0 && used + recordBytes > this.options.maxSizeBytes) {
          this.writePiece(batch, start, i);
          start = i;
          pieceBytes = 0;
          this.rotate();
        }
        pieceBytes += recordBytes;
      }
      this.writePiece(batch, start, batch.length);
    } catch (err) {
      throw new AppendError(batch.length - start, err);
    }
  }

  private writePiece(batch: FrameBatch, from: number, to: number): void {
    if (from === to) return;
    const cur = this.current;
    if (cur.fd === -1) cur.fd = fs.openSync(segmentPath(this.dir, cur.seq, false), 'a', STORE_FILE_MODE);
    const bytes = recordsBytes(batch, from, to);
    const out = bytes <= SCRATCH_BYTES ? scratch : Buffer.allocUnsafe(bytes);
    const buf = out.subarray(0, encodeRecords(batch, from, to, out));
    try {
      let written = 0;
      while (written < buf.length) written += fs.writeSync(cur.fd, buf, written, buf.length - written);
    } catch (err) {
      // A short write (disk full) would leave a torn record mid-file and hide every record
      // after it from readers: cut the file back to its last whole record.
      try {
        fs.ftruncateSync(cur.fd, cur.size);
      } catch {
        // the next open repairs the tail
      }
      throw err;
    }
    cur.size += buf.length;
    const { min, max } = batch.timeRange(from, to);
    if (cur.count === 0 || min < cur.minNano) cur.minNano = min;
    if (cur.count === 0 || max > cur.maxNano) cur.maxNano = max;
    cur.count += to - from;
  }

  private rotate(): void {
    const cur = this.current;
    const keepsCurrent = this.options.maxFiles > 1;
    // Evicted files go first: on a full disk, their space is what lets the manifest be written.
    this.evict(this.closed.length + (keepsCurrent ? 1 : 0) - (this.options.maxFiles - 1));
    const nextFirstIndex = cur.firstIndex + cur.count;
    // The manifest carries the next segment's first index even when nothing is kept beside
    // the current file, so record indexes (delivery cursors) never go back.
    if (!keepsCurrent) writeManifest(this.dir, this.closed, nextFirstIndex);
    if (keepsCurrent) {
      // On disk before the manifest names it closed: a closed segment is never torn, and a
      // cursor that points into it never points past its records.
      if (cur.fd !== -1) fs.fdatasyncSync(cur.fd);
      const closing: SegmentInfo = {
        seq: cur.seq,
        compressed: false,
        firstIndex: cur.firstIndex,
        count: cur.count,
        bytes: cur.size,
        minNano: cur.minNano,
        maxNano: cur.maxNano,
      };
      // The manifest names the closed segment before the next one exists, so a crash here
      // never leaves two segments that both look current. If it cannot be written, the
      // current segment stays current and the next append tries again.
      writeManifest(this.dir, [...this.closed, closing], nextFirstIndex);
      this.closed.push(closing);
    }
    if (cur.fd !== -1) fs.closeSync(cur.fd);
    // Nothing is kept beside the current file: start it again, as json-file does.
    if (!keepsCurrent) fs.rmSync(segmentPath(this.dir, cur.seq, false), { force: true });
    this.current = { seq: cur.seq + 1, firstIndex: nextFirstIndex, fd: -1, size: 0, count: 0, minNano: 0n, maxNano: 0n };
    if (this.options.compress && keepsCurrent) {
      // Also those whose compression failed earlier (disk full): there may be space now.
      for (const seg of this.closed) if (!seg.compressed) this.scheduleCompression(seg.seq);
    }
    this.current.fd = fs.openSync(segmentPath(this.dir, this.current.seq, false), 'a', STORE_FILE_MODE);
  }

  /**
   * Evicts the oldest closed segment, never the current one (the plugin-wide disk quota).
   * Returns the bytes it held on disk, or null when there is no closed segment.
   */
  evictOldest(): number | null {
    if (this.closed.length === 0) return null;
    const { bytes } = this.evict(1);
    writeManifest(this.dir, this.closed, this.current.firstIndex);
    return bytes;
  }

  /** Removes the oldest `count` closed segments: the one way segment files are deleted. */
  private evict(count: number): { segments: number; bytes: number } {
    const evicted = this.closed.splice(0, Math.max(0, count));
    let bytes = 0;
    for (const seg of evicted) bytes += this.removeSegmentFiles(seg.seq);
    return { segments: evicted.length, bytes };
  }

  private scheduleCompression(seq: number): void {
    if (this.compressionQueued.has(seq)) return;
    this.compressionQueued.add(seq);
    this.compressing = this.compressing.then(() =>
      this.compress(seq)
        .catch((err: unknown) => log.warn('store: compression failed', { dir: this.dir, seq, error: String(err) }))
        .finally(() => this.compressionQueued.delete(seq)),
    );
  }

  private async compress(seq: number): Promise<void> {
    if (!this.closed.some((s) => s.seq === seq)) return; // evicted meanwhile
    const plain = segmentPath(this.dir, seq, false);
    const gz = segmentPath(this.dir, seq, true);
    const tmp = `${gz}.tmp`;
    // Level 1: on stored daemon frames it compresses as well as the default level 6 (14.9% vs
    // 14.7% of a 20 MB segment of `seq` lines) for a tenth of the CPU (0.03 s vs 0.34 s), and
    // that CPU is taken from the containers while they log.
    // Large pieces: every piece is a trip to the thread pool and back through the event loop
    // for the read, the deflate and the write. With the defaults (64 KiB reads, 16 KiB of
    // output) a 20 MB segment cost 0.12 s of CPU, with 1 MiB reads and 256 KiB of output
    // 0.06 s; the buffers are mapped on their own (config.json) and go back once it is done.
    try {
      await pipeline(
        fs.createReadStream(plain, { highWaterMark: GZIP_READ_BYTES }),
        zlib.createGzip({ level: 1, chunkSize: GZIP_OUTPUT_BYTES }),
        // Flushed to disk before the rename: the manifest then says compressed and the plain
        // file goes, so a power cut must not leave a .gz without its data.
        fs.createWriteStream(tmp, { highWaterMark: GZIP_OUTPUT_BYTES, flush: true, mode: STORE_FILE_MODE }),
      );
    } catch (err) {
      fs.rmSync(tmp, { force: true }); // a disk-full leftover would only take more space
      throw err;
    }
    const seg = this.closed.find((s) => s.seq === seq);
    if (!seg) {
      fs.rmSync(tmp, { force: true });
      return;
    }
    fs.renameSync(tmp, gz);
    seg.compressed = true;
    try {
      writeManifest(this.dir, this.closed, this.current.firstIndex);
    } catch (err) {
      // The manifest still names the plain file: keep it, and try again at a later rotation.
      seg.compressed = false;
      fs.rmSync(gz, { force: true });
      throw err;
    }
    // Readers that opened the plain file keep reading it; new readers take the .gz.
    fs.rmSync(plain, { force: true });
  }

  /** Returns the bytes the files held. */
  private removeSegmentFiles(seq: number): number {
    let freed = 0;
    for (const p of [segmentPath(this.dir, seq, false), segmentPath(this.dir, seq, true), `${segmentPath(this.dir, seq, true)}.tmp`]) {
      try {
        freed += fs.statSync(p).size;
        fs.rmSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return freed;
  }

  /** Removes files a crash left behind: half-written .gz.tmp and segments older than the manifest. */
  private removeStrays(files: readonly { seq: number; compressed: boolean }[]): void {
    for (const name of fs.readdirSync(this.dir)) {
      if (name.endsWith('.gz.tmp')) fs.rmSync(`${this.dir}/${name}`, { force: true });
    }
    const keep = new Set([...this.closed.map((s) => s.seq), this.current.seq]);
    for (const f of files) {
      const seg = this.closed.find((s) => s.seq === f.seq);
      if (!keep.has(f.seq)) fs.rmSync(segmentPath(this.dir, f.seq, f.compressed), { force: true });
      // Compressed and renamed, but the plain copy was not yet removed.
      else if (seg?.compressed && !f.compressed) fs.rmSync(segmentPath(this.dir, f.seq, false), { force: true });
    }
  }

  /** Waits for background compression, then closes the current segment. Idempotent. */
  async close(): Promise<void> {
    if (!this.isOpen) return;
    this.isOpen = false;
    if (this.current.fd !== -1) fs.closeSync(this.current.fd);
    await this.compressing;
  }
}
