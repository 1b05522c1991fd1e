// Sending one batch until every line in it is settled: delivered, or rejected for good.
// What a send resolves to says which lines to send again (only those go again, in order)
// and which the receiver refused. A send that throws failed as a whole: a transient error
// is retried as it is, with backoff, forever; any other error is not the receiver's state
// but something in the batch, so a batch that keeps failing with one is sent in halves, in
// order (halves delivered are not sent again), until the line that fails alone is found.
// That line is rejected only after it failed alone twice with a backoff between, so a
// passing glitch rejects nothing; the rest ships.
import { type Rejection, type RejectCode, type RetryPolicy, type SendResult, SendError, isTransient } from './backend.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import type { Clock } from './clock.ts';

/** A send that neither resolves nor rejects in this time is aborted and retried. */
export const SEND_TIMEOUT_MS = 60_000;
/**
 * The longest a receiver's own delay (Retry-After, throttling) is honoured: one asking for
 * more is asked again after this long, as its quota may be back sooner.
 */
export const RETRY_AFTER_CAP_MS = 60_000;

/** The delay before retry `attempt` (0-based): doubling, capped, then jittered into [d/2, d]. */
export function retryDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const d = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  return d / 2 + (d / 2) * random();
}

/** What one send settled, by index in the batch. */
export interface Settled {
  delivered: number[];
  rejected: Rejection[];
  truncated: number[];
}

/** Why a send will be followed by another after `delayMs` (0: at once, for bisection). */
export interface Setback {
  kind: 'failed' | 'retry' | 'bisect';
  /** The error's message or the backend's reason. */
  reason: string;
  /** Lines of the batch still to settle. */
  lines: number;
  attempt: number;
  delayMs: number;
}

export interface SettleLink {
  send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult>;
  policy: RetryPolicy;
  clock: Clock;
  /** Plugin shutdown: stop where we are. */
  stop: AbortSignal;
  /** After each send that settled lines, before the next. */
  settled(settled: Settled): void;
  /** After each send that leaves lines to send again. */
  setback(setback: Setback): void;
}

interface Piece {
  /** Indexes in the batch, ascending. */
  lines: number[];
  /** Failures with errors not known to be transient, in a row. */
  failures: number;
  /** Made by bisection: something in the batch is known to fail, so it is split at its first failure. */
  suspect: boolean;
}

/** Sends `batch` until every line is delivered or rejected; false if stopped first. */
export async function settleBatch(batch: readonly OutgoingLine[], link: SettleLink): Promise<boolean> {
  const pieces: Piece[] = [{ lines: batch.map((_, i) => i), failures: 0, suspect: false }];
  let attempt = 0;
  while (pieces.length > 0) {
    if (link.stop.aborted) return false;
    const piece = pieces[0]!;
    let result: SendResult;
    try {
      const signal = AbortSignal.any([link.stop, link.clock.timeout(SEND_TIMEOUT_MS)]);
      // The whole batch, as long as nothing of it settled apart: no copy of it per send.
      result = await link.send(piece.lines.length === batch.length ? batch : piece.lines.map((i) => batch[i]!), signal);
    } catch (err) {
      if (link.stop.aborted) return false;
      const reason = messageOf(err);
      if (isTransient(err)) {
        const delayMs = backoff(link.policy, attempt, err instanceof SendError ? err.retryAfterMs : undefined);
        link.setback({ kind: 'failed', reason, lines: remaining(pieces), attempt: ++attempt, delayMs });
        await link.clock.sleep(delayMs, link.stop);
        continue;
      }
      piece.failures++;
      if (piece.lines.length === 1 && piece.failures >= 2) {
        pieces.shift();
        link.settled({ delivered: [], rejected: [{ index: piece.lines[0]!, code: rejectCode(err), reason }], truncated: [] });
        attempt = 0;
        continue;
      }
      if (piece.lines.length > 1 && piece.failures >= (piece.suspect ? 1 : 2)) {
        const half = Math.ceil(piece.lines.length / 2);
        pieces.splice(0, 1, { lines: piece.lines.slice(0, half), failures: 0, suspect: true }, { lines: piece.lines.slice(half), failures: 0, suspect: true });
        link.setback({ kind: 'bisect', reason, lines: remaining(pieces), attempt, delayMs: 0 });
        continue;
      }
      const delayMs = backoff(link.policy, attempt, undefined);
      link.setback({ kind: 'failed', reason, lines: remaining(pieces), attempt: ++attempt, delayMs });
      await link.clock.sleep(delayMs, link.stop);
      continue;
    }
    const { settled, again } = apply(piece.lines, result);
    if (settled.delivered.length + settled.rejected.length > 0) link.settled(settled);
    if (again.length === 0) {
      pieces.shift();
      attempt = 0;
      continue;
    }
    // Only what the receiver asked to have again goes again; it failed nothing, so it is
    // not a step of a bisection.
    piece.lines = again;
    piece.failures = 0;
    const delayMs = backoff(link.policy, attempt, result.retry?.afterMs);
    link.setback({ kind: 'retry', reason: result.retry?.reason ?? '', lines: remaining(pieces), attempt: ++attempt, delayMs });
    await link.clock.sleep(delayMs, link.stop);
  }
  return true;
}

/** A send's result, in batch indexes: what it settled and what goes again. Indexes out of range are ignored. */
function apply(sent: number[], result: SendResult): { settled: Settled; again: number[] } {
  // Most sends: every line delivered, nothing to look up.
  if (!result.retry && !result.rejected?.length && !result.truncated?.length) {
    return { settled: { delivered: sent, rejected: [], truncated: [] }, again: [] };
  }
  const at = (i: number): number | undefined => (Number.isInteger(i) && i >= 0 && i < sent.length ? sent[i] : undefined);
  const rejected: Rejection[] = [];
  const done = new Set<number>();
  for (const r of result.rejected ?? []) {
    const index = at(r.index);
    if (index === undefined || done.has(index)) continue;
    done.add(index);
    rejected.push({ index, code: r.code, reason: r.reason });
  }
  const again: number[] = [];
  if (result.retry) {
    const asked = result.retry.lines === undefined ? sent.map((_, i) => i) : result.retry.lines;
    for (const i of asked) {
      const index = at(i);
      if (index === undefined || done.has(index)) continue;
      done.add(index);
      again.push(index);
    }
    again.sort((a, b) => a - b);
  }
  const delivered = sent.filter((index) => !done.has(index));
  const truncated: number[] = [];
  for (const i of result.truncated ?? []) {
    const index = at(i);
    if (index !== undefined && delivered.includes(index)) truncated.push(index);
  }
  return { settled: { delivered, rejected, truncated }, again };
}

function remaining(pieces: readonly Piece[]): number {
  return pieces.reduce((n, p) => n + p.lines.length, 0);
}

/** The engine's backoff, or the receiver's own delay when it asked for longer (capped). */
function backoff(policy: RetryPolicy, attempt: number, askedMs: number | undefined): number {
  const own = retryDelay(policy, attempt);
  return askedMs === undefined || !(askedMs > own) ? own : Math.min(askedMs, RETRY_AFTER_CAP_MS);
}

function rejectCode(err: unknown): RejectCode {
  return err instanceof SendError && err.rejectCode !== undefined ? err.rejectCode : 'failed';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
