// One backend's delivery loop for one container: store → reassembled lines → batches →
// backend.send, one batch in flight, retried with backoff until the receiver takes it,
// then the cursor moves past it. Nothing here is awaited by the FIFO path: the loop wakes
// on the store's change events and reads what was written.
//
// At-least-once: the cursor only ever moves past lines a receiver acknowledged, and never
// past the first chunk of a line still being reassembled nor the first line of a multiline
// event still open, so a restart re-reads (and may re-send) rather than skips.
import type { BackendPlan } from '../lifecycle/options.ts';
import { RateLimitedWarning, log, redact } from '../observability/log.ts';
import { backendDropped, backendMultilineEvents, backendRetries, backendShipped } from '../observability/metrics.ts';
import { LineShaper } from '../shaping/line-shaper.ts';
import type { StorePosition } from '../store/container-store.ts';
import type { StoreView } from '../store/log-reader.ts';
import type { Backend, ContainerContext, OutgoingLine, RetryPolicy } from './backend.ts';
import type { CursorFile } from './cursor.ts';
import { StoreFollower, oldestHeld } from './store-follower.ts';

export const DEFAULT_MAX_DELAY_MS = 200;
export const DEFAULT_RETRY: RetryPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000 };
/** A send that neither resolves nor rejects in this time is aborted and retried. */
export const SEND_TIMEOUT_MS = 60_000;

/** The store a shipper reads: the reader's view, plus where a new cursor starts. */
export interface ShipperStore extends StoreView {
  endPosition(): Promise<StorePosition>;
}

interface Queued {
  line: OutgoingLine;
  /** Where the cursor may go once this line and every one before it is acknowledged. */
  after: StorePosition;
}

const retryWarning = new RateLimitedWarning('delivery: a step failed (see step); retrying after a backoff');
const lostWarning = new RateLimitedWarning('delivery: store entries were gone before a backend shipped them');

/** The delay before retry `attempt` (0-based): doubling, capped, then jittered into [d/2, d]. */
export function retryDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const d = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  return d / 2 + (d / 2) * random();
}

export class Shipper {
  readonly backendName: string;
  readonly containerId: string;
  /**
   * Settles (never rejects) as soon as the loop ends: caught up with no producer left, or
   * stopped. Nothing asynchronous runs between that decision and its reactions, so a
   * StartLogging cannot slip in and find this shipper still listed.
   */
  readonly ended: Promise<void>;
  /** Settles after `ended`, once the backend is closed. */
  readonly done: Promise<void>;
  private readonly plan: BackendPlan;
  private readonly store: ShipperStore;
  private readonly cursor: CursorFile;
  private readonly abort = new AbortController();
  private backend: Backend | null = null;
  private follower: StoreFollower | null = null;
  private readonly shaper: LineShaper<StorePosition>;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private caughtUp = false;
  /** The cursor as last saved. */
  private acked: StorePosition | null = null;

  constructor(store: ShipperStore, plan: BackendPlan, container: ContainerContext, cursor: CursorFile) {
    this.store = store;
    this.plan = plan;
    this.backendName = plan.name;
    this.containerId = container.id;
    this.cursor = cursor;
    this.shaper = new LineShaper(plan, () => backendMultilineEvents.inc({ backend: plan.name }));
    let saved: StorePosition | null = null;
    try {
      saved = cursor.load();
    } catch (err) {
      // At least once: what shipped before may ship again, but nothing is skipped.
      saved = oldestHeld(store);
      log.warn('delivery: unreadable cursor; shipping again from the oldest record held', { file: cursor.path, error: String(err), index: saved.index });
    }
    // Taken now, before this StartLogging's first append, so a new cursor misses nothing.
    const end = saved ? null : store.endPosition();
    end?.catch(() => {}); // retried in run()
    this.ended = this.run(saved, end, container).catch((err: unknown) =>
      log.error('delivery: a shipping loop failed', { container: this.containerId.slice(0, 12), backend: this.backendName, error: redact(String(err)) }),
    );
    this.done = this.ended.then(() => this.close());
  }

  /** Entries not yet acknowledged, and the age of the oldest line waiting. */
  lag(nowNano = BigInt(Date.now()) * 1_000_000n): { entries: number | null; seconds: number } {
    const end = this.follower?.end ?? null;
    const first = this.queue[0];
    const seconds = first ? Math.max(0, Number(nowNano - first.line.timeNano) / 1e9) : 0;
    return { entries: end === null || this.acked === null ? null : Math.max(0, end - this.acked.index), seconds };
  }

  /** Stops at once (plugin shutdown); what was not acknowledged ships after the restart. */
  stop(): Promise<void> {
    this.abort.abort();
    return this.done;
  }

  private async run(saved: StorePosition | null, end: Promise<StorePosition> | null, container: ContainerContext): Promise<void> {
    let firstTry = end;
    const from =
      saved ??
      (await this.retrying('open the store', async () => {
        const position = await (firstTry ?? this.store.endPosition());
        firstTry = null;
        this.cursor.save(position);
        return position;
      }));
    if (from === null) return;
    this.acked = from;
    this.follower = new StoreFollower(this.store, from);
    this.backend = await this.retrying('create the backend', async () => this.plan.create(container));
    if (this.backend === null) return;
    const limits = this.plan.limits;
    const maxDelay = limits.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    let waitingSince: number | null = null;
    while (!this.abort.signal.aborted) {
      const seen = this.store.changeCount();
      if (!this.full()) {
        const read = await this.retrying('read the store', () => this.fill());
        if (read === null) return;
      }
      const live = this.store.isLive();
      // An open multiline event with no new line for its flush timeout ships as it is.
      if (this.caughtUp && live) this.enqueueAll(this.shaper.flushIdle(Date.now()));
      if (this.queue.length > 0 && (this.full() || !this.caughtUp || !live || this.expired(waitingSince, maxDelay))) {
        if (!(await this.sendBatch())) return;
        waitingSince = null;
        continue;
      }
      if (!this.caughtUp) continue;
      if (!live) {
        // The container stopped and everything is read: lines still open are final.
        if (this.flushOpenLines() > 0) continue;
        if (!this.store.isLive()) return;
        continue;
      }
      if (this.queue.length === 0) {
        await this.nextChangeOrDeadline(seen);
        continue;
      }
      // A batch is started: let the store collect more until the delay is up, then read it
      // all at once, rather than reading after every FIFO chunk.
      waitingSince ??= Date.now();
      await sleep(waitingSince + maxDelay - Date.now(), this.abort.signal);
    }
  }

  /** Waits for the store to change, or for the shaper's next flush timeout, or for stop(). */
  private async nextChangeOrDeadline(seen: number): Promise<void> {
    const deadline = this.shaper.nextDeadline();
    if (deadline === null) return this.store.nextChange(seen, this.abort.signal);
    const timeout = AbortSignal.timeout(Math.max(0, deadline - Date.now()));
    await this.store.nextChange(seen, AbortSignal.any([this.abort.signal, timeout]));
  }

  private full(): boolean {
    return this.queue.length >= this.plan.limits.maxLines || this.queuedBytes >= this.plan.limits.maxBytes;
  }

  private expired(since: number | null, maxDelay: number): boolean {
    return since !== null && Date.now() - since >= maxDelay;
  }

  /** Reads what the store holds until a batch is full or the store is caught up. */
  private async fill(): Promise<void> {
    const follower = this.follower!;
    while (!this.full()) {
      const read = await follower.read();
      if (read === null) {
        this.caughtUp = true;
        return;
      }
      this.caughtUp = false;
      if (read.lost) this.countLost(read.lost.count, read.lost.reason);
      const { entries } = read;
      const now = Date.now();
      for (let i = 0; i < entries.length; i++) {
        const { entry, at } = entries[i]!;
        const lines = this.shaper.push(entry, at, now);
        if (lines.length === 0) continue;
        // The record after this one, unless a line or event still open starts earlier.
        const after = this.beforeOpen(entries[i + 1]?.at ?? follower.position);
        for (const line of lines) this.enqueue(line, after);
      }
    }
  }

  private flushOpenLines(): number {
    const lines = this.shaper.flush();
    for (const line of lines) this.enqueue(line, this.follower!.position);
    return lines.length;
  }

  /** Lines the shaper released with nothing newer read: the cursor may pass all it no longer holds. */
  private enqueueAll(lines: readonly OutgoingLine[]): void {
    if (lines.length === 0) return;
    const after = this.beforeOpen(this.follower!.position);
    for (const line of lines) this.enqueue(line, after);
  }

  /** `position`, or the first record of a line or event still open if that comes earlier. */
  private beforeOpen(position: StorePosition): StorePosition {
    let bound = position;
    for (const mark of this.shaper.openMarks()) if (mark.index < bound.index) bound = mark;
    return bound;
  }

  private enqueue(line: OutgoingLine, after: StorePosition): void {
    this.queue.push({ line, after });
    this.queuedBytes += line.line.length + (this.plan.limits.lineOverheadBytes ?? 0);
  }

  private countLost(count: number, reason: 'evicted' | 'damaged'): void {
    backendDropped.inc({ backend: this.backendName, reason }, count);
    lostWarning.warn({ container: this.containerId.slice(0, 12), backend: this.backendName, entries: count, reason });
  }

  /** Sends the head of the queue until the receiver takes it; false if stopped first. */
  private async sendBatch(): Promise<boolean> {
    const { maxLines, maxBytes, lineOverheadBytes = 0 } = this.plan.limits;
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < maxLines) {
      const size = this.queue[n]!.line.line.length + lineOverheadBytes;
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      n++;
    }
    const batch = this.queue.slice(0, n);
    const lines = batch.map((q) => q.line);
    const sent = await this.retrying('send', async () => {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(SEND_TIMEOUT_MS)]);
      await this.backend!.send(lines, signal);
    });
    if (sent === null) return false;
    this.queue = this.queue.slice(n);
    this.queuedBytes -= bytes;
    backendShipped.inc({ backend: this.backendName }, n);
    this.acked = batch.at(-1)!.after;
    try {
      this.cursor.save(this.acked);
    } catch (err) {
      // The lines are shipped; a stale cursor only means they may ship again after a restart.
      log.warn('delivery: could not save a cursor', { file: this.cursor.path, error: String(err) });
    }
    return true;
  }

  /** Runs `step` until it succeeds, backing off between failures; null if stopped first. */
  private async retrying<T>(what: string, step: () => Promise<T>): Promise<T | null> {
    const policy = this.plan.retry ?? DEFAULT_RETRY;
    for (let attempt = 0; ; attempt++) {
      if (this.abort.signal.aborted) return null;
      try {
        return await step();
      } catch (err) {
        if (this.abort.signal.aborted) return null;
        if (what === 'send') backendRetries.inc({ backend: this.backendName });
        const delay = retryDelay(policy, attempt);
        retryWarning.warn({
          container: this.containerId.slice(0, 12),
          backend: this.backendName,
          step: what,
          error: redact(String((err as Error).message)),
          attempt: attempt + 1,
          retryInMs: Math.round(delay),
        });
        await sleep(delay, this.abort.signal);
      }
    }
  }

  private async close(): Promise<void> {
    await this.follower?.close();
    await this.backend?.close().catch((err: unknown) =>
      log.warn('delivery: closing a backend failed', { backend: this.backendName, error: redact(String(err)) }),
    );
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
