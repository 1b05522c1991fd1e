// Time as the delivery engine sees it: the batch delay, backoffs, the send timeout and the
// multiline flush timeout all read it, so tests drive them with a fake clock instead of
// sleeping, and assert on exact times instead of wall-clock bounds.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** A signal that aborts with a TimeoutError after `ms` (whole milliseconds). */
  timeout(ms: number): AbortSignal;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
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
  },
  timeout: (ms) => AbortSignal.timeout(ms),
};
