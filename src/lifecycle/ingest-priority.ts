// Shipping gives way to FIFO reading, for a bounded time, while the plugin is behind on ingest.
//
// With 50 containers writing at once and shipping to fluentd on 2 cores, the daemon, the plugin
// and the receiver share the CPU, and every FIFO read the plugin makes later than the daemon's
// write is a container blocked on a full pipe: their write time was 1.3-2x json-file's, where
// storing alone keeps up (bench/drivers.ts). Shipping can wait a few seconds; a blocked
// container cannot. So while some FIFO read found its pipe at least half full in the last
// PRESSURE_MS (ingest/pressure.ts: its writer is about to block), every shipper waits a turn.
// As reading catches up the pipes hold less, the signal ends and shipping resumes by itself.
// A steady host's paced reads find a few hundred bytes: it never waits.
//
// Bounded: the waits draw on a budget of BUDGET_MS that refills at REFILL (half of real time),
// so shipping waits at most BUDGET_MS / (1 - REFILL) = 4 s at a stretch and never more than
// half the time over a long run (a container writing flat out for an hour still ships at least
// half the time, and its lag stops growing once shipping outruns half its write rate). What
// waits is in the store on disk, not in memory.
// An earlier gate, shut for up to 10 s whenever FIFOs brought more than 1,000 lines/s, delayed
// every line of a host with a steady 1,000 lines/s: rejected.
import { setShippingYield } from '../delivery/shipper.ts';
import { lastFullReadMs } from '../ingest/pressure.ts';

/** A half-full read this recent (ms) means ingest is still behind. */
const PRESSURE_MS = 50;
/** How long (ms) a shipper waits before it looks again. */
const CHECK_MS = 50;
/** The most waiting (ms) the budget holds... */
const BUDGET_MS = 2000;
/** ...and the share of real time it refills at. */
const REFILL = 0.5;

/**
 * The wait (ms) a shipper takes before its next turn, given the time now and when a read
 * last found its pipe half full (both performance.now() ms).
 */
export function ingestPriority(now: () => number, lastFull: () => number): () => number {
  let budget = BUDGET_MS;
  let last = now();
  /** Until when the last wait handed out runs. */
  let waitEnd = last;
  return () => {
    const t = now();
    const waited = Math.max(0, Math.min(t, waitEnd) - last);
    budget = Math.min(BUDGET_MS, budget + (t - last) * REFILL - waited);
    last = t;
    if (budget < 1 || t - lastFull() > PRESSURE_MS) return 0;
    const wait = Math.min(CHECK_MS, Math.floor(budget));
    // Shippers asking during the same wait share it: the budget is spent once.
    waitEnd = Math.max(waitEnd, t + wait);
    return Math.ceil(waitEnd - t);
  };
}

/** Makes every shipper of this process give way to ingest as above. */
export function prioritizeIngest(): void {
  setShippingYield(ingestPriority(() => performance.now(), lastFullReadMs));
}
