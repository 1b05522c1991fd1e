// A fluentd forward-protocol receiver that only counts records per tag: the benchmark's backend.
// Keeping what it receives would grow this process by a million records per phase and cost the
// machine CPU that the plugin and the daemon are being measured with.
//
// FluentCounterProcess runs it in a child process, so that the CPU it spends decoding what
// logship ships is its own figure (read in /proc), not mixed with the bench's Docker API calls,
// and its event loop does not compete with the bench's timers. The child is driven over IPC:
//   node bench/fluent-counter.ts PORT
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
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

const SELF = fileURLToPath(import.meta.url);

type Request = { op: 'reset' } | { op: 'wait'; count: number; timeoutMs: number } | { op: 'counts' } | { op: 'close' };
interface Counts {
  total: number;
  perTag: [string, number][];
}

/** A FluentCounter in a child process of its own; the same questions, asked over IPC. */
export class FluentCounterProcess {
  private readonly child: ChildProcess;
  /** The counts as of the last waitFor() or counts(). */
  total = 0;
  perTag = new Map<string, number>();
  /** Replies in the order the requests went (the child answers one at a time, in order). */
  private readonly pending: ((reply: unknown) => void)[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (reply) => this.pending.shift()?.(reply));
  }

  static async start(port: number): Promise<FluentCounterProcess> {
    const child = fork(SELF, [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [ready] = (await once(child, 'message')) as [string];
    if (ready !== 'listening') throw new Error(`fluent counter: ${ready}`);
    return new FluentCounterProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  private ask<T>(request: Request): Promise<T> {
    return new Promise((resolve) => {
      this.pending.push(resolve as (reply: unknown) => void);
      this.child.send(request);
    });
  }

  private take(counts: Counts): void {
    this.total = counts.total;
    this.perTag = new Map(counts.perTag);
  }

  async reset(): Promise<void> {
    await this.ask({ op: 'reset' });
    this.total = 0;
    this.perTag = new Map();
  }

  async waitFor(count: number, timeoutMs: number): Promise<boolean> {
    const { arrived, counts } = await this.ask<{ arrived: boolean; counts: Counts }>({ op: 'wait', count, timeoutMs });
    this.take(counts);
    return arrived;
  }

  async counts(): Promise<void> {
    this.take(await this.ask<Counts>({ op: 'counts' }));
  }

  async close(): Promise<void> {
    await this.ask({ op: 'close' });
    await once(this.child, 'exit');
  }
}

if (process.argv[1] === SELF) {
  const counter = new FluentCounter(Number(process.argv[2]));
  const counts = (): Counts => ({ total: counter.total, perTag: [...counter.perTag] });
  const send = (reply: unknown) => process.send!(reply);
  // One request at a time, in order: a wait's reply comes before the next request's.
  let turn: Promise<unknown> = Promise.resolve();
  process.on('message', (request: Request) => {
    turn = turn.then(async () => {
      switch (request.op) {
        case 'reset':
          counter.reset();
          return send('ok');
        case 'wait':
          return send({ arrived: await counter.waitFor(request.count, request.timeoutMs), counts: counts() });
        case 'counts':
          return send(counts());
        case 'close':
          await counter.close();
          send('ok');
          return process.disconnect();
      }
    });
  });
  counter.listen().then(
    () => send('listening'),
    (err: unknown) => {
      send(String(err));
      process.exit(1);
    },
  );
}
