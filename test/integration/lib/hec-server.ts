// A Splunk HTTP Event Collector on loopback for the backend tests (no Splunk here,
// backends.md §1), with HEC's documented behaviour: `Authorization: Splunk <token>` (401
// code 2 without it, 403 code 4 with another), `OPTIONS` answered 200 (Docker's check),
// `POST /services/collector/event[/1.0]` with events back to back, gzip bodies, `index`
// checked against the token's allowed indexes (400 code 7), an event without `event` or a
// blank one refused (400 codes 12, 13, `invalid-event-number`), and indexer acknowledgment:
// with acks on, a request needs `X-Splunk-Request-Channel` (400 code 10), is answered with
// an `ackId` per channel, and `POST /services/collector/ack` says which are indexed: here
// only after `ackDelayMs`. Faults to inject: requests answered 503 code 9 (busy), events a
// rule refuses as 400 code 6 (invalid data format, naming the event), acks never granted.
// A refused request stores none of its events.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';

export interface HecEvent {
  event: unknown;
  time?: string;
  host?: string;
  source?: string;
  sourcetype?: string;
  index?: string;
  fields?: unknown;
}

export interface Stored extends HecEvent {
  channel: string | null;
}

export interface HecRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  status: number;
  events: number;
}

export interface HecOptions {
  port?: number;
  token: string;
  /** Indexes the token may write; empty: any. */
  indexes?: string[];
  acks?: boolean;
  ackDelayMs?: number;
  tls?: { cert: string; key: string };
}

export class HecServer {
  readonly events: Stored[] = [];
  readonly requests: HecRequest[] = [];
  readonly violations: string[] = [];
  token: string;
  ackDelayMs: number;
  /** Whether acknowledgments are granted at all (false: a lost batch). */
  grantAcks = true;
  private readonly options: HecOptions;
  private server: http.Server | null = null;
  private port: number;
  private busy: { count: number; retryAfter?: number } = { count: 0 };
  private refuse: ((event: HecEvent) => boolean) | null = null;
  private readonly channels = new Map<string, { next: number; acked: Map<number, number> }>();
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(options: HecOptions) {
    this.options = options;
    this.token = options.token;
    this.port = options.port ?? 0;
    this.ackDelayMs = options.ackDelayMs ?? 0;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** The next `count` requests are answered 503, code 9 (server is busy). */
  failNext(count: number, retryAfterSeconds?: number): void {
    this.busy = { count, ...(retryAfterSeconds === undefined ? {} : { retryAfter: retryAfterSeconds }) };
  }

  /** Acknowledgments issued and not yet polled as granted. */
  get pendingAcks(): number {
    let n = 0;
    for (const state of this.channels.values()) n += state.acked.size;
    return n;
  }

  get pendingFailures(): number {
    return this.busy.count;
  }

  /** Events `rule` picks make their request fail with 400 code 6, naming the first of them. */
  refuseEvents(rule: ((event: HecEvent) => boolean) | null): void {
    this.refuse = rule;
  }

  async listen(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.handle(req, res);
    const server = this.options.tls
      ? https.createServer({ cert: fs.readFileSync(this.options.tls.cert), key: fs.readFileSync(this.options.tls.key) }, handler)
      : http.createServer(handler);
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Gone: the port closed and every connection cut (what it stored stays). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    const record: HecRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, status: 0, events: 0 };
    this.requests.push(record);
    const answer = (status: number, reply: object, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
      res.end(JSON.stringify(reply));
    };
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'OPTIONS') return answer(200, { text: 'Success', code: 0 });
    if (req.method !== 'POST' || (path !== '/services/collector/event/1.0' && path !== '/services/collector/event' && path !== '/services/collector/ack')) {
      return answer(404, { text: 'The requested URL was not found on this server.', code: 404 });
    }
    const auth = req.headers.authorization;
    if (auth === undefined) return answer(401, { text: 'Token is required', code: 2 });
    if (auth !== `Splunk ${this.token}`) return answer(403, { text: 'Invalid token', code: 4 });
    if (this.busy.count > 0) {
      this.busy.count--;
      return answer(503, { text: 'Server is busy', code: 9 }, this.busy.retryAfter === undefined ? {} : { 'retry-after': String(this.busy.retryAfter) });
    }
    const channel = (req.headers['x-splunk-request-channel'] as string | undefined) ?? new URL(req.url ?? '/', 'http://x').searchParams.get('channel');
    if (path === '/services/collector/ack') return this.ack(channel, body, answer);
    if (this.options.acks && !channel) return answer(400, { text: 'Data channel is missing', code: 10 });
    if (req.headers['content-encoding'] === 'gzip') {
      try {
        body = zlib.gunzipSync(body);
      } catch {
        return answer(400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 });
      }
    }
    const events = parseConcatenated(body.toString('utf8'));
    if (events === null) return answer(400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 });
    if (events.length === 0) return answer(400, { text: 'No data', code: 5 });
    for (const [i, event] of events.entries()) {
      if (!('event' in event)) return answer(400, { text: 'Event field is required', code: 12, 'invalid-event-number': i });
      if (event.event === '' || event.event === null) return answer(400, { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': i });
      const allowed = this.options.indexes ?? [];
      if (event.index !== undefined && allowed.length > 0 && !allowed.includes(event.index)) return answer(400, { text: 'Incorrect index', code: 7, 'invalid-event-number': i });
      if (this.refuse?.(event)) return answer(400, { text: 'Invalid data format', code: 6, 'invalid-event-number': i });
      if (event.time !== undefined && !/^\d+\.\d{6}$/.test(event.time)) this.violations.push(`time ${event.time}: not Docker's seconds with six decimals`);
    }
    record.events = events.length;
    for (const event of events) this.events.push({ ...event, channel });
    if (!this.options.acks) return answer(200, { text: 'Success', code: 0 });
    const state = this.channels.get(channel!) ?? { next: 0, acked: new Map<number, number>() };
    this.channels.set(channel!, state);
    const ackId = state.next++;
    state.acked.set(ackId, Date.now() + this.ackDelayMs);
    return answer(200, { text: 'Success', code: 0, ackId });
  }

  private ack(channel: string | null, body: Buffer, answer: (status: number, reply: object) => void): void {
    if (!this.options.acks) return answer(400, { text: 'ACK is disabled', code: 14 });
    if (!channel) return answer(400, { text: 'Data channel is missing', code: 10 });
    const state = this.channels.get(channel);
    if (!state) return answer(400, { text: 'Invalid data channel', code: 11 });
    let ids: unknown;
    try {
      ids = (JSON.parse(body.toString('utf8')) as { acks?: unknown }).acks;
    } catch {
      ids = undefined;
    }
    if (!Array.isArray(ids)) return answer(400, { text: 'Invalid data format', code: 6 });
    const acks: Record<string, boolean> = {};
    for (const id of ids as number[]) {
      const at = state.acked.get(id);
      acks[String(id)] = this.grantAcks && at !== undefined && Date.now() >= at;
      if (acks[String(id)]) state.acked.delete(id);
    }
    answer(200, { acks });
  }
}

/** JSON objects back to back (blanks between them allowed), or null when it is not that. */
function parseConcatenated(text: string): HecEvent[] | null {
  const events: HecEvent[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) {
        try {
          events.push(JSON.parse(text.slice(start, i + 1)) as HecEvent);
        } catch {
          return null;
        }
      }
    } else if (depth === 0 && !/\s/.test(c!)) return null;
  }
  return depth === 0 ? events : null;
}
