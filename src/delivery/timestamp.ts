// Times as backends write them into their records.

let lastSecond = -1n;
let lastBase = '';

/** RFC 3339 with nanoseconds, as Go's time.RFC3339Nano prints UTC (trailing zeros dropped). */
export function rfc3339Nano(timeNano: bigint): string {
  const second = timeNano / 1_000_000_000n;
  // Lines of a batch mostly share their second: its text is made once (toISOString was ~4% of elasticsearch's shipping CPU).
  if (second !== lastSecond) {
    lastSecond = second;
    lastBase = new Date(Number(second) * 1000).toISOString().slice(0, 19);
  }
  const base = lastBase;
  const fraction = String(timeNano % 1_000_000_000n).padStart(9, '0').replace(/0+$/, '');
  return base + (fraction === '' ? '' : '.' + fraction) + 'Z';
}
