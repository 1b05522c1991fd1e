// The HTTP client of every HTTP backend, on undici: one keep-alive pool per backend
// instance, a deadline per request, the engine's abort, TLS from log-opts, a proxy from the
// plugin's HTTP_PROXY / HTTPS_PROXY / NO_PROXY settings (handed in, never read from the
// environment here), gzip request bodies, and the answer classified into the delivery
// outcomes: 2xx delivered; 429, 408, 5xx (and 3xx: a moved receiver is the operator's to
// fix) transient, with Retry-After honoured; any other 4xx a SendError that is not
// transient, so the engine sends the batch in halves to find the line.
import type tls from 'node:tls';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { EnvHttpProxyAgent } from 'undici';
import { type ProxySettings, type RejectCode, SendError, abortError } from '../delivery/backend.ts';

const gzip = promisify(gzipCallback);

export const NO_PROXY: ProxySettings = Object.freeze({ httpProxy: '', httpsProxy: '', noProxy: '' });

export interface HttpClientOptions {
  /** For messages: `elasticsearch: POST https://host/_bulk answered 400 ...`. */
  name: string;
  /** The server's certificate checks and the client certificate (transport/tls.ts). */
  tls?: tls.ConnectionOptions;
  proxy?: ProxySettings;
  /** Default deadline of one request, from sending to the end of the answer: 30 s. */
  timeoutMs?: number;
  /** Connections kept per origin (default 2: the engine sends once at a time per backend). */
  connections?: number;
  /** Statuses under 500 that are the receiver's state, not the request's (401 until a key is fixed). */
  transientStatuses?: readonly number[];
}

export interface HttpRequest {
  url: URL | string;
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  headers?: Readonly<Record<string, string>>;
  body?: Buffer | string;
  /** Send the body gzip-compressed (Content-Encoding: gzip). */
  gzip?: boolean;
  /** This request's deadline instead of the client's. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; a repeated header joined by ', '. */
  headers: Readonly<Record<string, string>>;
  body: Buffer;
  /** `METHOD origin/path` as messages name the request (never its query: it may hold a token). */
  where: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Longer than most receivers' idle limits are short (nginx 75 s, ELB 60 s): the pool closes first. */
const KEEP_ALIVE_MS = 20_000;

export class HttpClient {
  private readonly options: HttpClientOptions;
  private agent: EnvHttpProxyAgent | null = null;

  constructor(options: HttpClientOptions) {
    this.options = options;
  }

  /**
   * One request, its answer read whole, whatever its status. Throws a transient SendError
   * when no answer came (connection, DNS, TLS, the deadline) and the engine's abort error
   * when `signal` aborted.
   */
  async request(request: HttpRequest, signal: AbortSignal): Promise<HttpResponse> {
    signal.throwIfAborted();
    const url = typeof request.url === 'string' ? new URL(request.url) : request.url;
    const method = request.method ?? (request.body === undefined ? 'GET' : 'POST');
    const where = `${method} ${url.origin}${url.pathname}`;
    const timeoutMs = request.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = AbortSignal.timeout(timeoutMs);
    const headers: Record<string, string> = { ...request.headers };
    let body = request.body;
    if (body !== undefined && request.gzip) {
      body = await gzip(body);
      headers['content-encoding'] = 'gzip';
    }
    try {
      const response = await this.dispatcher().request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any([signal, deadline]),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      const flat: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
      }
      return { status: response.statusCode, headers: flat, body: bytes, where };
    } catch (err) {
      if (signal.aborted) throw abortError(signal);
      if (deadline.aborted) {
        throw new SendError(`${this.options.name}: ${where} timed out after ${timeoutMs} ms`, { transient: true, cause: err });
      }
      // undici says "fetch failed"-like words on the error and the reason on its cause.
      const cause = (err as Error).cause as Error | undefined;
      const detail = [(err as Error).message, cause?.message].filter(Boolean).join(': ');
      throw new SendError(`${this.options.name}: ${where} failed: ${detail}`, { transient: true, cause: err });
    }
  }

  /**
   * A request whose answer must be 2xx: resolves to it, or throws the SendError its status
   * means (see classifyResponse). `reason` says what the refusal's body means, for the
   * message (never the lines' content, never a secret); by default its first 300 characters.
   */
  async send(request: HttpRequest, signal: AbortSignal, reason?: (response: HttpResponse) => string): Promise<HttpResponse> {
    const response = await this.request(request, signal);
    const failure = classifyResponse(response, this.options, reason);
    if (failure) throw failure;
    return response;
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = null;
    await agent?.destroy();
  }

  private dispatcher(): EnvHttpProxyAgent {
    // Explicit values (possibly ''): undici reads the environment only for what is left undefined.
    const proxy = this.options.proxy ?? NO_PROXY;
    const tlsOptions = tlsFields(this.options.tls ?? {});
    this.agent ??= new EnvHttpProxyAgent({
      httpProxy: proxy.httpProxy,
      httpsProxy: proxy.httpsProxy,
      noProxy: proxy.noProxy,
      connect: { ...tlsOptions, timeout: 10_000 },
      // Through a proxy, the tunnel's TLS to the receiver.
      requestTls: tlsOptions,
      connections: this.options.connections ?? 2,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
    });
    return this.agent;
  }
}

/** The TLS fields transport/tls.ts sets, as undici's connector takes them. */
function tlsFields(options: tls.ConnectionOptions): { ca?: tls.ConnectionOptions['ca']; cert?: tls.ConnectionOptions['cert']; key?: tls.ConnectionOptions['key']; rejectUnauthorized?: boolean; servername?: string } {
  const out: ReturnType<typeof tlsFields> = {};
  if (options.ca !== undefined) out.ca = options.ca;
  if (options.cert !== undefined) out.cert = options.cert;
  if (options.key !== undefined) out.key = options.key;
  if (options.rejectUnauthorized !== undefined) out.rejectUnauthorized = options.rejectUnauthorized;
  if (options.servername !== undefined) out.servername = options.servername;
  return out;
}

/**
 * What an answer means for the batch it carried: null for 2xx; otherwise the SendError to
 * throw. 429, 408, 5xx, 3xx and `transientStatuses` are transient (Retry-After kept); any
 * other 4xx is the request's fault (413: too_large, else invalid).
 */
export function classifyResponse(
  response: HttpResponse,
  options: Pick<HttpClientOptions, 'name' | 'transientStatuses'>,
  reason?: (response: HttpResponse) => string,
): SendError | null {
  const { status } = response;
  if (status >= 200 && status < 300) return null;
  const transient = isTransientStatus(status) || (options.transientStatuses?.includes(status) ?? false);
  const said = reason ? reason(response) : response.body.toString('utf8', 0, Math.min(response.body.length, 1200)).slice(0, 300).trim();
  const afterMs = retryAfterMs(response.headers['retry-after']);
  const rejectCode: RejectCode = status === 413 ? 'too_large' : 'invalid';
  return new SendError(`${options.name}: ${response.where} answered ${status}${said ? `: ${said}` : ''}`, {
    transient,
    ...(transient && afterMs !== undefined ? { retryAfterMs: afterMs } : {}),
    ...(transient ? {} : { rejectCode }),
  });
}

/** Statuses that say the receiver is busy, slow or failing, or elsewhere: never the request's fault. */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500 || status < 400;
}

/**
 * Seconds or an HTTP date, as a Retry-After header gives them, in milliseconds from `now`;
 * undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
