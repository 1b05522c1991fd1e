// A container's store is a folder of numbered segment files plus a manifest:
//
//   <dataDir>/containers/<container id>/
//     segments.json      closed segments: seq, record count, bytes, time bounds, compressed?
//     00000007.log.gz    closed, compressed
//     00000008.log       closed, not compressed (yet)
//     00000009.log       the current segment, appended to; the highest seq not in the manifest
//
// Segments are never renamed: rotation closes the current one and starts seq+1, so a
// reader or follower holding a seq is never confused by a shift. The manifest's counts
// and time bounds let `--tail` and `--since` skip whole segments without opening them.
//
// Every record also has an index: its place in the container's whole history, counted
// from 0 and never reused. The manifest keeps each segment's first index (and the current
// segment's), so a delivery cursor is an index, and the records evicted before a backend
// shipped them are the oldest index still held minus the cursor, whatever evicted them.
import fs from 'node:fs';
import path from 'node:path';

export interface SegmentInfo {
  seq: number;
  compressed: boolean;
  /** Index of the segment's first record in the container's history. */
  firstIndex: number;
  /** Records in the segment. */
  count: number;
  /** Uncompressed bytes. */
  bytes: number;
  /** Smallest and largest time_nano in the segment (the daemon's times are not monotonic). */
  minNano: bigint;
  maxNano: bigint;
}

interface ManifestJson {
  version: 1;
  /** Absent in manifests written before indexes existed: counted from 0 then. */
  currentFirstIndex?: number;
  segments: { seq: number; compressed: boolean; firstIndex?: number; count: number; bytes: number; minNano: string; maxNano: string }[];
}

export interface Manifest {
  closed: SegmentInfo[];
  /** Index of the current segment's first record. */
  currentFirstIndex: number;
}

/**
 * A store is private to root, as json-file keeps a container's logs (moby creates the
 * container folder 0710 and its log files 0640): the folders are not listed or entered by
 * others, and the files are not read by them. The group (root's) may only traverse and read.
 */
export const STORE_DIR_MODE = 0o710;
export const STORE_FILE_MODE = 0o640;

const MANIFEST = 'segments.json';
const SEGMENT_FILE = /^(\d{8,})\.log(\.gz)?$/;

export function segmentPath(dir: string, seq: number, compressed: boolean): string {
  return path.join(dir, `${String(seq).padStart(8, '0')}.log${compressed ? '.gz' : ''}`);
}

export function readManifestFile(dir: string): Manifest {
  let json: ManifestJson;
  try {
    json = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as ManifestJson;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { closed: [], currentFirstIndex: 0 };
    throw err;
  }
  let next = 0;
  const closed = [...json.segments]
    .sort((a, b) => a.seq - b.seq)
    .map((s) => {
      const firstIndex = s.firstIndex ?? next;
      next = firstIndex + s.count;
      return { ...s, firstIndex, minNano: BigInt(s.minNano), maxNano: BigInt(s.maxNano) };
    });
  return { closed, currentFirstIndex: json.currentFirstIndex ?? next };
}

export function readManifest(dir: string): SegmentInfo[] {
  return readManifestFile(dir).closed;
}

/**
 * Replaces the manifest atomically, so a crash leaves the old or the new one, never half, and
 * durably before the writer goes on: a rotation creates the next segment right after, and a
 * power cut that kept the new file but not the new manifest would leave the closed segment
 * looking like a stray (removed at the next open) and give its indexes to the next one.
 * Once per rotation, compression or eviction.
 */
export function writeManifest(dir: string, segments: readonly SegmentInfo[], currentFirstIndex: number): void {
  const json: ManifestJson = {
    version: 1,
    currentFirstIndex,
    segments: segments.map((s) => ({ ...s, minNano: s.minNano.toString(), maxNano: s.maxNano.toString() })),
  };
  const tmp = path.join(dir, `${MANIFEST}.tmp`);
  try {
    fs.writeFileSync(tmp, JSON.stringify(json), { flush: true, mode: STORE_FILE_MODE });
    fs.renameSync(tmp, path.join(dir, MANIFEST));
  } catch (err) {
    fs.rmSync(tmp, { force: true }); // a half-written copy would hold space on a full disk
    throw err;
  }
  syncDir(dir);
}

/** Makes the folder's entries (a rename, a new file) durable. */
function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface SegmentFile {
  seq: number;
  compressed: boolean;
}

/** The names in a folder; none when it is gone (a store removed meanwhile, or never made). */
export function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Segment files present in the folder, by seq; a seq present both ways is listed twice. */
export function listSegmentFiles(dir: string): SegmentFile[] {
  const files: SegmentFile[] = [];
  for (const name of namesIn(dir)) {
    const m = SEGMENT_FILE.exec(name);
    if (m) files.push({ seq: Number(m[1]), compressed: m[2] !== undefined });
  }
  return files.sort((a, b) => a.seq - b.seq);
}

/** What a reader may read: the closed segments and the current one up to a byte length. */
export interface StoreSnapshot {
  closed: SegmentInfo[];
  current: { seq: number; size: number; firstIndex: number } | null;
  /** Index after the last record; null when unknown (no writer has counted the current segment). */
  endIndex: number | null;
}

/** A snapshot taken from disk, for a store that no writer in this process has open. */
export function snapshotFromDisk(dir: string): StoreSnapshot {
  const { closed, currentFirstIndex } = readManifestFile(dir);
  const lastClosed = closed.at(-1)?.seq ?? -1;
  const candidates = listSegmentFiles(dir).filter((f) => f.seq > lastClosed && !f.compressed);
  const current = candidates.at(-1);
  if (!current) return { closed, current: null, endIndex: currentFirstIndex };
  const size = fs.statSync(segmentPath(dir, current.seq, false)).size;
  return { closed, current: { seq: current.seq, size, firstIndex: currentFirstIndex }, endIndex: size === 0 ? currentFirstIndex : null };
}
