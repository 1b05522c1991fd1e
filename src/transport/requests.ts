// A batch as the requests that carry it, once for every backend: cutting by count and bytes,
// splitting a message at UTF-8 character boundaries, sending the requests in order, and
// telling a result counted in something else (events, entries, datagrams) in lines.
//
// sendInOrder: the first request that fails ends the send: the lines of it and of every
// request after it are told to the engine as lines to send again, so those the receiver
// already has are not sent twice; when it is the first request, its error is the send's
// (and the engine decides, from the error, whether to retry or bisect).
import type { Rejection, SendResult } from '../delivery/backend.ts';

export interface Request<Payload> {
  /** The batch's lines this request carries (indexes in the batch). */
  lines: readonly number[];
  payload: Payload;
}

/**
 * Sends each request in turn. `send` resolves to what became of its lines, in batch
 * indexes (a `retry` without lines: all its lines not rejected).
 */
export async function sendInOrder<Payload>(
  requests: readonly Request<Payload>[],
  send: (request: Request<Payload>) => Promise<SendResult>,
): Promise<SendResult> {
  const results = new BatchResults();
  for (let k = 0; k < requests.length; k++) {
    const request = requests[k]!;
    let result: SendResult;
    try {
      result = await send(request);
    } catch (err) {
      if (k === 0) throw err;
      for (const r of requests.slice(k)) results.again(r.lines);
      results.note(`request ${k + 1} of ${requests.length} failed: ${(err as Error).message}`, undefined);
      break;
    }
    results.add(request, result);
  }
  return results.result();
}

/** The results of a batch's requests, told as one SendResult in the batch's lines. */
class BatchResults {
  private readonly rejected: Rejection[] = [];
  private readonly truncated: number[] = [];
  private readonly lines = new Set<number>();
  private retry: { afterMs?: number; reason: string } | null = null;

  /** Lines to send again. */
  again(lines: readonly number[]): void {
    for (const line of lines) this.lines.add(line);
  }

  /** Why lines go again; the longest Retry-After wins. */
  note(reason: string, afterMs: number | undefined): void {
    this.retry ??= { reason };
    if (afterMs !== undefined && !(afterMs <= (this.retry.afterMs ?? -1))) this.retry.afterMs = afterMs;
  }

  /** What one answered request said of its lines. */
  add(request: Request<unknown>, result: SendResult): void {
    if (result.rejected) this.rejected.push(...result.rejected);
    if (result.truncated) this.truncated.push(...result.truncated);
    if (result.retry) {
      const refused = new Set(result.rejected?.map((r) => r.index));
      this.again(result.retry.lines ?? request.lines.filter((l) => !refused.has(l)));
      this.note(result.retry.reason, result.retry.afterMs);
    }
  }

  result(): SendResult {
    const out: { -readonly [K in keyof SendResult]: SendResult[K] } = {};
    if (this.rejected.length > 0) out.rejected = this.rejected;
    if (this.truncated.length > 0) out.truncated = this.truncated;
    if (this.retry !== null) out.retry = { ...this.retry, lines: [...this.lines].sort((a, b) => a - b) };
    return out;
  }
}

/**
 * Requests of one batch that may be in flight together, per backend: only for services that
 * do not need order on the wire, since a later request may be taken before an earlier one
 * (and stay taken when the earlier one goes again). One request at a time for all others.
 * - elasticsearch: every document carries its `@timestamp` to the nanosecond, which is the
 *   order Kibana and searches show; `create` with the line's own `_id` makes a document sent
 *   twice a 409, not a second copy, whatever the order. (The Elastic clients' bulk helper
 *   sends several bulk requests at once too.) Batches still go one after another.
 * Not splunk: HEC orders events by their `time`, which Docker's format gives in microseconds,
 * so lines of the same microsecond on either side of a request boundary (common from a fast
 * writer) would be indexed in the order the requests happened to arrive; and measured, two in
 * flight shipped no faster than one (bench/delivery-backends.ts, README). Nor awslogs
 * (PutLogEvents wants a stream's events in time order), kafka (a partition is ordered),
 * gcplogs, or the stream protocols.
 */
export const UNORDERED_IN_FLIGHT = { elasticsearch: 2 } as const;

/**
 * Sends the requests with up to `inFlight` of them at once, each started in batch order once
 * one before it is answered. Every request's outcome is kept: the lines of one that failed
 * (or was never started because one before it failed: the receiver is likely down) are told
 * as lines to send again, those of the others as they were answered. When no request got
 * through at all, the first failure is the send's error (the engine decides, from it,
 * whether to retry or bisect), as sendInOrder does. `send` may do the request's encoding
 * too, so that it overlaps the requests already in flight.
 */
export async function sendUnordered<Payload>(
  requests: readonly Request<Payload>[],
  inFlight: number,
  signal: AbortSignal,
  send: (request: Request<Payload>) => Promise<SendResult>,
): Promise<SendResult> {
  // One request: its own result, as it said it (a retry of every line stays one without lines).
  if (requests.length === 1) return send(requests[0]!);
  if (requests.length === 0 || inFlight <= 1) return sendInOrder(requests, send);
  const results: Array<SendResult | { failed: unknown } | undefined> = new Array(requests.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < requests.length && !failed) {
      const k = next++;
      try {
        results[k] = await send(requests[k]!);
      } catch (err) {
        results[k] = { failed: err };
        failed = true; // the others in flight finish; none starts after a failure
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, requests.length) }, worker));
  const failures = results.flatMap((r) => (r !== undefined && 'failed' in r ? [r.failed] : []));
  const answered = results.filter((r) => r !== undefined && !('failed' in r)).length;
  // An abort is the engine's own (it is stopping): it is the send's error, never a result.
  if (answered === 0 || (failures.length > 0 && signal.aborted)) throw failures[0];
  const merged = new BatchResults();
  requests.forEach((request, k) => {
    const result = results[k];
    if (result === undefined || 'failed' in result) {
      merged.again(request.lines);
      if (result !== undefined) {
        const err = result.failed as { message?: string; retryAfterMs?: number };
        merged.note(`request ${k + 1} of ${requests.length} failed: ${err?.message ?? String(err)}`, err?.retryAfterMs);
      }
      return;
    }
    merged.add(request, result);
  });
  return merged.result();
}

/**
 * A result whose indexes count something else (datagrams, events, entries) told in lines:
 * `lineOf[i]` is the line of item i. A line named more than once is named once; one both
 * retried and delivered goes again whole.
 */
export function resultInLines(result: SendResult, lineOf: readonly number[]): SendResult {
  const out: { -readonly [K in keyof SendResult]: SendResult[K] } = {};
  const lines = (items: readonly number[]): number[] => [...new Set(items.map((i) => lineOf[i]!))].sort((a, b) => a - b);
  if (result.rejected) {
    const seen = new Set<number>();
    out.rejected = result.rejected.flatMap((r) => {
      const index = lineOf[r.index]!;
      if (seen.has(index)) return [];
      seen.add(index);
      return [{ ...r, index }];
    });
  }
  if (result.retry) out.retry = { ...result.retry, ...(result.retry.lines ? { lines: lines(result.retry.lines) } : {}) };
  if (result.truncated) out.truncated = lines(result.truncated);
  return out;
}

/** The indexes from `from` to `to` (excluded): the lines of a batch from one on. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export interface CutLimits {
  /** Items per request at most. */
  maxItems?: number;
  /** What an item counts against maxItems, when one item may become several in the request (1 if not given). */
  count?: (index: number) => number;
  /** Bytes per request at most, as `size` counts them; an item over it goes alone. */
  maxBytes: number;
}

/**
 * Items cut into consecutive requests within the limits, in order: each group is the items'
 * indexes. `size(item)` is what the item weighs in a request (its own framing included);
 * `split(prev, item)` may end a request early (CloudWatch's 24-hour span).
 */
export function cutRequests<T>(
  items: readonly T[],
  limits: CutLimits,
  size: (item: T, index: number) => number,
  split?: (first: T, item: T) => boolean,
): number[][] {
  const groups: number[][] = [];
  let group: number[] = [];
  let bytes = 0;
  let counted = 0;
  const maxItems = limits.maxItems ?? Number.MAX_SAFE_INTEGER;
  items.forEach((item, index) => {
    const weight = size(item, index);
    const count = limits.count?.(index) ?? 1;
    if (group.length > 0 && (counted + count > maxItems || bytes + weight > limits.maxBytes || (split !== undefined && split(items[group[0]!]!, item)))) {
      groups.push(group);
      group = [];
      bytes = 0;
      counted = 0;
    }
    group.push(index);
    bytes += weight;
    counted += count;
  });
  if (group.length > 0) groups.push(group);
  return groups;
}

/** Cuts at most `max` bytes, backing off so no UTF-8 sequence is split across pieces. */
export function utf8Pieces(bytes: Buffer, max: number): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  while (bytes.length - start > max) {
    let end = start + max;
    for (let back = 0; back < 3 && (bytes[end]! & 0xc0) === 0x80; back++) end--;
    pieces.push(bytes.subarray(start, end));
    start = end;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

/** A string in pieces of at most maxBytes UTF-8 bytes, never cutting a character; none for ''. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  if (text === '') return [];
  // Most lines are far shorter than any limit: no encoding for them.
  if (text.length * 3 <= maxBytes) return [text];
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return [text];
  return utf8Pieces(bytes, maxBytes).map((piece) => piece.toString('utf8'));
}
