// A plugin's process as the host sees it: found by the plugin's id, its memory and CPU in /proc.
import fs from 'node:fs';
import { docker } from '../test/e2e/lib/docker-client.ts';

/** The plugin's process on this host: the one whose cgroup is named after the plugin's id. */
export class PluginProcess {
  readonly pid: number;

  private constructor(pid: number) {
    this.pid = pid;
  }

  static async find(name: string): Promise<PluginProcess> {
    const { Id: id } = (await docker.getPlugin(name, undefined).inspect()) as { Id: string };
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(id)) return new PluginProcess(Number(entry));
      } catch {
        // the process ended meanwhile
      }
    }
    throw new Error(`no process found for plugin ${name} (${id.slice(0, 12)}); is it enabled?`);
  }

  private statusKb(field: string): number {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    if (!m) throw new Error(`no ${field} in /proc/${this.pid}/status`);
    return Number(m[1]);
  }

  /** Resident set now, MB. */
  rssMb(): number {
    return this.statusKb('VmRSS') / 1024;
  }

  /** Peak resident set since the last resetPeak(), MB. */
  peakMb(): number {
    return this.statusKb('VmHWM') / 1024;
  }

  /** CPU seconds used so far, all threads (utime + stime; the kernel counts in 1/100 s). */
  cpuSeconds(): number {
    const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** Open file descriptors now, and the process's soft limit on them. */
  files(): { open: number; limit: number } {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${this.pid}/limits`, 'utf8'));
    return { open: fs.readdirSync(`/proc/${this.pid}/fd`).length, limit: Number(m?.[1] ?? NaN) };
  }

  resetPeak(): void {
    fs.writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
  }
}

/** The plugin's VmRSS every `intervalMs` from now until stop(): its peak, more than VmHWM's one figure. */
export class RssSampler {
  private readonly timer: NodeJS.Timeout;
  peakMb = 0;

  constructor(plugin: PluginProcess, intervalMs: number) {
    const sample = () => {
      this.peakMb = Math.max(this.peakMb, plugin.rssMb());
    };
    sample();
    this.timer = setInterval(sample, intervalMs);
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peakMb;
  }
}
