// One backend's delivery loop for one container: store → reassembled lines → batches →
// backend.send, one batch in flight until every line in it is settled (settle.ts: retries,
// bisection), the cursor moving past each settled stretch. Lines refused for good go to the
// dead-letter file and are counted here. Nothing here is awaited by the FIFO path: the
// loop wakes on the store's change events and reads what was written.
//
// At-least-once: the cursor only ever moves past lines a receiver acknowledged or refused
// for good, and never past the first chunk of a line still being reassembled nor the first
// line of a multiline event still open, so a restart re-reads (and may re-send) rather than
// skips. No error ends the loop but shutdown: a step that fails is retried after a backoff.
//
// Lines the shaper filtered out, and (in drop mode) lines over the rate limit, are counted
// and passed: once nothing is queued the cursor moves past them, so they are not lag.
import { RateLimitedWarning, log, redact } from '../observability/log.ts';
import {
  backendDropped,
  backendJsonTooDeep,
  backendMultilineEvents,
  backendRejected,
  backendRetries,
  backendShipped,
  backendTruncated,
  deadLettersDropped,
} from '../observability/metrics.ts';
import type { BackendStatus } from '../observability/status.ts';
import { LineShaper } from '../shaping/line-shaper.ts';
import type { Redactor } from '../shaping/redact.ts';
import type { StorePosition } from '../store/container-store.ts';
import type { StoreView } from '../store/log-reader.ts';
import type { Backend, RetryPolicy, BackendPlan } from './backend.ts';
import type { CursorFile } from './cursor.ts';
import type { DeadLetterFile } from './dead-letters.ts';
import { type Clock, SYSTEM_CLOCK } from './clock.ts';
import { TokenBucket } from './rate-limit.ts';
import { type Setback, type Settled, settleBatch, retryDelay } from './settle.ts';
import { StoreFollower, oldestHeld } from '../store/follower.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';

export const DEFAULT_MAX_DELAY_MS = 200;

/**
 * Lines all shippers together hold in their queues before each stops reading at a batch of
 * what it has (it always may hold one read's worth, so none starves). A queued line costs
 * about 300 bytes of heap beside its bytes; with 50 containers writing at once and fluentd's
 * 10,000-line batches the queues held 500,000 of them and the plugin's RSS went past 300 MB
 * (bench/drivers.ts). One busy container still fills whole batches.
 */
export const QUEUED_LINES_BUDGET = 20_000;
let queuedLinesAll = 0;
export const DEFAULT_RETRY: RetryPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000 };

/**
 * Milliseconds every shipper waits before its next turn; 0 (the default): none. The plugin's
 * start-up sets it (lifecycle/ingest-priority.ts) so shipping gives way to FIFO reading for a
 * bounded time while containers' writes are about to block.
 */
let yieldMs: () => number = () => 0;
export function setShippingYield(fn: () => number): void {
  yieldMs = fn;
}

const earlier = (a: StorePosition, b: StorePosition): boolean => a.index < b.index;

/** The store a shipper reads: the reader's view, plus where a new cursor starts. */
export interface ShipperStore extends StoreView {
  endPosition(): Promise<StorePosition>;
}

const retryWarning = new RateLimitedWarning('delivery: a step failed (see step); retrying after a backoff');
const lostWarning = new RateLimitedWarning('delivery: store entries were gone before a backend shipped them');
const bisectWarning = new RateLimitedWarning(
  'delivery: a batch keeps failing with an error not known to be transient; sending it in halves to find the line at fault',
);
const rejectedWarning = new RateLimitedWarning('delivery: a receiver refused lines for good; they are kept in the dead-letter file');
const deadLetterWarning = new RateLimitedWarning('delivery: could not write rejected lines to the dead-letter file');

const DROP_REASONS = ['evicted', 'damaged', 'filtered', 'rate_limited'] as const;
type DropReason = (typeof DROP_REASONS)[number];
const REJECT_CODES = ['invalid', 'too_large', 'too_old', 'too_new', 'unauthorized', 'encode', 'failed'] as const;

/**
 * Every series of a backend exists from its first loop, at 0: an alert on increase() or a
 * dashboard's rate() then sees the first drop or rejection, and not only the second.
 */
function initSeries(backend: string): void {
  for (const c of [backendShipped, backendRetries, backendTruncated, deadLettersDropped, backendMultilineEvents, backendJsonTooDeep]) c.inc({ backend }, 0);
  for (const reason of DROP_REASONS) backendDropped.inc({ backend, reason }, 0);
  for (const reason of REJECT_CODES) backendRejected.inc({ backend, reason }, 0);
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
  private readonly container: ContainerContext;
  private readonly store: ShipperStore;
  private readonly cursor: CursorFile;
  private readonly deadLetters: DeadLetterFile;
  private readonly abort = new AbortController();
  private backend: Backend | null = null;
  private follower: StoreFollower | null = null;
  private readonly shaper: LineShaper<StorePosition>;
  /**
   * The lines read and not yet settled, in order, and beside each where the cursor may go once
   * it and every line before it is acknowledged. Two arrays, not an object per line: the queue
   * is what lives longest of a line's objects, and each survivor is copied by every scavenge.
   */
  private queue: OutgoingLine[] = [];
  private queueAfter: StorePosition[] = [];
  private queuedBytes = 0;
  private caughtUp = false;
  /** The cursor as last saved. */
  private acked: StorePosition | null = null;
  /** When the batch being collected got its first line. */
  private waitingSince: number | null = null;
  private readonly clock: Clock;
  private readonly bucket: TokenBucket | null;
  private readonly stats = {
    shipped: 0,
    retries: 0,
    deadLetters: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    lastSendMs: null as number | null,
    lastError: null as { atMs: number; message: string } | null,
  };

  /** `redactor`: the container's, null when nothing is masked. */
  constructor(
    store: ShipperStore,
    plan: BackendPlan,
    container: ContainerContext,
    cursor: CursorFile,
    deadLetters: DeadLetterFile,
    clock: Clock = SYSTEM_CLOCK,
    redactor: Redactor | null = null,
  ) {
    this.store = store;
    this.clock = clock;
    this.plan = plan;
    this.container = container;
    this.backendName = plan.name;
    this.containerId = container.id;
    this.cursor = cursor;
    this.deadLetters = deadLetters;
    initSeries(plan.name);
    this.bucket = plan.rateLimit ? new TokenBucket(plan.rateLimit, this.clock.now()) : null;
    this.shaper = new LineShaper(
      plan,
      {
        joined: () => backendMultilineEvents.inc({ backend: plan.name }),
        tooDeep: () => backendJsonTooDeep.inc({ backend: plan.name }),
        filtered: () => this.countDropped('filtered', 1),
      },
      redactor,
    );
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
    this.ended = this.run(saved, end).catch((err: unknown) =>
      log.error('delivery: a shipping loop failed', { container: this.containerId.slice(0, 12), backend: this.backendName, error: redact(String(err)) }),
    );
    this.done = this.ended.then(() => this.close());
  }

  /** Entries not yet acknowledged, and the age of the oldest line waiting. */
  lag(nowNano = BigInt(this.clock.now()) * 1_000_000n): { entries: number | null; seconds: number } {
    const end = this.follower?.end ?? null;
    const first = this.queue[0];
    const seconds = first ? Math.max(0, Number(nowNano - first.timeNano) / 1e9) : 0;
    return { entries: end === null || this.acked === null ? null : Math.max(0, end - this.acked.index), seconds };
  }

  /** What the status page shows of this loop. */
  status(): BackendStatus {
    const { entries, seconds } = this.lag();
    const { lastSendMs, lastError } = this.stats;
    return {
      backend: this.backendName,
      shipped: this.stats.shipped,
      lagEntries: entries,
      lagSeconds: seconds,
      lastSendAt: lastSendMs === null ? null : new Date(lastSendMs).toISOString(),
      lastError: lastError && { at: new Date(lastError.atMs).toISOString(), message: lastError.message },
      retries: this.stats.retries,
      deadLetters: this.stats.deadLetters,
      dropped: { ...this.stats.dropped },
    };
  }

  /** Stops at once (plugin shutdown); what was not acknowledged ships after the restart. */
  stop(): Promise<void> {
    this.abort.abort();
    return this.done;
  }

  private async run(saved: StorePosition | null, end: Promise<StorePosition> | null): Promise<void> {
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
    for (let failures = 0; !this.abort.signal.aborted; ) {
      try {
        if (await this.step()) return;
        failures = 0;
      } catch (err) {
        // A step that has no failure of its own to expect threw: the loop goes on after a
        // backoff rather than stopping this backend for good.
        if (this.abort.signal.aborted) return;
        const delay = retryDelay(this.plan.retry ?? DEFAULT_RETRY, failures++);
        this.noteError(String(err));
        retryWarning.warn({ ...this.who(), step: 'ship', error: redact(String(err)), attempt: failures, retryInMs: Math.round(delay) });
        await this.clock.sleep(delay, this.abort.signal);
      }
    }
  }

  /** One turn of the loop: read, maybe send, maybe wait. True once there is nothing more to ship. */
  private async step(): Promise<boolean> {
    const wait = yieldMs();
    if (wait > 0) {
      await this.clock.sleep(wait, this.abort.signal);
      return false;
    }
    const maxDelay = this.plan.limits.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    const seen = this.store.changeCount();
    if (!this.full()) {
      const read = await this.retrying('read the store', () => this.fill());
      if (read === null) return true;
    }
    if (this.queue.length === 0) this.passSkipped();
    const live = this.store.isLive();
    // An open multiline event with no new line for its flush timeout ships as it is.
    if (this.caughtUp && live) this.enqueueAll(this.shaper.flushIdle(this.clock.now()));
    if (this.queue.length > 0 && (this.full() || !this.caughtUp || !live || this.expired(maxDelay))) {
      if (!(await this.sendBatch())) return true;
      this.waitingSince = null;
      return false;
    }
    if (!this.caughtUp) return false;
    if (!live) {
      // The container stopped and everything is read: lines still open are final.
      if (this.flushOpenLines() > 0) return false;
      // Appends that landed with the producer's exit, after the follower's last snapshot, are
      // read in another turn rather than left for the next plugin start.
      return !this.store.isLive() && this.store.changeCount() === seen;
    }
    if (this.queue.length === 0) {
      await this.nextChangeOrDeadline(seen);
      return false;
    }
    // A batch is started: let the store collect more until the delay is up, then read it
    // all at once, rather than reading after every FIFO chunk.
    this.waitingSince ??= this.clock.now();
    await this.clock.sleep(this.waitingSince + maxDelay - this.clock.now(), this.abort.signal);
    return false;
  }

  /** Waits for the store to change, or for the shaper's next flush timeout, or for stop(). */
  private async nextChangeOrDeadline(seen: number): Promise<void> {
    const deadline = this.shaper.nextDeadline();
    if (deadline === null) return this.store.nextChange(seen, this.abort.signal);
    // Whole milliseconds: AbortSignal.timeout throws on a fraction.
    const timeout = this.clock.timeout(Math.max(0, Math.ceil(deadline - this.clock.now())));
    await this.store.nextChange(seen, AbortSignal.any([this.abort.signal, timeout]));
  }

  private full(): boolean {
    return (
      this.queue.length >= this.plan.limits.maxLines ||
      this.queuedBytes >= this.plan.limits.maxBytes ||
      (this.queue.length > 0 && queuedLinesAll >= QUEUED_LINES_BUDGET)
    );
  }

  private expired(maxDelay: number): boolean {
    return this.waitingSince !== null && this.clock.now() - this.waitingSince >= maxDelay;
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
      const { entries, at } = read;
      const now = this.clock.now();
      const queue = this.queue;
      for (let i = 0; i < entries.length; i++) {
        // Straight onto the queue: an array per entry, or one emptied and filled again (which
        // frees and makes its storage each time), cost more than the rest of the loop.
        const from = queue.length;
        this.shaper.pushTo(entries[i]!, at[i]!, now, queue);
        if (queue.length === from) continue;
        // The record after this one, unless a line or event still open starts earlier.
        this.enqueued(from, this.beforeOpen(at[i + 1] ?? follower.position));
      }
    }
  }

  /**
   * With nothing queued, the cursor may pass what was read: lines filtered out or dropped
   * over the rate limit are not lag, and a restart need not read them again.
   */
  private passSkipped(): void {
    if (this.acked === null || this.follower === null) return;
    const position = this.beforeOpen(this.follower.position);
    if (position.index > this.acked.index) this.saveCursor(position);
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
    return this.shaper.earliestOpen(position, earlier);
  }

  private enqueue(line: OutgoingLine, after: StorePosition): void {
    this.queue.push(line);
    this.enqueued(this.queue.length - 1, after);
  }

  /** Counts in the lines put on the queue from `from` on, each to let the cursor go to `after`; drops those over a rate limit in drop mode. */
  private enqueued(from: number, after: StorePosition): void {
    const queue = this.queue;
    const drop = this.plan.rateLimit?.mode === 'drop';
    const overhead = this.plan.limits.lineOverheadBytes ?? 0;
    let kept = from;
    for (let i = from; i < queue.length; i++) {
      const line = queue[i]!;
      if (drop && !this.bucket!.tryTake(line.line.length, this.clock.now())) {
        this.countDropped('rate_limited', 1);
        continue;
      }
      queue[kept++] = line;
      this.queueAfter.push(after);
      queuedLinesAll++;
      this.queuedBytes += line.line.length + overhead;
    }
    if (kept < queue.length) queue.length = kept;
  }

  private countDropped(reason: DropReason, count: number): void {
    backendDropped.inc({ backend: this.backendName, reason }, count);
    this.stats.dropped[reason] += count;
  }

  private countLost(count: number, reason: 'evicted' | 'damaged'): void {
    this.countDropped(reason, count);
    lostWarning.warn({ container: this.containerId.slice(0, 12), backend: this.backendName, entries: count, reason });
  }

  /** Sends the head of the queue until every line of it is settled; false if stopped first. */
  private async sendBatch(): Promise<boolean> {
    // Made at the first line to send, not before: a plugin starting with 2,000 stores whose
    // lines all shipped opens no connection for them (a backend may dial in create()).
    this.backend ??= await this.retrying('create the backend', async () => this.plan.create(this.container));
    if (this.backend === null) return false;
    const { maxLines, maxBytes, lineOverheadBytes = 0 } = this.plan.limits;
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < maxLines) {
      const size = this.queue[n]!.line.length + lineOverheadBytes;
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      n++;
    }
    if (this.plan.rateLimit?.mode === 'wait') {
      // Above the rate the queue stays full, so fill() reads no further: the lines wait in the store.
      const allowed = await this.paced(n);
      if (allowed === null) return false;
      for (; n > allowed; n--) bytes -= this.queue[n - 1]!.line.length + lineOverheadBytes;
    }
    const batch = this.queue.slice(0, n);
    const after = this.queueAfter;
    const done = new Uint8Array(n);
    let prefix = 0;
    const settled = await settleBatch(
      batch,
      {
        send: (lines, signal) => this.backend!.send(lines, signal),
        policy: this.plan.retry ?? DEFAULT_RETRY,
        clock: this.clock,
        stop: this.abort.signal,
        settled: (s) => {
          this.count(s, batch);
          for (const i of s.delivered) done[i] = 1;
          for (const r of s.rejected) done[r.index] = 1;
          const before = prefix;
          while (prefix < n && done[prefix]) prefix++;
          if (prefix > before) this.saveCursor(after[prefix - 1]!);
        },
        setback: (s) => this.setback(s),
      },
    );
    if (!settled) return false;
    this.queue = this.queue.slice(n);
    this.queueAfter = this.queueAfter.slice(n);
    queuedLinesAll -= n;
    this.queuedBytes -= bytes;
    return true;
  }

  /** How many of the first `n` queued lines the rate limit lets go, after waiting if need be; null if stopped. */
  private async paced(n: number): Promise<number | null> {
    for (;;) {
      const allowed = this.bucket!.take((i) => this.queue[i]!.line.length, n, this.clock.now());
      if (allowed > 0) return allowed;
      await this.clock.sleep(-allowed, this.abort.signal);
      if (this.abort.signal.aborted) return null;
    }
  }

  /** Counts what a send settled and keeps the rejected lines in the dead-letter file. */
  private count({ delivered, rejected, truncated }: Settled, batch: readonly OutgoingLine[]): void {
    const backend = this.backendName;
    if (delivered.length > 0) {
      backendShipped.inc({ backend }, delivered.length);
      this.stats.shipped += delivered.length;
      this.stats.lastSendMs = this.clock.now();
    }
    if (truncated.length > 0) backendTruncated.inc({ backend }, truncated.length);
    if (rejected.length === 0) return;
    for (const r of rejected) backendRejected.inc({ backend, reason: r.code });
    this.stats.deadLetters += rejected.length;
    const first = rejected[0]!;
    rejectedWarning.warn({ ...this.who(), lines: rejected.length, code: first.code, reason: redact(first.reason), file: this.deadLetters.path });
    try {
      const dropped = this.deadLetters.append(rejected.map((r) => ({ line: batch[r.index]!, code: r.code, reason: redact(r.reason) })));
      if (dropped > 0) deadLettersDropped.inc({ backend }, dropped);
    } catch (err) {
      deadLetterWarning.warn({ ...this.who(), lines: rejected.length, file: this.deadLetters.path, error: String(err) });
    }
  }

  private setback(s: Setback): void {
    backendRetries.inc({ backend: this.backendName });
    this.stats.retries++;
    this.noteError(s.reason);
    if (s.kind === 'bisect') {
      bisectWarning.warn({ ...this.who(), error: redact(s.reason), lines: s.lines });
      return;
    }
    retryWarning.warn({
      ...this.who(),
      step: s.kind === 'retry' ? 'send (lines the receiver asked to have again)' : 'send',
      error: redact(s.reason),
      lines: s.lines,
      attempt: s.attempt,
      retryInMs: Math.round(s.delayMs),
    });
  }

  private saveCursor(position: StorePosition): void {
    this.acked = position;
    try {
      this.cursor.save(position);
    } catch (err) {
      // The lines are settled; a stale cursor only means they may ship again after a restart.
      log.warn('delivery: could not save a cursor', { file: this.cursor.path, error: String(err) });
    }
  }

  private noteError(message: string): void {
    this.stats.lastError = { atMs: this.clock.now(), message: redact(message) };
  }

  private who(): { container: string; backend: string } {
    return { container: this.containerId.slice(0, 12), backend: this.backendName };
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
        const delay = retryDelay(policy, attempt);
        this.noteError(`${what}: ${(err as Error).message}`);
        retryWarning.warn({ ...this.who(), step: what, error: redact(String((err as Error).message)), attempt: attempt + 1, retryInMs: Math.round(delay) });
        await this.clock.sleep(delay, this.abort.signal);
      }
    }
  }

  private async close(): Promise<void> {
    queuedLinesAll -= this.queue.length;
    this.queue = [];
    this.queueAfter = [];
    await this.follower?.close();
    await this.backend?.close().catch((err: unknown) =>
      log.warn('delivery: closing a backend failed', { backend: this.backendName, error: redact(String(err)) }),
    );
  }
}
