// The delivery engine: per container, one Shipper per selected backend, each with its own
// cursor and dead-letter file, so a slow or unreachable receiver delays only its own backend. The registry
// says what to ship; a shipper holds its store open until it has caught up with a
// container that stopped, then lets the registry release it.
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../observability/log.ts';
import type { BackendLag } from '../observability/metrics.ts';
import type { BackendStatus } from '../observability/status.ts';
import type { Redactor } from '../shaping/redact.ts';
import type { ContainerStore } from '../store/container-store.ts';
import { STORE_DIR_MODE } from '../store/segments.ts';
import { type Clock, SYSTEM_CLOCK } from './clock.ts';
import { CursorFile } from './cursor.ts';
import { DeadLetterFile } from './dead-letters.ts';
import { Shipper } from './shipper.ts';
import type { BackendPlan } from './backend.ts';
import type { ContainerContext } from '../shaping/container.ts';

export class Delivery {
  /** Container id → backend name → its shipper. */
  private readonly shippers = new Map<string, Map<string, Shipper>>();
  private readonly onReleased: (containerId: string) => void;
  private readonly clock: Clock;

  constructor(onReleased: (containerId: string) => void, clock: Clock = SYSTEM_CLOCK) {
    this.onReleased = onReleased;
    this.clock = clock;
  }

  /** Starts shipping each planned backend that is not already shipping this container. */
  /** `redactor`: the container's (redact-env's values bound in), null when nothing is masked. */
  ensure(store: ContainerStore, plans: readonly BackendPlan[], container: ContainerContext, redactor: Redactor | null = null): void {
    let mine = this.shippers.get(container.id);
    if (!mine) this.shippers.set(container.id, (mine = new Map()));
    for (const plan of plans) {
      if (mine.has(plan.name)) continue;
      store.attachConsumer();
      const shipper = new Shipper(
        store,
        plan,
        container,
        new CursorFile(store.dir, plan.name, () => store.syncData()),
        new DeadLetterFile(store.dir, plan.name),
        this.clock,
        redactor,
      );
      mine.set(plan.name, shipper);
      void shipper.ended.then(() => {
        mine.delete(plan.name);
        if (mine.size === 0 && this.shippers.get(container.id) === mine) this.shippers.delete(container.id);
      });
      void shipper.done.then(() => {
        store.detachConsumer();
        this.onReleased(container.id);
      });
    }
    if (mine.size === 0) this.shippers.delete(container.id);
  }

  *lag(): Iterable<BackendLag> {
    for (const mine of this.shippers.values()) {
      for (const shipper of mine.values()) yield { backend: shipper.backendName, ...shipper.lag() };
    }
  }

  /** The status of each backend shipping this container. */
  status(containerId: string): BackendStatus[] {
    return [...(this.shippers.get(containerId)?.values() ?? [])].map((s) => s.status());
  }

  /** Stops every loop where it is; cursors on disk say where to resume. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.shippers.values()].flatMap((mine) => [...mine.values()].map((s) => s.stop())));
  }
}

// What a restarted plugin needs to resume shipping a container no StartLogging will
// announce again (it stopped while the plugin was down): its log-opts and context.
// Kept beside the store, readable by root only: log-opts may hold credentials.
const STATE_FILE = 'delivery.json';

export interface DeliveryState {
  config: Record<string, string>;
  container: ContainerContext;
  /** The container's env entries redact-env names (secrets, as the log-opts may be). */
  env?: string[] | undefined;
}

export function saveDeliveryState(storeDir: string, state: DeliveryState): void {
  fs.mkdirSync(storeDir, { recursive: true, mode: STORE_DIR_MODE });
  const file = path.join(storeDir, STATE_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ version: 1, ...state }), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

export function loadDeliveryState(storeDir: string): DeliveryState | null {
  try {
    const json = JSON.parse(fs.readFileSync(path.join(storeDir, STATE_FILE), 'utf8')) as DeliveryState;
    return { config: json.config, container: json.container, env: json.env };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn('delivery: unreadable delivery state', { dir: storeDir, error: String(err) });
    }
    return null;
  }
}
