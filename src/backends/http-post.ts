// One HTTP(S) POST of a ready body, for the backends that speak plain HTTP (loki, otlp), on
// node:http with a keep-alive agent per backend instance: TLS from the backend's options, a
// proxy when one is given (Node's own proxy support in the agent), a per-request timeout
// beside the engine's abort. Nothing is retried here: the answer's status is classified
// into a SendError (statusError) and the engine decides.
//
// Stands in for transport/http.ts of issue 12 until that lands; the backends use only
// HttpTarget, post and statusError, so the port is one import.
import http from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import { type RejectCode, SendError } from '../delivery/backend.ts';
import { abortError, retryAfterMs } from './connection.ts';

export interface HttpTarget {
  url: URL;
  tls: tls.ConnectionOptions;
  /** `http://host:port` of a forward proxy, or null (no proxy: the plugin's env is not read). */
  proxy: string | null;
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Answers are read up to this much: a receiver's error text, or an OTLP export response. */
const MAX_ANSWER_BYTES = 1 << 20;

export class HttpPoster {
  private readonly target: HttpTarget;
  private readonly agent: http.Agent;

  constructor(target: HttpTarget) {
    this.target = target;
    const proxyEnv = target.proxy === null ? undefined : { HTTP_PROXY: target.proxy, HTTPS_PROXY: target.proxy };
    this.agent =
      target.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, ...target.tls, ...(proxyEnv ? { proxyEnv } : {}) })
        : new http.Agent({ keepAlive: true, ...(proxyEnv ? { proxyEnv } : {}) });
  }

  /** Resolves with any answer the receiver gives; rejects (transient) when there is none. */
  post(body: Buffer, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<HttpAnswer> {
    signal.throwIfAborted();
    const url = this.target.url;
    const request = url.protocol === 'https:' ? https.request : http.request;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const timeout = AbortSignal.timeout(this.target.timeoutMs);
      const both = AbortSignal.any([signal, timeout]);
      const req = request(url, {
        method: 'POST',
        agent: this.agent,
        headers: { ...headers, 'content-length': String(body.length) },
        signal: both,
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(this.failure(err, signal, timeout)));
      });
      req.on('error', (err) => reject(this.failure(err, signal, timeout)));
      req.end(body);
    });
  }

  private failure(err: Error, signal: AbortSignal, timeout: AbortSignal): SendError {
    if (signal.aborted) return abortError(signal);
    const why = timeout.aborted ? `no answer within ${this.target.timeoutMs} ms` : err.message;
    return new SendError(`POST ${this.target.url.origin}${this.target.url.pathname}: ${why}`, { transient: true, cause: err });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * A non-2xx answer as the SendError the engine acts on: 429, 5xx and 408 are the receiver's
 * state, and so are 401, 403 and 404, which an operator fixes (credentials, tenant, address)
 * without touching the lines: transient, after Retry-After when given. Any other 4xx names
 * the request as bad: not transient, so the engine sends it in halves down to the line,
 * which it dead-letters with `rejectCode` (413: too_large; otherwise the backend's reading
 * of the answer, `invalid` by default).
 */
export function statusError(service: string, answer: HttpAnswer, rejectCode: RejectCode = 'invalid'): SendError {
  const status = answer.status;
  const transient = status === 408 || status === 429 || status >= 500 || status === 401 || status === 403 || status === 404 || status < 400;
  const afterMs = retryAfterMs(headerText(answer.headers['retry-after']));
  const text = answerText(answer);
  return new SendError(`${service}: HTTP ${status}${text ? `: ${text}` : ''}`, {
    transient,
    ...(afterMs === undefined ? {} : { retryAfterMs: afterMs }),
    ...(transient ? {} : { rejectCode: status === 413 ? 'too_large' : rejectCode }),
  });
}

/** The start of an answer's body as one line of text, for an error message. */
export function answerText(answer: HttpAnswer): string {
  return answer.body.subarray(0, 300).toString('utf8').replace(/\s+/g, ' ').trim();
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
