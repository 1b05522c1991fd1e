// The lines a backend's receiver refused for good, kept so an operator can read and resend
// them: one JSON object per line in `<store>/dead-letters/<backend>.jsonl`, readable by root
// only (a line may hold anything a container printed). The file is bounded: past its cap
// the oldest records are dropped, and counted. Written once per send that rejected lines,
// synchronously: rejections are rare, and a record must not wait on a promise per line.
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { rfc3339Nano } from './timestamp.ts';
import type { RejectCode } from './backend.ts';
import type { OutgoingLine } from '../shaping/line.ts';

/** 10 MB holds thousands of rejected lines; the store, not this file, is the spool. */
export const DEAD_LETTER_CAP_BYTES = 10_000_000;

export interface DeadLetter {
  line: OutgoingLine;
  code: RejectCode;
  reason: string;
}

/** One record as written: the line as UTF-8 text, or base64 with `encoding` when it is not UTF-8. */
export interface DeadLetterRecord {
  time: string;
  stream: string;
  line: string;
  encoding?: 'base64';
  partial?: { id: string; ordinal: number; last: boolean };
  backend: string;
  code: RejectCode;
  reason: string;
  rejectedAt: string;
}

export class DeadLetterFile {
  readonly path: string;
  private readonly backend: string;
  private readonly capBytes: number;
  /** The file's size as last known; null until first needed. */
  private size: number | null = null;

  constructor(storeDir: string, backend: string, capBytes = DEAD_LETTER_CAP_BYTES) {
    this.path = path.join(storeDir, 'dead-letters', `${backend}.jsonl`);
    this.backend = backend;
    this.capBytes = capBytes;
  }

  /**
   * Appends the records, in one write; returns how many old records were dropped to stay
   * within the cap. Throws what the file system refused.
   */
  append(letters: readonly DeadLetter[], now = new Date()): number {
    if (letters.length === 0) return 0;
    const rejectedAt = now.toISOString();
    const text = letters.map((letter) => JSON.stringify(this.record(letter, rejectedAt)) + '\n').join('');
    const bytes = Buffer.byteLength(text);
    const dir = path.dirname(this.path);
    // Not recursive: a store folder removed meanwhile (retention) must not be brought back.
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: 0o700 });
    this.size ??= fileSize(this.path);
    let dropped = 0;
    if (this.size + bytes > this.capBytes) dropped = this.trim(bytes);
    fs.appendFileSync(this.path, text, { mode: 0o600 });
    this.size += bytes;
    return dropped;
  }

  private record({ line, code, reason }: DeadLetter, rejectedAt: string): DeadLetterRecord {
    const text = isUtf8(line.line);
    return {
      time: rfc3339Nano(line.timeNano),
      stream: line.source,
      line: line.line.toString(text ? 'utf8' : 'base64'),
      ...(text ? {} : { encoding: 'base64' as const }),
      ...(line.partial ? { partial: { ...line.partial } } : {}),
      backend: this.backend,
      code,
      reason,
      rejectedAt,
    };
  }

  /**
   * Rewrites the file without its oldest records, down to three quarters of the cap less
   * what comes next, so it is not rewritten at every append once full. Returns how many
   * records went.
   */
  private trim(incoming: number): number {
    let content: Buffer;
    try {
      content = fs.readFileSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      content = Buffer.alloc(0);
    }
    const keep = Math.max(0, Math.floor((this.capBytes * 3) / 4) - incoming);
    let start = Math.max(0, content.length - keep);
    // Keep whole records: start after a newline.
    if (start > 0 && content[start - 1] !== 0x0a) {
      const next = content.indexOf(0x0a, start);
      start = next === -1 ? content.length : next + 1;
    }
    let dropped = 0;
    for (let i = content.indexOf(0x0a); i !== -1 && i < start; i = content.indexOf(0x0a, i + 1)) dropped++;
    const tmp = `${this.path}.tmp`;
    fs.writeFileSync(tmp, content.subarray(start), { mode: 0o600 });
    fs.renameSync(tmp, this.path);
    this.size = content.length - start;
    return dropped;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}
