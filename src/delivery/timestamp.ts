// Times as backends write them into their records.

/** RFC 3339 with nanoseconds, as Go's time.RFC3339Nano prints UTC (trailing zeros dropped). */
export function rfc3339Nano(timeNano: bigint): string {
  const base = new Date(Number(timeNano / 1_000_000n)).toISOString().slice(0, 19);
  const fraction = String(timeNano % 1_000_000_000n).padStart(9, '0').replace(/0+$/, '');
  return base + (fraction === '' ? '' : '.' + fraction) + 'Z';
}
