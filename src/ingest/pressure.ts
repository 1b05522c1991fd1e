// When a FIFO read last found its pipe at least half full: the daemon's writer for that
// container is about to block on it (a full pipe blocks the container's write(2)), so the
// plugin is behind on ingest. One figure for the whole process, read by lifecycle's
// ingest priority (ingest-priority.ts) to let shipping give way to reading for a moment.
// A steady host's paced reads (fifo-reader.ts) find a few hundred bytes and never set it.

let lastFullMs = -Infinity;

/** A read brought `bytes` out of a pipe of `capacity`. */
export function noteRead(bytes: number, capacity: number): void {
  if (bytes * 2 >= capacity) lastFullMs = performance.now();
}

/** When (performance.now()) a read last found its pipe at least half full; -Infinity if none did. */
export function lastFullReadMs(): number {
  return lastFullMs;
}
