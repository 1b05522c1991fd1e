// A backend's delivery cursor for one container: the store position of the first record
// it has not had acknowledged. One small JSON file per backend in the store's folder,
// rewritten after each acknowledged batch without waiting for the disk: if only the plugin
// dies, the page cache still holds the cursor and the records alike.
//
// The file is made once by a rename, padded to a fixed size, and then overwritten in place.
// A rename over an existing file made ext4 (auto_da_alloc) write the new file's data out
// before the rename went through: 120-250 us per batch, in which the shipping loop waited (a third
// of its time in a profile of bench/delivery.ts). A write of 256 bytes at offset 0 lies in one disk sector, so a power
// cut leaves the old bytes or the new ones; a process that dies leaves the page cache's.
// Should it ever read as garbage, load() throws and the shipper ships again from the oldest
// record held: at-least-once either way.
//
// A power cut is another matter: the cursor's file can reach the disk before the records it
// points past, and after the reboot the store gives their indexes to new lines, which the
// cursor would then skip. So at most once a second the store's data is synced, and the
// position acknowledged before that sync is kept in the file as durable; a cursor read in
// another boot than the one that wrote it resumes from there. The price is at-least-once's:
// the lines of the last second or two before a reboot may ship twice.
import fs from 'node:fs';
import path from 'node:path';
import { RateLimitedWarning, log } from '../observability/log.ts';
import type { StorePosition } from '../store/container-store.ts';
import { STORE_DIR_MODE, STORE_FILE_MODE } from '../store/segments.ts';

const SYNC_INTERVAL_MS = 1000;
/**
 * The cursor file's size: its JSON, padded with spaces (JSON.parse skips them). The longest
 * JSON, every number at 2^53 and a 36-character boot id, takes 219 bytes.
 */
const FILE_BYTES = 256;

interface CursorJson {
  version: 1;
  index: number;
  seq: number;
  offset: number;
  /** The kernel's boot id when this was written; absent in cursors of earlier versions. */
  boot?: string;
  /** A position at or before this one whose records were on disk when this was written. */
  durable?: StorePosition;
}

const syncWarning = new RateLimitedWarning('delivery: could not make a cursor durable; it stays on its last durable position');

let thisBoot: string | null | undefined;

/** The kernel's boot id (the same in every container of the host); null if it cannot be read. */
function bootId(): string | null {
  if (thisBoot === undefined) {
    try {
      thisBoot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      thisBoot = null;
    }
  }
  return thisBoot;
}

function isPosition(p: unknown): p is StorePosition {
  const { index, seq, offset } = (p ?? {}) as Partial<StorePosition>;
  return [index, seq, offset].every((n) => Number.isSafeInteger(n) && n! >= 0);
}

export class CursorFile {
  readonly path: string;
  private readonly syncStore: (() => Promise<void>) | null;
  private latest: StorePosition | null = null;
  private durable: StorePosition | null = null;
  private lastSync = 0;
  private syncing = false;

  /**
   * `syncStore` puts the store's records on disk (ContainerStore.syncData). Without it (a
   * reader of cursors, a test) no position is ever recorded as durable.
   */
  constructor(storeDir: string, backend: string, syncStore?: () => Promise<void>) {
    this.path = path.join(storeDir, 'cursors', `${backend}.json`);
    this.syncStore = syncStore ?? null;
  }

  /**
   * The saved cursor; null if there is none (a backend new to this container). After a
   * reboot, its durable position: the one after it may point past what reached the disk.
   */
  load(): StorePosition | null {
    let json: CursorJson;
    try {
      json = JSON.parse(fs.readFileSync(this.path, 'utf8')) as CursorJson;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`unreadable cursor ${this.path}: ${(err as Error).message}`);
    }
    if (!isPosition(json)) throw new Error(`invalid cursor ${this.path}`);
    const latest = { index: json.index, seq: json.seq, offset: json.offset };
    const { durable } = json;
    this.durable = isPosition(durable) && durable.index <= latest.index ? { index: durable.index, seq: durable.seq, offset: durable.offset } : null;
    // A cursor of an earlier version, or one never synced, is checked against the store by its follower.
    const fromThisBoot = json.boot === undefined || json.boot === bootId();
    if (fromThisBoot || !this.durable) return latest;
    log.info('delivery: the machine restarted; a cursor resumes from its last position known to be on disk', {
      file: this.path,
      index: this.durable.index,
      mayShipAgain: latest.index - this.durable.index,
    });
    return this.durable;
  }

  save(position: StorePosition): void {
    this.latest = position;
    this.write(false);
    const now = Date.now();
    if (!this.syncStore || this.syncing || now - this.lastSync < SYNC_INTERVAL_MS) return;
    this.lastSync = now;
    this.syncing = true;
    // Every record before `position` was written before this sync began.
    this.syncStore()
      .then(() => {
        this.durable = position;
        this.write(true);
      })
      .catch((err: unknown) => syncWarning.warn({ file: this.path, error: String(err) }))
      .finally(() => (this.syncing = false));
  }

  /** Writes the file in place, or replaces it atomically; `fsync` when it carries a newly durable position. */
  private write(fsync: boolean): void {
    const json: CursorJson = { version: 1, ...this.latest! };
    const boot = bootId();
    if (boot !== null) json.boot = boot;
    if (this.durable) json.durable = this.durable;
    const text = JSON.stringify(json);
    // Padded to FILE_BYTES when it fits (today always); a longer JSON goes whole by the rename.
    const body = text.length <= FILE_BYTES ? text.padEnd(FILE_BYTES) : text;
    if (body.length === FILE_BYTES && this.writeInPlace(body, fsync)) return;
    const tmp = `${this.path}.tmp`;
    // Not recursive: a store folder removed meanwhile (retention) must not be brought back.
    if (!fs.existsSync(path.dirname(this.path))) fs.mkdirSync(path.dirname(this.path), { mode: STORE_DIR_MODE });
    const fd = fs.openSync(tmp, 'w', STORE_FILE_MODE);
    try {
      fs.writeSync(fd, body);
      if (fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.path);
  }

  /**
   * Overwrites a file of FILE_BYTES with `padded` (as long); false when there is no such file
   * (none yet, an earlier version's, one written by hand): the caller then replaces it.
   */
  private writeInPlace(padded: string, fsync: boolean): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.path, 'r+');
    } catch {
      return false;
    }
    try {
      if (fs.fstatSync(fd).size !== FILE_BYTES) return false;
      fs.writeSync(fd, padded, 0);
      if (fsync) fs.fsyncSync(fd);
      return true;
    } finally {
      fs.closeSync(fd);
    }
  }
}
