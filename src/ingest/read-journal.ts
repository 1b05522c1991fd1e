// The bytes read from a FIFO that are not in the store yet, kept in a file beside the
// attachment. A read takes bytes out of the pipe for good: between that read and the store's
// write the plugin holds the only copy, and a kill -9 in that window lost them (a 64 KiB
// chunk, hundreds of lines; seen in the e2e recovery test on Docker 28.5). So each read is
// appended here first, and once its frames are written to the store the file is cut back to
// the frame still incomplete. The next process starts its stream with what the file holds.
//
// A kill between the store's write and the cut stores that chunk's lines twice: a window of
// two system calls, against the whole decode-and-store of a chunk before (and, for a new
// stream, the few milliseconds its store's files take to open: see FifoPump). Writes go to the
// page cache, like the store's: this guards against the process dying, not the machine.
// Its cost, two system calls a read: bench/pipeline.ts's ingest of 1,000,000 lines took
// 0.30-0.32 s of system time against 0.23-0.30 s without, the same CPU in all (~1.1 s).
import fs from 'node:fs';
import { RateLimitedWarning } from '../observability/log.ts';

const failureWarning = new RateLimitedWarning('fifo: cannot keep the unstored bytes; a crash now may lose lines');

export class ReadJournal {
  private readonly path: string;
  private fd: number | null;
  private size: number;

  /**
   * Opens the journal of a stream: a new one (emptied), or, `resuming` an earlier process's
   * stream, the one it left, whose bytes come back as `leftover`.
   */
  static open(path: string, resuming: boolean): { journal: ReadJournal; leftover: Buffer } {
    let fd: number | null = null;
    let leftover = Buffer.alloc(0);
    try {
      // It holds the container's raw output: readable by root only, like the attachment.
      const { O_RDWR, O_CREAT, O_NOFOLLOW, O_TRUNC } = fs.constants;
      fd = fs.openSync(path, O_RDWR | O_CREAT | O_NOFOLLOW | (resuming ? 0 : O_TRUNC), 0o600);
      if (resuming) leftover = fs.readFileSync(fd);
    } catch (err) {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
      failureWarning.warn({ file: path, error: String(err) });
    }
    return { journal: new ReadJournal(path, fd, leftover.length), leftover };
  }

  private constructor(path: string, fd: number | null, size: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  /** Call with every read, before anything else is done with it. */
  note(chunk: Buffer): void {
    if (this.fd === null || chunk.length === 0) return;
    try {
      this.size += fs.writeSync(this.fd, chunk, 0, chunk.length, this.size);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Everything noted is in the store but `pending`, the tail of the last read that ends no frame. */
  stored(pending: Buffer): void {
    if (this.fd === null) return;
    try {
      // The pending bytes first, then the cut: a kill between the two leaves older bytes
      // after them (stored twice at the next start), never a frame's head lost.
      if (pending.length > 0) fs.writeSync(this.fd, pending, 0, pending.length, 0);
      fs.ftruncateSync(this.fd, pending.length);
      this.size = pending.length;
    } catch (err) {
      this.fail(err);
    }
  }

  /** The file stays for the next process; whoever ends the stream removes it. */
  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) fs.closeSync(fd);
  }

  private fail(err: unknown): void {
    // A disk that is full or failing must not stop the FIFO: reading on without the journal
    // only brings back the window it closes.
    // Its stale bytes would be read again at the next start: it goes too, if it can.
    failureWarning.warn({ file: this.path, error: String(err) });
    try {
      this.close();
      fs.rmSync(this.path, { force: true });
    } catch {
      // nothing more to do: the warning is out
    }
  }
}
