// The open-file limit the plugin runs under, and a warning before the containers attached could
// run it out: every container holds its FIFO and its store's current file open, and each
// connection to a backend and each `docker logs` reader is one more.
//
// The engine starts the plugin with the limits of containerd's shim: on Docker 20.10 as Debian
// packages it, 1048576; under containerd 2's own systemd unit, systemd's default soft limit of
// 1024 (hard 524288). Node raises the soft limit to the hard one when it starts (node.cc,
// PlatformInit), so what is read here is the most this process can open.
import fs from 'node:fs';
import { log } from './log.ts';

export interface FileLimit {
  soft: number;
  hard: number;
}

/** RLIMIT_NOFILE from /proc/self/limits (Infinity for unlimited), or undefined where it cannot be read. */
export function readFileLimit(limits?: string): FileLimit | undefined {
  let text = limits;
  try {
    text ??= fs.readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const value = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: value(m[1]!), hard: value(m[2]!) };
}

/** How many files this process has open now. */
export function openFiles(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Files a container costs before any is attached to measure it: FIFO, store file, one connection. */
const ASSUMED_PER_CONTAINER = 3;
const WARN_AT = 0.8;
const REARM_BELOW = 0.7;

type Warn = (msg: string, fields: Record<string, number>) => void;

/**
 * Watches the files in use against the limit. When they pass 80% of it, a warning with the
 * numbers: the files each container costs now, and how many containers the limit holds at
 * that; once, until the use falls back below 70%.
 */
export class FileBudget {
  private warned = false;
  /** Files open before any container (the server, the engine's pipes, stdio). */
  private readonly baseline: number;
  private readonly warn: Warn;

  constructor(baseline: number, warn: Warn = (msg, fields) => log.warn(msg, fields)) {
    this.baseline = baseline;
    this.warn = warn;
  }

  check(containers: number, inUse: number, limit: FileLimit): void {
    if (!Number.isFinite(limit.soft)) return;
    if (inUse < REARM_BELOW * limit.soft) this.warned = false;
    if (this.warned || inUse < WARN_AT * limit.soft) return;
    this.warned = true;
    const perContainer = containers > 0 ? Math.max(1, (inUse - this.baseline) / containers) : ASSUMED_PER_CONTAINER;
    const room = Math.max(0, Math.floor((limit.soft - this.baseline) / perContainer));
    this.warn('open files near the limit: raise the engine\'s LimitNOFILE (containerd\'s and dockerd\'s units) or attach fewer containers', {
      openFiles: inUse,
      limit: limit.soft,
      hardLimit: limit.hard,
      containers,
      filesPerContainer: Math.round(perContainer * 10) / 10,
      roomForContainers: room,
    });
  }
}

/**
 * Logs the limit at start and checks the budget every `everyMs` (the limit too is read again:
 * `prlimit` can change it under a running process).
 */
export function watchFileLimit(containers: () => number, everyMs = 10_000): FileLimit | undefined {
  const limit = readFileLimit();
  if (!limit) return undefined;
  const budget = new FileBudget(openFiles());
  const timer = setInterval(() => {
    const now = readFileLimit();
    if (now) budget.check(containers(), openFiles(), now);
  }, everyMs);
  timer.unref();
  return limit;
}
