// An Elasticsearch/OpenSearch endpoint on loopback for the backend tests (none can run
// here, backends.md §5): `GET /` and `HEAD /`, and `POST /_bulk`, `POST|PUT /{index}/_bulk`
// with the bulk API's semantics: NDJSON action/source pairs, `create` (409 on an existing
// id) and `index`, data streams (create only), per-item results, dynamic mapping conflicts,
// basic and API-key auth, TLS, and the product header the Elastic client checks (sent in
// Elasticsearch mode, never in OpenSearch mode). Failures can be injected: whole requests
// refused with 429/503, single documents with 429/500, documents matching a rule with a
// 400 mapping error. What no real server would accept, or what logship must never send (a
// body without its trailing newline, an action without its source, a document without
// `@timestamp`, a body over the size limit), is answered as the server would and recorded
// as a violation, which the tests assert is empty.
import { createGunzip } from 'node:zlib';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';

export type EndpointMode = 'elasticsearch' | 'opensearch';

export interface EndpointOptions {
  mode: EndpointMode;
  /** On 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** PEM files: serves https. */
  tls?: { cert: string; key: string; ca?: string; requestClientCert?: boolean };
  basic?: { username: string; password: string };
  /** The encoded form (base64 of `id:key`), as `Authorization: ApiKey <it>` carries it. */
  apiKey?: string;
  /** Bodies larger than this are refused with 413 and recorded (http.max_content_length). */
  maxBodyBytes?: number;
  /** Data streams that exist (as if their index template matched). */
  dataStreams?: string[];
}

export interface StoredDocument {
  index: string;
  id: string;
  source: Record<string, unknown>;
}

export interface ItemRefusal {
  status: 429 | 500 | 503;
}

interface ItemResult {
  _index: string;
  _id: string;
  status: number;
  result?: string;
  _version?: number;
  error?: { type: string; reason: string };
}

const SERVER_VERSION = { elasticsearch: '8.17.0', opensearch: '2.19.0' } as const;

export class ElasticsearchEndpoint {
  readonly mode: EndpointMode;
  readonly violations: string[] = [];
  /** Every request, in arrival order: method, url, headers, the status answered. */
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders; status: number }[] = [];
  /** Every document stored, in the order it was stored. */
  readonly stored: StoredDocument[] = [];
  private readonly options: EndpointOptions;
  private readonly server: http.Server;
  private readonly indices = new Map<string, Map<string, Record<string, unknown>>>();
  /** Per index: the type of each leaf path as dynamic mapping first saw it. */
  private readonly mappings = new Map<string, Map<string, FieldType>>();
  private requestFailures: number[] = [];
  private itemRule: ((source: Record<string, unknown>) => ItemRefusal | null) | null = null;
  private conflictRule: ((source: Record<string, unknown>) => boolean) | null = null;
  private stalled = false;
  /** Documents refused per status, for the tests' accounting. */
  readonly refused = new Map<number, number>();

  constructor(options: EndpointOptions) {
    this.options = options;
    this.mode = options.mode;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        this.violations.push(`handler failed: ${String(err)}`);
        if (!res.headersSent) this.reply(req, res, 500, { error: { type: 'exception', reason: String(err) }, status: 500 });
      });
    };
    this.server = options.tls
      ? https.createServer(
          {
            cert: fs.readFileSync(options.tls.cert),
            key: fs.readFileSync(options.tls.key),
            ...(options.tls.ca ? { ca: fs.readFileSync(options.tls.ca) } : {}),
            requestCert: options.tls.requestClientCert ?? false,
            rejectUnauthorized: options.tls.requestClientCert ?? false,
          },
          handler,
        )
      : http.createServer(handler);
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, '127.0.0.1', () => resolve());
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${this.options.tls ? 'localhost' : '127.0.0.1'}:${this.port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next `count` bulk requests are refused whole with `status` (429 or 503). */
  refuseRequests(status: 429 | 503, count: number): void {
    for (let i = 0; i < count; i++) this.requestFailures.push(status);
  }

  /** Each document is offered to `rule`; a refusal answers that item alone with its status. */
  refuseItems(rule: ((source: Record<string, unknown>) => ItemRefusal | null) | null): void {
    this.itemRule = rule;
  }

  /** Documents for which `rule` is true are refused with a 400 mapping error, every time. */
  conflictWhen(rule: ((source: Record<string, unknown>) => boolean) | null): void {
    this.conflictRule = rule;
  }

  /** While on, requests are read and never answered (a server that hangs). */
  stall(on: boolean): void {
    this.stalled = on;
  }

  documents(index?: string | RegExp): StoredDocument[] {
    if (index === undefined) return this.stored;
    return this.stored.filter((d) => (typeof index === 'string' ? d.index === index : index.test(d.index)));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://endpoint');
    const body = await this.readBody(req);
    if (this.stalled) return;
    if (body === null) return this.reply(req, res, 413, { error: { type: 'content_too_long_exception', reason: 'request body is too large' }, status: 413 });
    if (!this.authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="security" charset="UTF-8"');
      return this.reply(req, res, 401, { error: { type: 'security_exception', reason: 'unable to authenticate user' }, status: 401 });
    }
    const mediaError = this.mediaTypeError(req);
    if (mediaError) return this.reply(req, res, mediaError.status, mediaError.body);
    if (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) return this.reply(req, res, 200, this.info());
    const bulk = /^\/(?:([^/_][^/]*)\/)?_bulk$/.exec(url.pathname);
    if (bulk && (req.method === 'POST' || req.method === 'PUT')) {
      const failure = this.requestFailures.shift();
      if (failure !== undefined) {
        const type = failure === 429 ? 'es_rejected_execution_exception' : 'unavailable_shards_exception';
        return this.reply(req, res, failure, { error: { root_cause: [{ type, reason: 'injected' }], type, reason: 'injected' }, status: failure });
      }
      const index = bulk[1] === undefined ? null : decodeURIComponent(bulk[1]);
      return this.bulk(req, res, body, index);
    }
    this.violations.push(`unexpected request ${req.method} ${req.url}`);
    this.reply(req, res, 404, { error: { type: 'resource_not_found_exception', reason: `no handler for ${req.method} ${url.pathname}` }, status: 404 });
  }

  private async readBody(req: http.IncomingMessage): Promise<Buffer | null> {
    const limit = this.options.maxBodyBytes ?? 10 * 1024 * 1024;
    const declared = Number(req.headers['content-length'] ?? 0);
    const chunks: Buffer[] = [];
    let size = 0;
    const source = req.headers['content-encoding'] === 'gzip' ? req.pipe(createGunzip()) : req;
    await pipeline(
      source,
      new Writable({
        write(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size <= limit) chunks.push(chunk);
          done();
        },
      }),
    );
    if (size > limit || declared > limit) {
      this.violations.push(`a ${Math.max(size, declared)}-byte body, over the ${limit}-byte limit`);
      return null;
    }
    return Buffer.concat(chunks);
  }

  private authorized(req: http.IncomingMessage): boolean {
    const { basic, apiKey } = this.options;
    if (!basic && !apiKey) return true;
    const header = req.headers.authorization ?? '';
    if (basic && header === `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`) return true;
    if (apiKey && header === `ApiKey ${apiKey}`) return true;
    return false;
  }

  /**
   * Elasticsearch 8 takes `compatible-with=7|8` only; OpenSearch knows no vendor media types
   * at all. Both refuse the others, as the Elastic 9 client's defaults would meet them.
   */
  private mediaTypeError(req: http.IncomingMessage): { status: number; body: unknown } | null {
    for (const header of ['content-type', 'accept'] as const) {
      const value = req.headers[header];
      if (typeof value !== 'string' || !value.includes('vnd.elasticsearch')) continue;
      if (this.mode === 'opensearch') {
        return { status: 406, body: { error: `Content-Type header [${value}] is not supported`, status: 406 } };
      }
      const version = /compatible-with=(\d+)/.exec(value)?.[1];
      const major = Number(SERVER_VERSION.elasticsearch.split('.')[0]);
      if (version === undefined || (Number(version) !== major && Number(version) !== major - 1)) {
        return {
          status: 400,
          body: { error: { type: 'media_type_header_exception', reason: `Invalid media-type value on headers [${header}]: ${value}` }, status: 400 },
        };
      }
    }
    return null;
  }

  private info(): Record<string, unknown> {
    return this.mode === 'elasticsearch'
      ? {
          name: 'endpoint',
          cluster_name: 'logship-test',
          version: { number: SERVER_VERSION.elasticsearch, build_flavor: 'default' },
          tagline: 'You Know, for Search',
        }
      : {
          name: 'endpoint',
          cluster_name: 'logship-test',
          version: { distribution: 'opensearch', number: SERVER_VERSION.opensearch },
          tagline: 'The OpenSearch Project: https://opensearch.org/',
        };
  }

  private bulk(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, pathIndex: string | null): void {
    const contentType = req.headers['content-type'] ?? '';
    if (!/^application\/(x-ndjson|json|vnd\.elasticsearch\+x-ndjson)/.test(contentType)) {
      this.violations.push(`a bulk request with content-type '${contentType}'`);
    }
    const text = body.toString('utf8');
    if (text.length === 0 || !text.endsWith('\n')) {
      this.violations.push('a bulk body without its trailing newline');
      return this.reply(req, res, 400, { error: { type: 'illegal_argument_exception', reason: 'The bulk request must be terminated by a newline [\\n]' }, status: 400 });
    }
    const lines = text.slice(0, -1).split('\n');
    const items: Record<string, ItemResult>[] = [];
    for (let i = 0; i < lines.length; i++) {
      let action: Record<string, Record<string, unknown>>;
      try {
        action = JSON.parse(lines[i]!);
      } catch {
        this.violations.push(`line ${i + 1} of a bulk body is not JSON`);
        return this.reply(req, res, 400, { error: { type: 'x_content_parse_exception', reason: `line ${i + 1}: not JSON` }, status: 400 });
      }
      const kind = Object.keys(action)[0];
      const meta = kind === undefined ? undefined : action[kind];
      if (Object.keys(action).length !== 1 || (kind !== 'create' && kind !== 'index') || typeof meta !== 'object' || meta === null) {
        this.violations.push(`line ${i + 1} of a bulk body is not a create or index action: ${lines[i]}`);
        return this.reply(req, res, 400, { error: { type: 'illegal_argument_exception', reason: `Malformed action/metadata line [${i + 1}]` }, status: 400 });
      }
      const sourceLine = lines[++i];
      if (sourceLine === undefined || sourceLine === '') {
        this.violations.push(`the ${kind} action on line ${i} has no source`);
        return this.reply(req, res, 400, { error: { type: 'action_request_validation_exception', reason: 'Validation Failed: 1: source is missing;' }, status: 400 });
      }
      let source: unknown;
      try {
        source = JSON.parse(sourceLine);
      } catch {
        this.violations.push(`the source on line ${i + 1} is not JSON`);
        source = null;
      }
      items.push({ [kind]: this.item(kind, meta, source, pathIndex) });
    }
    const errors = items.some((entry) => Object.values(entry)[0]!.status >= 300);
    this.reply(req, res, 200, { took: 1, errors, items });
  }

  private item(kind: 'create' | 'index', meta: Record<string, unknown>, source: unknown, pathIndex: string | null): ItemResult {
    const index = typeof meta._index === 'string' ? meta._index : pathIndex;
    const id = typeof meta._id === 'string' ? meta._id : `auto-${this.stored.length}-${Math.random().toString(36).slice(2)}`;
    const result = (status: number, error?: { type: string; reason: string }): ItemResult => {
      if (status >= 300) this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
      return { _index: index ?? '', _id: id, status, ...(error ? { error } : {}) };
    };
    if (index === null) {
      this.violations.push('an action without _index on /_bulk');
      return result(400, { type: 'action_request_validation_exception', reason: 'Validation Failed: 1: index is missing;' });
    }
    const nameError = indexNameError(index);
    if (nameError) {
      this.violations.push(`an invalid index name '${index}': ${nameError}`);
      return result(400, { type: 'invalid_index_name_exception', reason: `Invalid index name [${index}], ${nameError}` });
    }
    if (Buffer.byteLength(id) > 512) {
      this.violations.push(`an _id of ${Buffer.byteLength(id)} bytes`);
      return result(400, { type: 'action_request_validation_exception', reason: 'id is too long, must be no longer than 512 bytes' });
    }
    if (typeof source !== 'object' || source === null || Array.isArray(source)) {
      return result(400, { type: 'document_parsing_exception', reason: 'failed to parse: the source is not a JSON object' });
    }
    const doc = source as Record<string, unknown>;
    if (typeof doc['@timestamp'] !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(doc['@timestamp'])) {
      this.violations.push(`a document without an RFC 3339 @timestamp: ${JSON.stringify(doc['@timestamp'])}`);
      return result(400, { type: 'document_parsing_exception', reason: 'data stream timestamp field [@timestamp] is missing' });
    }
    if (this.options.dataStreams?.includes(index) && kind !== 'create') {
      this.violations.push(`an ${kind} action on data stream '${index}'`);
      return result(400, { type: 'illegal_argument_exception', reason: `only write ops with an op_type of create are allowed in data streams` });
    }
    const existing = this.indices.get(index);
    if (kind === 'create' && existing?.has(id)) {
      return result(409, { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, document already exists (current version [1])` });
    }
    const refusal = this.itemRule?.(doc);
    if (refusal) {
      const type = refusal.status === 429 ? 'es_rejected_execution_exception' : 'node_not_connected_exception';
      return result(refusal.status, { type, reason: 'injected' });
    }
    if (this.conflictRule?.(doc)) {
      return result(400, { type: 'document_parsing_exception', reason: `[1:2] failed to parse: injected mapping conflict. Preview of field's value: '${String(doc.message).slice(0, 20)}'` });
    }
    const conflict = this.mapDynamically(index, doc);
    if (conflict) return result(400, { type: 'document_parsing_exception', reason: conflict });
    const docs = existing ?? new Map<string, Record<string, unknown>>();
    this.indices.set(index, docs);
    const replaced = docs.has(id);
    docs.set(id, doc);
    if (!replaced) this.stored.push({ index, id, source: doc });
    return { _index: index, _id: id, status: replaced ? 200 : 201, result: replaced ? 'updated' : 'created', _version: 1 };
  }

  /**
   * Dynamic mapping, coarsely: a leaf path's first value fixes its type; an object where a
   * value was (or the reverse), a non-numeric string in a number, or a non-boolean in a
   * boolean is refused, as Elasticsearch refuses them. Dotted keys are paths, as there.
   */
  private mapDynamically(index: string, doc: Record<string, unknown>): string | null {
    const mapping = this.mappings.get(index) ?? new Map<string, FieldType>();
    this.mappings.set(index, mapping);
    const seen: [string, FieldType][] = [];
    const walk = (prefix: string, value: unknown): string | null => {
      const type = fieldType(value);
      if (type === null) return null;
      const known = mapping.get(prefix) ?? seen.find(([path]) => path === prefix)?.[1];
      if (known !== undefined && !compatible(known, value)) {
        return `[1:2] failed to parse field [${prefix}] of type [${known}] in document. Preview of field's value: '${JSON.stringify(value)}'`;
      }
      if (known === undefined) seen.push([prefix, type]);
      if (type === 'object') {
        for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
          const error = walk(prefix === '' ? key : `${prefix}.${key}`, child);
          if (error) return error;
        }
      }
      return null;
    };
    for (const [key, value] of Object.entries(doc)) {
      const error = walk(key, value);
      if (error) return error;
    }
    for (const [path, type] of seen) mapping.set(path, type);
    return null;
  }

  private reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, status });
    // `filter_path`, which every REST API takes; an error answer is built unfiltered, as the servers build theirs.
    const filter = new URL(req.url ?? '/', 'http://endpoint').searchParams.get('filter_path');
    if (filter !== null && status < 400) body = this.filtered(body, filter);
    const json = JSON.stringify(body);
    const accept = req.headers.accept ?? '';
    res.statusCode = status;
    res.setHeader('content-type', accept.includes('vnd.elasticsearch') ? 'application/vnd.elasticsearch+json;compatible-with=8' : 'application/json; charset=UTF-8');
    if (this.mode === 'elasticsearch') res.setHeader('X-Elastic-Product', 'Elasticsearch');
    if (req.method === 'HEAD') {
      res.setHeader('content-length', Buffer.byteLength(json));
      res.end();
    } else res.end(json);
  }

  /** The answer as `filter_path` leaves it (filterPath); a filter syntax not implemented here is a violation. */
  private filtered(body: unknown, filter: string): unknown {
    const paths = filter.split(',').filter((f) => f !== '');
    if (paths.some((p) => p.startsWith('-'))) {
      this.violations.push(`filter_path exclusions are not implemented here: ${filter}`);
      return body;
    }
    return filterPath(body, paths.map((p) => p.split('.'))) ?? {};
  }
}

/**
 * Elasticsearch's response filtering: the fields whose dotted path one of `paths` matches,
 * with what leads to them; `*` in a segment matches any part of a name, a `**` segment any
 * number of levels; arrays are passed through, their elements filtered as the array's
 * field is; an object or array element left with nothing is left out (what matches nothing
 * at all is `{}`). Undefined: nothing kept.
 */
export function filterPath(value: unknown, paths: readonly (readonly string[])[]): unknown {
  return filterWith(value, paths.map((path) => path.map(segment)));
}

/** One segment of a filter: `**`, or a test of a field's name. */
type Segment = 'deep' | ((key: string) => boolean);

function segment(text: string): Segment {
  if (text === '**') return 'deep';
  if (text === '*') return () => true;
  if (!text.includes('*')) return (key) => key === text;
  const pattern = new RegExp(`^${text.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (key) => pattern.test(key);
}

// Written for speed (the benches' receiver filters every bulk answer): no allocation for a
// field no path matches.
function filterWith(value: unknown, paths: readonly (readonly Segment[])[]): unknown {
  for (const path of paths) if (path.length === 0) return value;
  if (Array.isArray(value)) {
    const kept: unknown[] = [];
    for (const element of value) {
      const filtered = filterWith(element, paths);
      if (filtered !== undefined) kept.push(filtered);
    }
    return kept.length > 0 ? kept : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  let out: Record<string, unknown> | undefined;
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    let next: (readonly Segment[])[] | undefined;
    for (const path of paths) {
      const head = path[0]!;
      if (head === 'deep') {
        (next ??= []).push(path); // `**` still to match deeper
        const after = path[1];
        if (after === undefined) next.push([]);
        else if (after !== 'deep' && after(key)) next.push(path.slice(2));
      } else if (head(key)) (next ??= []).push(path.slice(1));
    }
    if (next === undefined) continue;
    const kept = filterWith(object[key], next);
    if (kept !== undefined) (out ??= {})[key] = kept;
  }
  return out;
}

type FieldType = 'long' | 'keyword' | 'boolean' | 'object';

function fieldType(value: unknown): FieldType | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.length > 0 ? fieldType(value[0]) : null;
  if (typeof value === 'object') return 'object';
  if (typeof value === 'number') return 'long';
  if (typeof value === 'boolean') return 'boolean';
  return 'keyword';
}

function compatible(type: FieldType, value: unknown): boolean {
  const actual = fieldType(value);
  if (actual === null) return true;
  if (type === 'object' || actual === 'object') return type === actual;
  if (type === 'long') return actual === 'long' || (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)));
  if (type === 'boolean') return actual === 'boolean' || value === 'true' || value === 'false';
  return true; // anything concrete becomes a keyword's string
}

function indexNameError(name: string): string | null {
  if (name !== name.toLowerCase()) return 'must be lowercase';
  if (/^[-_+]/.test(name)) return `must not start with '_', '-', or '+'`;
  if (/[\\/*?"<>| ,#:]/.test(name)) return 'must not contain the following characters [\\, /, *, ?, ", <, >, |, space, ,, #, :]';
  if (Buffer.byteLength(name) > 255) return 'index name is too long';
  return null;
}
