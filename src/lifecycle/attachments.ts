// The FIFOs this plugin reads, kept on disk so that a new plugin process (after a crash,
// or a forced disable and enable) can read them again: the daemon keeps writing into them
// and never repeats StartLogging (logdriver-protocol.md §5.3).
//
//   <dataDir>/attachments/<FIFO name>.json      the StartLogging body as the daemon sent it
//   <dataDir>/attachments/<FIFO name>.unstored  the bytes read from it and not yet stored
//                                               (ingest/read-journal.ts)
//
// Written before StartLogging answers, removed when the FIFO reaches EOF. Holding the
// daemon's own request means a reattach validates it with the parsers StartLogging uses;
// those are the protocol's (the edge, above lifecycle), so they are handed in.
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../observability/log.ts';
import type { ContainerInfo } from '../shaping/container.ts';

/** A FIFO to read and the container writing into it: what StartLogging asks for. */
export interface StartLoggingRequest {
  file: string;
  info: ContainerInfo;
}

/** The daemon's StartLogging body, parsed (throws on a malformed one) and written back. */
export interface StartLoggingBodies {
  parse(body: unknown): StartLoggingRequest;
  body(req: StartLoggingRequest): Record<string, unknown>;
}

const SUFFIX = '.json';
const JOURNAL_SUFFIX = '.unstored';

export class Attachments {
  private readonly dir: string;
  private readonly bodies: StartLoggingBodies;

  constructor(dir: string, bodies: StartLoggingBodies) {
    this.dir = dir;
    this.bodies = bodies;
  }

  private fileFor(fifoPath: string): string {
    return path.join(this.dir, path.basename(fifoPath) + SUFFIX);
  }

  private journalFor(fifoPath: string): string {
    return path.join(this.dir, path.basename(fifoPath) + JOURNAL_SUFFIX);
  }

  /** Where the FIFO's read journal goes: beside its attachment, as private. */
  prepareJournal(fifoPath: string): string {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return this.journalFor(fifoPath);
  }

  /**
   * Records (or updates) an attachment, atomically. Failing (disk full) costs only the
   * reattach after a crash, so it is logged, never thrown: the container must still start.
   */
  save(req: StartLoggingRequest): void {
    const file = this.fileFor(req.file);
    const tmp = `${file}.tmp`;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // Info.ContainerEnv may hold secrets: readable by root only.
      fs.writeFileSync(tmp, JSON.stringify(this.bodies.body(req)), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      log.warn('attachments: cannot record a FIFO; it will not be read again after a plugin restart', {
        fifo: req.file,
        error: String(err),
      });
    }
  }

  /** The attachment and its journal. */
  remove(fifoPath: string): void {
    try {
      fs.rmSync(this.fileFor(fifoPath), { force: true });
      fs.rmSync(this.journalFor(fifoPath), { force: true });
    } catch (err) {
      log.warn('attachments: cannot remove', { fifo: fifoPath, error: String(err) });
    }
  }

  /** Every recorded attachment; unreadable ones are logged and removed, with their journals. */
  load(): StartLoggingRequest[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: StartLoggingRequest[] = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      if (name.endsWith(JOURNAL_SUFFIX)) {
        // A journal is read by its FIFO's pump; one whose attachment is gone is an orphan.
        if (!names.includes(name.slice(0, -JOURNAL_SUFFIX.length) + SUFFIX)) fs.rmSync(file, { force: true });
        continue;
      }
      if (!name.endsWith(SUFFIX)) {
        fs.rmSync(file, { force: true }); // a .tmp a crash left behind
        continue;
      }
      try {
        const req = this.bodies.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
        if (path.basename(req.file) + SUFFIX !== name) throw new Error(`names FIFO ${req.file}`);
        out.push(req);
      } catch (err) {
        log.warn('attachments: dropping an unreadable record', { file, error: String(err) });
        fs.rmSync(file, { force: true });
        fs.rmSync(file.slice(0, -SUFFIX.length) + JOURNAL_SUFFIX, { force: true });
      }
    }
    return out;
  }
}
