// The FIFOs this plugin reads, kept on disk so that a new plugin process (after a crash,
// or a forced disable and enable) can read them again: the daemon keeps writing into them
// and never repeats StartLogging (logdriver-protocol.md §5.3).
//
//   <dataDir>/attachments/<FIFO name>.json   the StartLogging body as the daemon sent it,
//                                            plus the bytes of a frame begun but not stored
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

export interface Attachment extends StartLoggingRequest {
  /** Bytes of a frame begun but not complete when the previous process stopped reading. */
  heldBack: Buffer | null;
}

const SUFFIX = '.json';

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

  /**
   * Records (or updates) an attachment, atomically. Failing (disk full) costs only the
   * reattach after a crash, so it is logged, never thrown: the container must still start.
   */
  save(req: StartLoggingRequest, heldBack: Buffer | null = null): void {
    const file = this.fileFor(req.file);
    const tmp = `${file}.tmp`;
    const body = { ...this.bodies.body(req), HeldBack: heldBack && heldBack.length > 0 ? heldBack.toString('base64') : undefined };
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // Info.ContainerEnv may hold secrets: readable by root only.
      fs.writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      log.warn('attachments: cannot record a FIFO; it will not be read again after a plugin restart', {
        fifo: req.file,
        error: String(err),
      });
    }
  }

  remove(fifoPath: string): void {
    try {
      fs.rmSync(this.fileFor(fifoPath), { force: true });
    } catch (err) {
      log.warn('attachments: cannot remove', { fifo: fifoPath, error: String(err) });
    }
  }

  /** Every recorded attachment; unreadable ones are logged and removed. */
  load(): Attachment[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: Attachment[] = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      if (!name.endsWith(SUFFIX)) {
        fs.rmSync(file, { force: true }); // a .tmp a crash left behind
        continue;
      }
      try {
        const body = JSON.parse(fs.readFileSync(file, 'utf8')) as { HeldBack?: unknown };
        const req = this.bodies.parse(body);
        if (path.basename(req.file) + SUFFIX !== name) throw new Error(`names FIFO ${req.file}`);
        const heldBack = typeof body.HeldBack === 'string' ? Buffer.from(body.HeldBack, 'base64') : null;
        out.push({ ...req, heldBack });
      } catch (err) {
        log.warn('attachments: dropping an unreadable record', { file, error: String(err) });
        fs.rmSync(file, { force: true });
      }
    }
    return out;
  }
}
