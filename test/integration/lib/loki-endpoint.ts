// A Loki push endpoint on loopback for the backend tests: POST /loki/api/v1/push with
// Loki's own semantics for what logship depends on. Bodies: protobuf compressed with snappy's
// block format (Content-Type application/x-protobuf), or JSON (optionally gzip), decoded as
// Loki does; the tenant (X-Scope-OrgID) required when configured (401 "no org id", as Loki's
// auth middleware); label selectors parsed strictly (names, quoting, duplicates: 400 as Loki).
// Per stream, as Loki's defaults (unordered_writes): an entry more than an hour older than the
// stream's newest is refused "entry too far behind", one of the same time and line as one it
// has is dropped silently (Loki's dedup), older than the reject window is refused "timestamp
// too old", past the grace period "timestamp too new", past max_line_size "max entry size":
// the valid entries of the push are kept and the push answered 400 naming the others, as
// Loki's distributor and ingester do. A stream's entries out of time order within one push
// are taken (as Loki does) but recorded as a violation: logship sends each stream in order.
// Faults can be injected: 429 with Retry-After, 500.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import snappy from 'snappyjs';

const PUSH = protobuf.loadSync(fileURLToPath(new URL('../../../proto/loki/push.proto', import.meta.url))).lookupType('logproto.PushRequest');

export const MAX_LINE_BYTES = 256 * 1024;
export const REJECT_OLD_MS = 7 * 86_400_000;
export const GRACE_MS = 10 * 60_000;
/** Half of max_chunk_age (2h): how far behind a stream's newest entry an entry may be. */
export const OUT_OF_ORDER_WINDOW_MS = 3_600_000;

export interface StoredEntry {
  timeNano: bigint;
  line: string;
  metadata: Record<string, string>;
}

export interface Push {
  tenant: string | null;
  contentType: string;
  streams: number;
  entries: number;
  status: number;
}

type Fault = { status: 429; retryAfter?: string } | { status: 500 };

export class LokiEndpoint {
  /** By tenant ('' without one), then by the stream's labels in canonical form. */
  readonly streams = new Map<string, Map<string, StoredEntry[]>>();
  readonly pushes: Push[] = [];
  /** What no Loki would take and logship must never send. */
  readonly violations: string[] = [];
  private server: http.Server | null = null;
  private port = 0;
  private faults: Fault[] = [];
  /** Per stream (tenant and labels): its newest time and what it holds, for Loki's window and dedup. */
  private readonly index = new Map<string, { newest: bigint; keys: Set<string> }>();
  /** Pushes without X-Scope-OrgID are refused (401), as a multi-tenant Loki does. */
  tenantRequired: boolean;
  private readonly auth: string | null;

  constructor(options: { tenantRequired?: boolean; basic?: { username: string; password: string } } = {}) {
    this.tenantRequired = options.tenantRequired ?? false;
    this.auth = options.basic ? `Basic ${Buffer.from(`${options.basic.username}:${options.basic.password}`).toString('base64')}` : null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/loki/api/v1/push`;
  }

  /** The next pushes answered so, in order, whatever they carry. */
  fail(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  async listen(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The entries of the streams whose labels include all of `match`, in stored order. */
  entries(match: Record<string, string>, tenant = ''): Array<StoredEntry & { labels: Record<string, string> }> {
    const out: Array<StoredEntry & { labels: Record<string, string> }> = [];
    for (const [key, entries] of this.streams.get(tenant) ?? []) {
      const labels = Object.fromEntries(JSON.parse(key) as Array<[string, string]>);
      if (Object.entries(match).every(([k, v]) => labels[k] === v)) out.push(...entries.map((e) => ({ ...e, labels })));
    }
    return out;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, text = '', headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(text);
      };
      if (req.method !== 'POST' || req.url !== '/loki/api/v1/push') return answer(404, '404 page not found\n');
      const tenant = headerOf(req, 'x-scope-orgid');
      const contentType = (headerOf(req, 'content-type') ?? '').split(';')[0]!.trim();
      const push: Push = { tenant, contentType, streams: 0, entries: 0, status: 0 };
      this.pushes.push(push);
      const end = (status: number, text = '', headers: Record<string, string> = {}): void => {
        push.status = status;
        answer(status, text, headers);
      };
      if (this.auth !== null && headerOf(req, 'authorization') !== this.auth) return end(401, 'Unauthorized\n');
      if (this.tenantRequired && !tenant) return end(401, 'no org id\n');
      const fault = this.faults.shift();
      if (fault) return end(fault.status, fault.status === 429 ? 'Ingestion rate limit exceeded\n' : 'internal error\n', fault.status === 429 && fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
      let streams: Array<{ labels: string; entries: StoredEntry[] }>;
      try {
        streams = decode(Buffer.concat(chunks), contentType, headerOf(req, 'content-encoding'));
      } catch (err) {
        this.violations.push(`undecodable push (${contentType}): ${(err as Error).message}`);
        return end(400, `${(err as Error).message}\n`);
      }
      push.streams = streams.length;
      const refusals: string[] = [];
      let total = 0;
      for (const stream of streams) {
        let labels: Array<[string, string]>;
        try {
          labels = parseSelector(stream.labels);
        } catch (err) {
          this.violations.push(`labels ${stream.labels}: ${(err as Error).message}`);
          return end(400, `error parsing labels '${stream.labels}' with error: ${(err as Error).message}\n`);
        }
        const key = JSON.stringify(labels);
        const byTenant = this.streams.get(tenant ?? '') ?? new Map<string, StoredEntry[]>();
        this.streams.set(tenant ?? '', byTenant);
        const stored = byTenant.get(key) ?? [];
        byTenant.set(key, stored);
        const nowNano = BigInt(Date.now()) * 1_000_000n;
        const window = BigInt(OUT_OF_ORDER_WINDOW_MS) * 1_000_000n;
        const seen = this.index.get(`${tenant ?? ''}\0${key}`) ?? { newest: 0n, keys: new Set<string>() };
        this.index.set(`${tenant ?? ''}\0${key}`, seen);
        stream.entries.forEach((entry, i) => {
          if (i > 0 && entry.timeNano < stream.entries[i - 1]!.timeNano) this.violations.push(`stream ${stream.labels}: entries out of time order in one push`);
        });
        for (const entry of stream.entries) {
          total++;
          push.entries++;
          const newest = seen.newest;
          const identity = `${entry.timeNano}\0${entry.line}`;
          if (Buffer.byteLength(entry.line) > MAX_LINE_BYTES) {
            refusals.push(`max entry size '${MAX_LINE_BYTES}' bytes exceeded for stream '${stream.labels}' while adding an entry with length '${Buffer.byteLength(entry.line)}' bytes`);
          } else if (entry.timeNano < nowNano - BigInt(REJECT_OLD_MS) * 1_000_000n) {
            refusals.push(`entry for stream '${stream.labels}' has timestamp too old: ${entry.timeNano}, oldest acceptable timestamp is: ${nowNano - BigInt(REJECT_OLD_MS) * 1_000_000n}`);
          } else if (entry.timeNano > nowNano + BigInt(GRACE_MS) * 1_000_000n) {
            refusals.push(`entry for stream '${stream.labels}' has timestamp too new: ${entry.timeNano}`);
          } else if (newest > 0n && entry.timeNano < newest - window) {
            refusals.push(`entry too far behind, entry timestamp is: ${entry.timeNano}, oldest acceptable timestamp is: ${newest - window}`);
          } else if (seen.keys.has(identity)) {
            // Loki's dedup: the same entry again is no error and no second entry.
          } else {
            seen.keys.add(identity);
            if (entry.timeNano > seen.newest) seen.newest = entry.timeNano;
            stored.push(entry);
          }
        }
      }
      if (refusals.length > 0) return end(400, `${refusals.join('\n')}\ntotal ignored: ${refusals.length} out of ${total}\n`);
      end(204);
    });
  }
}

function headerOf(req: http.IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function decode(body: Buffer, contentType: string, encoding: string | null): Array<{ labels: string; entries: StoredEntry[] }> {
  if (contentType === 'application/json') {
    const text = (encoding === 'gzip' ? gunzipSync(body) : body).toString('utf8');
    const push = JSON.parse(text) as { streams: Array<{ stream: Record<string, string>; values: Array<[string, string, Record<string, string>?]> }> };
    return push.streams.map((s) => ({
      labels: `{${Object.entries(s.stream).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`,
      entries: s.values.map(([ts, line, metadata]) => {
        if (!/^\d+$/.test(ts)) throw new Error(`timestamp '${ts}' is not nanoseconds as a string`);
        return { timeNano: BigInt(ts), line, metadata: metadata ?? {} };
      }),
    }));
  }
  if (contentType !== 'application/x-protobuf') throw new Error(`unsupported Content-Type '${contentType}'`);
  if (encoding) throw new Error(`a protobuf push is snappy-compressed, not Content-Encoding ${encoding}`);
  const message = PUSH.toObject(PUSH.decode(snappy.uncompress(body)), { longs: String }) as {
    streams?: Array<{ labels: string; entries?: Array<{ timestamp?: { seconds?: string; nanos?: number }; line?: string; structuredMetadata?: Array<{ name: string; value: string }> }> }>;
  };
  return (message.streams ?? []).map((s) => ({
    labels: s.labels,
    entries: (s.entries ?? []).map((e) => ({
      timeNano: BigInt(e.timestamp?.seconds ?? '0') * 1_000_000_000n + BigInt(e.timestamp?.nanos ?? 0),
      line: e.line ?? '',
      metadata: Object.fromEntries((e.structuredMetadata ?? []).map((m) => [m.name, m.value])),
    })),
  }));
}

/** `{a="x", b="y"}` as Loki's parser reads it: names sorted here, duplicates and bad names refused. */
export function parseSelector(text: string): Array<[string, string]> {
  const pair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*")\s*(,|$)/y;
  const inner = /^\{(.*)\}$/s.exec(text.trim());
  if (!inner) throw new Error('a selector is {name="value", ...}');
  const body = inner[1]!;
  const labels = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    pair.lastIndex = at;
    const m = pair.exec(body);
    if (!m) throw new Error(`unexpected text at ${at}: ${body.slice(at, at + 20)}`);
    if (labels.has(m[1]!)) throw new Error(`duplicate label name: '${m[1]}'`);
    labels.set(m[1]!, JSON.parse(m[2]!) as string);
    at = pair.lastIndex;
  }
  if (labels.size === 0) throw new Error('error at least one label pair is required per stream');
  return [...labels].sort(([a], [b]) => (a < b ? -1 : 1));
}
