// The outage workload the backend tests share: a container prints 1..LINES, paced, while a
// receiver is down or refusing, and every line must still arrive, in order.
import assert from 'node:assert/strict';
import { sh } from './containers.ts';

export const LINES = 100_000;

/** 100,000 lines over about 10 s: ten bursts of 10,000, a second apart. */
export const PACED = sh(`i=0; while [ $i -lt 10 ]; do seq $((i*10000+1)) $((i*10000+10000)); i=$((i+1)); sleep 1; done`);

/**
 * Checks that 1..LINES all arrived and, counting each line at its first arrival, in order.
 * Returns how many arrived more than once (a batch resent after a failure) and how many
 * arrived after a later line (only allowed where the receiver itself may reorder).
 */
export function checkSequence(lines: readonly string[], strictOrder = true): { duplicates: number; reordered: number } {
  const seen = new Set<number>();
  let duplicates = 0;
  let reordered = 0;
  let highest = 0;
  for (const text of lines) {
    const n = Number(text);
    if (seen.has(n)) {
      duplicates++;
      continue;
    }
    if (n !== highest + 1) {
      assert.ok(!strictOrder, `line ${highest + 1} expected next, got '${text}'`);
      if (n < highest) reordered++;
    }
    seen.add(n);
    highest = Math.max(highest, n);
  }
  for (let n = 1; n <= LINES; n++) assert.ok(seen.has(n), `line ${n} never arrived`);
  assert.equal(seen.size, LINES, `${LINES} distinct lines expected, got ${seen.size}`);
  return { duplicates, reordered };
}
