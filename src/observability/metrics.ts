// The plugin's Prometheus series. Counters are incremented where things happen, once per
// batch; gauges that describe live state are read at scrape time from the sources that
// main.ts registers, so nothing is kept up to date between scrapes.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';

export const metricsRegistry = new Registry();
const registers = [metricsRegistry];

export const linesReceived = new Counter({
  name: 'logship_lines_received_total',
  help: 'Log entries read from the containers\' FIFOs (each 16 KiB chunk of a long line counts once).',
  registers,
});

export const linesStored = new Counter({
  name: 'logship_lines_stored_total',
  help: 'Log entries written to the local stores.',
  registers,
});

export const linesDropped = new Counter({
  name: 'logship_lines_dropped_total',
  help: 'Log entries lost before the local store: corrupt (undecodable frame) or store_error (the write failed).',
  labelNames: ['reason'] as const,
  registers,
});

// At 0 from the start, so increase() in an alert sees the first loss.
for (const reason of ['corrupt', 'store_error']) linesDropped.inc({ reason }, 0);

export const fifoBytesSkipped = new Counter({
  name: 'logship_fifo_bytes_skipped_total',
  help: 'Bytes skipped to find a frame boundary again, or left in a FIFO that ended mid-frame.',
  registers,
});

export const fifosResumed = new Counter({
  name: 'logship_fifos_resumed_total',
  help: 'FIFOs read again after a plugin restart (crash, or disable and enable).',
  registers,
});

export const segmentsEvicted = new Counter({
  name: 'logship_store_segments_evicted_total',
  help: 'Rotated segments removed to keep all stores within DISK_QUOTA.',
  registers,
});

export const storesRemoved = new Counter({
  name: 'logship_stores_removed_total',
  help: 'Stores of containers gone for longer than RETENTION, removed with their files.',
  registers,
});

export const bytesFreed = new Counter({
  name: 'logship_store_bytes_freed_total',
  help: 'Bytes freed on disk by quota eviction and retention.',
  labelNames: ['reason'] as const,
  registers,
});

export const backendShipped = new Counter({
  name: 'logship_backend_lines_shipped_total',
  help: 'Lines a backend\'s receiver acknowledged (after reassembly of partial chunks).',
  labelNames: ['backend'] as const,
  registers,
});

export const backendMultilineEvents = new Counter({
  name: 'logship_backend_multiline_events_total',
  help: 'Multiline events formed for a backend (two lines or more joined by the multiline log-opts); formed again when re-read after a restart.',
  labelNames: ['backend'] as const,
  registers,
});

export const backendRetries = new Counter({
  name: 'logship_backend_retries_total',
  help: 'Failed sends of a batch, each retried after a backoff.',
  labelNames: ['backend'] as const,
  registers,
});

export const backendDropped = new Counter({
  name: 'logship_backend_lines_dropped_total',
  help: 'Store entries or lines a backend never shipped: evicted (rotation or quota removed them first), damaged (unreadable segment), filtered (ship-streams, drop-pattern, keep-pattern) or rate_limited (rate-limit-mode=drop).',
  labelNames: ['backend', 'reason'] as const,
  registers,
});

export const backendRejected = new Counter({
  name: 'logship_backend_lines_rejected_total',
  help: 'Lines a backend\'s receiver refused for good, by the backend\'s reason code (invalid, too_large, too_old, too_new, unauthorized, encode, failed); each is kept in the container\'s dead-letter file.',
  labelNames: ['backend', 'reason'] as const,
  registers,
});

export const deadLettersDropped = new Counter({
  name: 'logship_backend_dead_letters_dropped_total',
  help: 'Dead-letter records removed, oldest first, to keep a container\'s dead-letter file of a backend within its size cap.',
  labelNames: ['backend'] as const,
  registers,
});

export const backendTruncated = new Counter({
  name: 'logship_backend_lines_truncated_total',
  help: 'Lines delivered cut short to fit the transport (syslog over udp or unixgram: one datagram).',
  labelNames: ['backend'] as const,
  registers,
});

export const backendJsonTooDeep = new Counter({
  name: 'logship_backend_json_too_deep_total',
  help: 'parse-json lines shipped as plain text, without fields, because their JSON nests deeper than the bound every backend can encode.',
  labelNames: ['backend'] as const,
  registers,
});

export interface BackendLag {
  backend: string;
  /** Store entries not yet acknowledged, when the store's end is known. */
  entries: number | null;
  /** Age of the oldest line not yet acknowledged; 0 when caught up. */
  seconds: number;
}

export interface LiveSources {
  lag(): Iterable<BackendLag>;
  storeBytes(): number;
  openContainers(): number;
}

let sources: LiveSources = { lag: () => [], storeBytes: () => 0, openContainers: () => 0 };

/** Where the scrape-time gauges read from; main.ts points them at the registry. */
export function setLiveSources(live: LiveSources): void {
  sources = live;
}

new Gauge({
  name: 'logship_backend_lag_entries',
  help: 'Store entries not yet shipped, summed over the containers of each backend.',
  labelNames: ['backend'] as const,
  registers,
  collect() {
    this.reset();
    const sums = new Map<string, number>();
    for (const { backend, entries } of sources.lag()) sums.set(backend, (sums.get(backend) ?? 0) + (entries ?? 0));
    for (const [backend, n] of sums) this.set({ backend }, n);
  },
});

new Gauge({
  name: 'logship_backend_lag_seconds',
  help: 'Age of the oldest line not yet shipped, the maximum over the containers of each backend.',
  labelNames: ['backend'] as const,
  registers,
  collect() {
    this.reset();
    const max = new Map<string, number>();
    for (const { backend, seconds } of sources.lag()) max.set(backend, Math.max(max.get(backend) ?? 0, seconds));
    for (const [backend, s] of max) this.set({ backend }, s);
  },
});

new Gauge({
  name: 'logship_store_bytes',
  help: 'Bytes held by the stores of the open containers (uncompressed size of their records).',
  registers,
  collect() {
    this.set(sources.storeBytes());
  },
});

new Gauge({
  name: 'logship_open_containers',
  help: 'Containers with an open store: logging, read by docker logs, or still shipping.',
  registers,
  collect() {
    this.set(sources.openContainers());
  },
});

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

new Gauge({
  name: 'logship_event_loop_delay_seconds',
  help: 'Event-loop delay since the previous scrape: p50, p99 and max.',
  labelNames: ['stat'] as const,
  registers,
  collect() {
    this.set({ stat: 'p50' }, loopDelay.percentile(50) / 1e9);
    this.set({ stat: 'p99' }, loopDelay.percentile(99) / 1e9);
    this.set({ stat: 'max' }, loopDelay.max / 1e9);
    loopDelay.reset();
  },
});

/** A counter's total over all its label values: for tests and the plugin's own summaries. */
export async function counterTotal(counter: Counter<string>): Promise<number> {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0);
}
