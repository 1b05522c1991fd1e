// A backend's delivery cursor for one container: the store position of the first record
// it has not had acknowledged. One small JSON file per backend in the store's folder,
// replaced atomically after each acknowledged batch. It is fsynced at most once a
// second: a cursor a power cut rolls back only makes lines ship twice (at-least-once).
import fs from 'node:fs';
import path from 'node:path';
import type { StorePosition } from '../store/container-store.ts';

const FSYNC_INTERVAL_MS = 1000;

interface CursorJson {
  version: 1;
  index: number;
  seq: number;
  offset: number;
}

export class CursorFile {
  readonly path: string;
  private lastFsync = 0;

  constructor(storeDir: string, backend: string) {
    this.path = path.join(storeDir, 'cursors', `${backend}.json`);
  }

  /** The saved cursor; null if there is none (a backend new to this container). */
  load(): StorePosition | null {
    let json: CursorJson;
    try {
      json = JSON.parse(fs.readFileSync(this.path, 'utf8')) as CursorJson;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`unreadable cursor ${this.path}: ${(err as Error).message}`);
    }
    const { index, seq, offset } = json;
    if (![index, seq, offset].every((n) => Number.isSafeInteger(n) && n >= 0)) throw new Error(`invalid cursor ${this.path}`);
    return { index, seq, offset };
  }

  save(position: StorePosition): void {
    const json: CursorJson = { version: 1, ...position };
    const tmp = `${this.path}.tmp`;
    // Not recursive: a store folder removed meanwhile (retention) must not be brought back.
    if (!fs.existsSync(path.dirname(this.path))) fs.mkdirSync(path.dirname(this.path));
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(json));
      const now = Date.now();
      if (now - this.lastFsync >= FSYNC_INTERVAL_MS) {
        fs.fsyncSync(fd);
        this.lastFsync = now;
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.path);
  }
}
