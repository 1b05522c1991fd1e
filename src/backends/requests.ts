// A batch some backends send as several requests, in order: CloudWatch's puts, Cloud
// Logging's writes and Elasticsearch's bulk bodies each have a size the batch can pass.
// The first request that fails ends the send: the lines of it and of every request after
// it are told to the engine as lines to send again, so those the receiver already has are
// not sent twice; when it is the first request, its error is the send's (and the engine
// decides, from the error, whether to retry or bisect).
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
  const rejected: Rejection[] = [];
  const truncated: number[] = [];
  const again = new Set<number>();
  let retry: { afterMs?: number; reason: string } | null = null;
  const note = (reason: string, afterMs: number | undefined): void => {
    retry ??= { reason };
    if (afterMs !== undefined && !(afterMs <= (retry.afterMs ?? -1))) retry.afterMs = afterMs;
  };
  for (let k = 0; k < requests.length; k++) {
    const request = requests[k]!;
    let result: SendResult;
    try {
      result = await send(request);
    } catch (err) {
      if (k === 0) throw err;
      for (const r of requests.slice(k)) for (const line of r.lines) again.add(line);
      note(`request ${k + 1} of ${requests.length} failed: ${(err as Error).message}`, undefined);
      break;
    }
    if (result.rejected) rejected.push(...result.rejected);
    if (result.truncated) truncated.push(...result.truncated);
    if (result.retry) {
      const refused = new Set(result.rejected?.map((r) => r.index));
      for (const line of result.retry.lines ?? request.lines.filter((l) => !refused.has(l))) again.add(line);
      note(result.retry.reason, result.retry.afterMs);
    }
  }
  const out: { -readonly [K in keyof SendResult]: SendResult[K] } = {};
  if (rejected.length > 0) out.rejected = rejected;
  if (truncated.length > 0) out.truncated = truncated;
  if (retry !== null) out.retry = { ...(retry as { afterMs?: number; reason: string }), lines: [...again].sort((a, b) => a - b) };
  return out;
}
