// A fluentd forward-protocol receiver that only counts records per tag: the benchmark's backend.
// Keeping what it receives would grow this process by a million records per phase and cost the
// machine CPU that the plugin and the daemon are being measured with.
import { FluentServer } from '@fluent-org/logger';

export class FluentCounter extends FluentServer {
  readonly perTag = new Map<string, number>();
  total = 0;
  private waiter: { count: number; resolve: () => void } | null = null;

  constructor(port: number) {
    super({ listenOptions: { host: '127.0.0.1', port } });
  }

  protected override onEntry(tag: string): void {
    this.perTag.set(tag, (this.perTag.get(tag) ?? 0) + 1);
    this.total++;
    if (this.waiter && this.total >= this.waiter.count) {
      this.waiter.resolve();
      this.waiter = null;
    }
  }

  reset(): void {
    this.perTag.clear();
    this.total = 0;
  }

  /** Resolves true once `count` records arrived in all, false after `timeoutMs` without them. */
  async waitFor(count: number, timeoutMs: number): Promise<boolean> {
    if (this.total >= count) return true;
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<boolean>((resolve) => {
      this.waiter = { count, resolve: () => resolve(true) };
    });
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([arrived, late]);
    } finally {
      clearTimeout(timer);
      this.waiter = null;
    }
  }
}
