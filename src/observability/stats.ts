// Plugin-wide counters of what went wrong or was thrown away, for the plugin's log now and a
// metrics endpoint later: plain numbers that only grow, in one object easy to expose.

export interface Counters {
  /** Lines read from a FIFO that could not be stored (disk full, I/O error). */
  linesDropped: number;
  /** Frames whose payload is not a daemon LogEntry. */
  framesCorrupt: number;
  /** Bytes skipped to find a frame boundary again, or left in a FIFO that ended mid-frame. */
  bytesSkipped: number;
  /** FIFOs read again after a plugin restart. */
  fifosResumed: number;
  /** Rotated segments removed to keep the data folder within DISK_QUOTA. */
  segmentsEvicted: number;
  bytesEvicted: number;
  /** Stores of containers gone for longer than RETENTION, removed with their files. */
  storesRemoved: number;
  bytesRemoved: number;
}

export const counters: Counters = {
  linesDropped: 0,
  framesCorrupt: 0,
  bytesSkipped: 0,
  fifosResumed: 0,
  segmentsEvicted: 0,
  bytesEvicted: 0,
  storesRemoved: 0,
  bytesRemoved: 0,
};
