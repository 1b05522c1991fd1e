// Gives the memory of a burst back to the system once the plugin is quiet again.
//
// After 50 containers had written 20,000 lines each (shipped to fluentd), the plugin stayed at
// 130-140 MB for minutes where it had started at 90 MB, although what was live after the load
// was ~13 MB of heap: V8 keeps the pages it freed in a pool for the next allocations, and its
// own memory reducer had not run 10 s later. An ordinary full collection shrinks the heap but
// keeps that pool; only a "last resort" collection (what V8 does on a low-memory notification)
// releases it (a 120 MB churn test: 127 -> 58 MB resident). So when the process goes from busy to
// quiet, and has grown since the last such collection, it runs one: a few full GCs of a small
// live heap (its duration is logged at debug level), once per burst, never under load. It needs `--expose-gc` (config.json);
// without it (tests, bench/pipeline.ts) this does nothing.
import { log } from '../observability/log.ts';

const INTERVAL_MS = 1000;
/** CPU share (of one core) over an interval above which the process is busy... */
const BUSY_SHARE = 0.2;
/** ...and below which, after being busy, it is quiet. */
const QUIET_SHARE = 0.05;
/** Growth in resident memory since the last collection that makes one worth running. */
const GROWTH_BYTES = 16 * 2 ** 20;

export function releaseMemoryAfterBursts(): void {
  const gc = globalThis.gc;
  if (typeof gc !== 'function') return;
  let cpu = process.cpuUsage();
  let busy = false;
  let settledRss = process.memoryUsage.rss();
  setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const share = (used.user + used.system) / 1000 / INTERVAL_MS;
    if (share > BUSY_SHARE) {
      busy = true;
      return;
    }
    if (!busy || share > QUIET_SHARE) return;
    busy = false;
    const before = process.memoryUsage.rss();
    if (before - settledRss < GROWTH_BYTES) return;
    const t0 = performance.now();
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    settledRss = process.memoryUsage.rss();
    log.debug('memory given back after a burst', { rssMb: Math.round(before / 2 ** 20), nowMb: Math.round(settledRss / 2 ** 20), ms: Math.round(performance.now() - t0) });
  }, INTERVAL_MS).unref();
}
