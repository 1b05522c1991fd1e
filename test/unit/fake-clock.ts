// A Clock (src/delivery/clock.ts) that moves only when a test moves it: the engine's batch
// delay, backoffs, send timeout and multiline flush timeout fire at exact times, with no
// sleeping and no wall-clock bounds to assert.
import type { Clock } from '../../src/delivery/clock.ts';

interface Timer {
  at: number;
  /** A sleep (the engine waits on it) or a timeout (a bound on something else it waits for). */
  kind: 'sleep' | 'timeout';
  fire(): void;
}

export class FakeClock implements Clock {
  private time: number;
  private timers: Timer[] = [];
  private waiters: (() => void)[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = this.add(ms, 'sleep', () => {
        signal.removeEventListener('abort', cancel);
        resolve();
      });
      const cancel = (): void => {
        this.timers = this.timers.filter((t) => t !== timer);
        resolve();
      };
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  timeout(ms: number): AbortSignal {
    const controller = new AbortController();
    this.add(ms, 'timeout', () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')));
    return controller.signal;
  }

  /** The due times of the timers set and not yet fired, soonest first. */
  get pending(): number[] {
    return this.timers.map((t) => t.at).sort((a, b) => a - b);
  }

  /** Resolves once a timer is due at `at` (the engine is waiting for that moment). */
  async waitForTimerAt(at: number): Promise<void> {
    while (!this.timers.some((t) => t.at === at)) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** The due time of the soonest sleep, once the engine is in one (a backoff, the batch delay). */
  async nextSleep(): Promise<number> {
    for (;;) {
      const due = this.timers.filter((t) => t.kind === 'sleep').map((t) => t.at);
      if (due.length > 0) return Math.min(...due);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Moves time on by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = Math.max(this.time, next.at);
      next.fire();
    }
    this.time = until;
  }

  private add(ms: number, kind: Timer['kind'], fire: () => void): Timer {
    const timer = { at: this.time + Math.max(0, ms), kind, fire };
    this.timers.push(timer);
    for (const w of this.waiters.splice(0)) w();
    return timer;
  }
}
