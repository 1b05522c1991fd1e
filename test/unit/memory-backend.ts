// An in-memory backend for tests of the delivery engine (and of anything above it): it keeps
// what it was sent, and can be down, stuck or failing on demand, so the engine's batching,
// retry, ordering and restarts are tested without a receiver or a wire format.
import { type Backend, type SendResult, SendError } from '../../src/delivery/backend.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

/** A receiver in memory: takes batches, or fails them while `down`, or never answers while `stuck`. */
export class MemoryBackend implements Backend {
  readonly batches: OutgoingLine[][] = [];
  attempts = 0;
  down = false;
  stuck = false;
  /** Fail this many sends, then accept. */
  failures = 0;
  private waiters: (() => void)[] = [];

  send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    this.attempts++;
    if (this.stuck) return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    if (this.down || this.failures > 0) {
      this.failures = Math.max(0, this.failures - 1);
      return Promise.reject(new SendError('connection refused', { transient: true }));
    }
    this.batches.push([...lines]);
    for (const w of this.waiters.splice(0)) w();
    return Promise.resolve({});
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  get lines(): string[] {
    return this.batches.flat().map((l) => l.line.toString());
  }

  /** Resolves once `n` lines in all have been taken. */
  async received(n: number): Promise<void> {
    while (this.lines.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
