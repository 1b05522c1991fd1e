// Keeps the data folder bounded, on a timer and after rotations:
//
// - Retention. The daemon never says when a container is removed, and the plugin has no
//   Docker API access to ask. So a store counts as gone when no FIFO writes into it (no
//   logger or reader holds it) and no file in it changed for longer than RETENTION. The
//   price: `docker logs` of a container stopped for longer than that finds nothing.
// - Quota. Above DISK_QUOTA, rotated segments are evicted across all stores, oldest
//   records first, through each store's writer (the path max-file uses). A current segment
//   is never evicted, so the current segments alone may exceed the quota; that is logged.
import fs from 'node:fs';
import path from 'node:path';
import { RateLimitedWarning, log } from '../observability/log.ts';
import { bytesFreed, segmentsEvicted, storesRemoved } from '../observability/metrics.ts';
import { STORE_DIR_MODE, STORE_FILE_MODE, type SegmentInfo, namesIn, readManifest } from './segments.ts';

export interface StoreLimits {
  /** 0 = keep forever. */
  retentionMs: number;
  /** 0 = no quota. */
  diskQuotaBytes: number;
}

export const NO_LIMITS: StoreLimits = { retentionMs: 0, diskQuotaBytes: 0 };

/** What the janitor needs from the registry, which owns the live stores. */
export interface StoreHolder {
  /** True while a logger or reader holds the container's store. */
  isHeld(containerId: string): boolean;
  /** See ContainerStore.evictOldest. */
  evictOldest(containerId: string): Promise<number | null>;
}

export interface SweepResult {
  storesRemoved: number;
  segmentsEvicted: number;
  bytesFreed: number;
  /** Bytes in the data folder's stores after the sweep. */
  totalBytes: number;
}

interface StoreOnDisk {
  id: string;
  dir: string;
  bytes: number;
  lastChangeMs: number;
  /** Rotated segments, oldest first. */
  closed: SegmentInfo[];
}

const STORE_DIR = /^[0-9a-f]{64}$/;
const MAX_INTERVAL_MS = 60_000;
const AFTER_ROTATION_MS = 1000;

const overQuotaWarning = new RateLimitedWarning('quota: over DISK_QUOTA with only current segments left', 60_000);

export class StoreJanitor {
  private readonly containersDir: string;
  private readonly limits: StoreLimits;
  private readonly stores: StoreHolder;
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  private running: Promise<SweepResult> | null = null;

  constructor(containersDir: string, limits: StoreLimits, stores: StoreHolder) {
    this.containersDir = containersDir;
    this.limits = limits;
    this.stores = stores;
  }

  get active(): boolean {
    return this.limits.retentionMs > 0 || this.limits.diskQuotaBytes > 0;
  }

  /**
   * Sweeps periodically: often enough to honour a short retention, at most a minute apart.
   * The first sweep comes one period later, never at once: a store whose FIFO the previous
   * process read looks unheld until the registry has reattached it.
   */
  start(): void {
    if (!this.active || this.timer) return;
    const retention = this.limits.retentionMs;
    const every = retention > 0 ? Math.min(MAX_INTERVAL_MS, Math.max(1000, retention / 10)) : MAX_INTERVAL_MS;
    this.timer = setInterval(() => void this.sweepLogged(), every).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.timer = this.soon = null;
  }

  /** A store rotated: a new closed segment may have pushed the total over the quota. */
  noteRotation(): void {
    if (this.limits.diskQuotaBytes === 0 || !this.timer || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      void this.sweepLogged();
    }, AFTER_ROTATION_MS).unref();
  }

  private async sweepLogged(): Promise<void> {
    try {
      await this.sweep();
    } catch (err) {
      log.warn('janitor: sweep failed', { error: String(err) });
    }
  }

  /** One pass of retention, then quota. Concurrent calls share a pass. */
  sweep(now = Date.now()): Promise<SweepResult> {
    this.running ??= this.pass(now).finally(() => (this.running = null));
    return this.running;
  }

  private async pass(now: number): Promise<SweepResult> {
    const result: SweepResult = { storesRemoved: 0, segmentsEvicted: 0, bytesFreed: 0, totalBytes: 0 };
    let stores = scanStores(this.containersDir);
    if (this.limits.retentionMs > 0) stores = stores.filter((s) => !this.removeIfGone(s, now, result));
    result.totalBytes = stores.reduce((n, s) => n + s.bytes, 0);
    if (this.limits.diskQuotaBytes > 0 && result.totalBytes > this.limits.diskQuotaBytes) await this.enforceQuota(stores, result);
    return result;
  }

  private removeIfGone(store: StoreOnDisk, now: number, result: SweepResult): boolean {
    const idleMs = now - store.lastChangeMs;
    // Checked and removed in one synchronous step: no StartLogging can take the store in between.
    if (idleMs <= this.limits.retentionMs || this.stores.isHeld(store.id)) return false;
    try {
      fs.rmSync(store.dir, { recursive: true, force: true });
    } catch (err) {
      log.warn('retention: cannot remove a store', { container: store.id.slice(0, 12), error: String(err) });
      return false;
    }
    result.storesRemoved++;
    result.bytesFreed += store.bytes;
    storesRemoved.inc();
    bytesFreed.inc({ reason: 'retention' }, store.bytes);
    log.info('retention: removed the store of a container gone for longer than RETENTION', {
      container: store.id.slice(0, 12),
      idleHours: Math.round(idleMs / 360_000) / 10,
      bytes: store.bytes,
    });
    return true;
  }

  private async enforceQuota(stores: StoreOnDisk[], result: SweepResult): Promise<void> {
    const quota = this.limits.diskQuotaBytes;
    const candidates = stores.filter((s) => s.closed.length > 0);
    let segments = 0;
    let bytes = 0;
    while (result.totalBytes > quota && candidates.length > 0) {
      // The store whose oldest rotated segment holds the oldest records.
      let pick = 0;
      for (let i = 1; i < candidates.length; i++) {
        if (candidates[i]!.closed[0]!.maxNano < candidates[pick]!.closed[0]!.maxNano) pick = i;
      }
      const store = candidates[pick]!;
      let freed: number | null;
      try {
        freed = await this.stores.evictOldest(store.id);
      } catch (err) {
        log.warn('quota: cannot evict', { container: store.id.slice(0, 12), error: String(err) });
        freed = null;
      }
      store.closed.shift();
      if (freed === null || store.closed.length === 0) candidates.splice(pick, 1);
      if (freed === null) continue;
      segments++;
      bytes += freed;
      result.totalBytes -= freed;
    }
    result.segmentsEvicted += segments;
    result.bytesFreed += bytes;
    segmentsEvicted.inc(segments);
    bytesFreed.inc({ reason: 'quota' }, bytes);
    if (segments > 0) log.info('quota: evicted the oldest rotated files', { segments, bytes, totalBytes: result.totalBytes, quota });
    if (result.totalBytes > quota) overQuotaWarning.warn({ totalBytes: result.totalBytes, quota });
  }
}

/** Every store folder with its size on disk, its last change and its rotated segments. */
function scanStores(containersDir: string): StoreOnDisk[] {
  const stores: StoreOnDisk[] = [];
  for (const id of namesIn(containersDir)) {
    if (!STORE_DIR.test(id)) continue;
    const dir = path.join(containersDir, id);
    try {
      let bytes = 0;
      let lastChangeMs = fs.statSync(dir).mtimeMs;
      for (const name of fs.readdirSync(dir)) {
        const st = fs.statSync(path.join(dir, name));
        bytes += st.size;
        lastChangeMs = Math.max(lastChangeMs, st.mtimeMs);
      }
      stores.push({ id, dir, bytes, lastChangeMs, closed: readManifest(dir) });
    } catch (err) {
      // Removed meanwhile, or damaged: its own reader or writer reports it.
      log.debug('janitor: skipped a store', { dir, error: String(err) });
    }
  }
  return stores;
}

/**
 * Takes from the store folders and files every permission this version does not give them
 * (STORE_DIR_MODE, STORE_FILE_MODE): stores written by earlier versions were readable by any
 * local user. Only modes change; no file is read or rewritten, and a file already stricter
 * (delivery.json) stays so. One lstat per entry and a chmod where needed (0.4 s for 2,000
 * stores of 10 files on a shared 2-core machine), and once: the containers folder is
 * tightened last, and once it is private nobody else reaches anything in it (not even a
 * store an earlier version writes after a downgrade), so later starts stop there. Returns
 * how many entries changed.
 */
export function tightenModes(containersDir: string): number {
  const top = fs.lstatSync(containersDir, { throwIfNoEntry: false });
  if (!top?.isDirectory() || (top.mode & 0o7777 & ~STORE_DIR_MODE) === 0) return 0;
  let changed = 0;
  const walk = (dir: string, depth: number): void => {
    for (const name of namesIn(dir)) { // none if removed meanwhile (retention)
      const entry = path.join(dir, name);
      const st = fs.lstatSync(entry, { throwIfNoEntry: false });
      if (!st || st.isSymbolicLink()) continue; // chmod would follow it out of the store
      if (st.isDirectory()) {
        if (depth < 2) walk(entry, depth + 1);
        changed += tighten(entry, STORE_DIR_MODE, st.mode);
      } else if (st.isFile()) {
        changed += tighten(entry, STORE_FILE_MODE, st.mode);
      }
    }
  };
  walk(containersDir, 0);
  return changed + tighten(containersDir, STORE_DIR_MODE, top.mode);
}

/** Clears the permission bits of `file` that `allowed` does not have; 1 if it changed. */
function tighten(file: string, allowed: number, mode: number): number {
  if ((mode & 0o7777 & ~allowed) === 0) return 0;
  try {
    fs.chmodSync(file, mode & allowed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  return 1;
}
