// The plugin's own log: one JSON object per line on stdout/stderr. The daemon copies
// stdout into its log at info level and stderr at error level, tagged with the plugin id.

export type Level = 'debug' | 'info' | 'warn' | 'error';

const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLevel(value: string): value is Level {
  return value in rank;
}

let threshold = rank.info;

export function setLevel(level: Level): void {
  threshold = rank[level];
}

export type Fields = Record<string, string | number | bigint | boolean | null | undefined>;

function write(level: Level, msg: string, fields: Fields): void {
  if (rank[level] < threshold) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
  (rank[level] >= rank.warn ? process.stderr : process.stdout).write(line + '\n');
}

export const log = {
  debug: (msg: string, fields: Fields = {}) => write('debug', msg, fields),
  info: (msg: string, fields: Fields = {}) => write('info', msg, fields),
  warn: (msg: string, fields: Fields = {}) => write('warn', msg, fields),
  error: (msg: string, fields: Fields = {}) => write('error', msg, fields),
};

/**
 * An error text fit for the log: credentials in URLs (`scheme://user:secret@host`) masked.
 * Backend errors quote addresses, and an address may carry a password.
 */
export function redact(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
}

/**
 * Logs at most one warning per interval for a recurring condition, carrying how many
 * times it happened in between, so a flood of bad frames cannot flood the daemon's log.
 */
export class RateLimitedWarning {
  private suppressed = 0;
  private lastAt = 0;
  private readonly msg: string;
  private readonly intervalMs: number;

  constructor(msg: string, intervalMs = 10_000) {
    this.msg = msg;
    this.intervalMs = intervalMs;
  }

  warn(fields: Fields = {}): void {
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    log.warn(this.msg, { ...fields, suppressed: this.suppressed });
    this.suppressed = 0;
    this.lastAt = now;
  }
}
