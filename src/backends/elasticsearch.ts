// Elasticsearch and OpenSearch through the bulk API, on each one's official client: the
// Elastic client refuses a server that does not say `X-Elastic-Product: Elasticsearch`,
// which OpenSearch never says, so `elasticsearch-flavor=opensearch` selects opensearch-js.
//
// At least once without duplicates: every document has an `_id` derived from the line and
// goes with `create`, so when a batch goes again (after a restart) the documents already
// taken come back 409 (done) instead of being indexed twice. Per document: 429 and 5xx (and
// a permission error) are lines to send again, which the engine does after its backoff;
// any other refusal (a mapping conflict) is a rejection, since sending it again would fail
// the same way forever.
import { createHash } from 'node:crypto';
import type tls from 'node:tls';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type Rejection, type SendResult, SendError } from '../delivery/backend.ts';
import { abortError, retryAfterMs, shownAddress, tlsOptions } from './connection.ts';
import { type Request, sendInOrder } from './requests.ts';
import { rfc3339Nano } from '../delivery/timestamp.ts';
import { InvalidOptionError, parseBool } from '../options/values.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';

const FLAVORS = ['elasticsearch', 'opensearch'] as const;
export type Flavor = (typeof FLAVORS)[number];

/** Where documents go: a dated index name, or a data stream. */
export type Destination = { kind: 'index'; pattern: IndexPattern } | { kind: 'data-stream'; name: string };

export type Credentials = { kind: 'basic'; username: string; password: string } | { kind: 'api-key'; apiKey: string };

export interface ElasticsearchConfig {
  flavor: Flavor;
  /** Base URLs, without credentials. */
  nodes: string[];
  destination: Destination;
  /** From the plugin settings, never from log-opts (`docker inspect` shows those). */
  credentials: Credentials | null;
  tls: tls.ConnectionOptions;
}

const OPTION_KEYS = [
  'elasticsearch-url',
  'elasticsearch-flavor',
  'elasticsearch-index',
  'elasticsearch-data-stream',
  'elasticsearch-tls-ca-cert',
  'elasticsearch-tls-cert',
  'elasticsearch-tls-key',
  'elasticsearch-tls-skip-verify',
] as const;

/** The plugin settings (config.json's env) that carry credentials. */
const CREDENTIAL_SETTINGS = {
  username: 'ELASTICSEARCH_USERNAME',
  password: 'ELASTICSEARCH_PASSWORD',
  apiKey: 'ELASTICSEARCH_API_KEY',
} as const;

const DEFAULT_URL = 'http://localhost:9200';
/** What Kibana's `logstash-*` index pattern finds, one index per day. */
const DEFAULT_INDEX = 'logstash-YYYY.MM.DD';

export function parseElasticsearchOptions(
  opts: Readonly<Record<string, string>>,
  env: NodeJS.ProcessEnv = process.env,
): ElasticsearchConfig {
  const flavor = parseFlavor(opts['elasticsearch-flavor'] || 'elasticsearch');
  const nodes = parseUrls(opts['elasticsearch-url'] || DEFAULT_URL);
  const skipVerify = opts['elasticsearch-tls-skip-verify'] ? parseBool('elasticsearch-tls-skip-verify', opts['elasticsearch-tls-skip-verify']) : false;
  const tlsKeys = { ca: 'elasticsearch-tls-ca-cert', cert: 'elasticsearch-tls-cert', key: 'elasticsearch-tls-key' };
  const tlsSet = [tlsKeys.ca, tlsKeys.cert, tlsKeys.key].find((key) => opts[key]) ?? (skipVerify ? 'elasticsearch-tls-skip-verify' : undefined);
  if (tlsSet && !nodes.some((url) => url.startsWith('https:'))) {
    throw new InvalidOptionError(`log opt '${tlsSet}' is set, but no address in 'elasticsearch-url' is https://`);
  }
  return {
    flavor,
    nodes,
    destination: parseDestination(opts),
    credentials: parseCredentials(env, flavor),
    // SNI comes from each address's host name; the clients set it.
    tls: tlsOptions(opts, tlsKeys, skipVerify, ''),
  };
}

function parseFlavor(value: string): Flavor {
  if ((FLAVORS as readonly string[]).includes(value)) return value as Flavor;
  throw new InvalidOptionError(`invalid value '${value}' for log opt 'elasticsearch-flavor': expected ${FLAVORS.join(' or ')}`);
}

function parseUrls(value: string): string[] {
  return value.split(',').map((entry) => {
    const text = entry.trim();
    let url: URL | null = null;
    try {
      url = new URL(text);
    } catch {
      /* reported below */
    }
    // The entry is quoted only once it is known to carry no credentials.
    if (url && (url.username !== '' || url.password !== '')) {
      throw new InvalidOptionError(
        `log opt 'elasticsearch-url' must not carry credentials (user:password@): set ${CREDENTIAL_SETTINGS.username} and ${CREDENTIAL_SETTINGS.password}, or ${CREDENTIAL_SETTINGS.apiKey}, in the plugin settings`,
      );
    }
    const why = !url
      ? 'not a URL'
      : url.protocol !== 'http:' && url.protocol !== 'https:'
        ? `unsupported scheme '${url.protocol.slice(0, -1)}'`
        : url.search !== '' || url.hash !== ''
          ? 'it should have no query or fragment'
          : null;
    if (why !== null) {
      // An address URL cannot read may still hold `user:password@`.
      throw new InvalidOptionError(`invalid value ${shownAddress(text)} for log opt 'elasticsearch-url': ${why}; expected a comma list of http(s)://host[:port][/path]`);
    }
    return url!.href.replace(/\/$/, '');
  });
}

function parseDestination(opts: Readonly<Record<string, string>>): Destination {
  const index = opts['elasticsearch-index'];
  const dataStream = opts['elasticsearch-data-stream'];
  if (index && dataStream) {
    throw new InvalidOptionError(`log opts 'elasticsearch-index' and 'elasticsearch-data-stream' cannot be given together`);
  }
  if (dataStream) {
    if (dataStream.startsWith('.ds-') || /[A-Z]/.test(dataStream)) {
      throw new InvalidOptionError(
        `invalid value '${dataStream}' for log opt 'elasticsearch-data-stream': expected a lower-case name not starting with '.ds-', such as logs-docker-default`,
      );
    }
    checkIndexName('elasticsearch-data-stream', dataStream);
    return { kind: 'data-stream', name: dataStream };
  }
  return { kind: 'index', pattern: parseIndexPattern(index || DEFAULT_INDEX) };
}

/** Date fields an index pattern may hold, replaced by the line's own time in UTC. */
const DATE_TOKENS = {
  YYYY: (d: Date) => String(d.getUTCFullYear()).padStart(4, '0'),
  MM: (d: Date) => String(d.getUTCMonth() + 1).padStart(2, '0'),
  DD: (d: Date) => String(d.getUTCDate()).padStart(2, '0'),
  HH: (d: Date) => String(d.getUTCHours()).padStart(2, '0'),
} as const;
type DateToken = keyof typeof DATE_TOKENS;
const TOKEN_PATTERN = /YYYY|MM|DD|HH/g;

/** Literal text and date fields, in order. */
export interface IndexPattern {
  parts: ReadonlyArray<{ literal: string } | { token: DateToken }>;
  /** The finest date field in the pattern: an index name changes at most this often. */
  periodMs: number | null;
}

/**
 * `YYYY`, `MM`, `DD` and `HH` are the line's UTC year, month, day and hour; everything else
 * is literal. Index names are lower case, so upper-case fields cannot be mistaken for text.
 */
export function parseIndexPattern(value: string): IndexPattern {
  const parts: IndexPattern['parts'][number][] = [];
  let last = 0;
  let periodMs: number | null = null;
  for (const match of value.matchAll(TOKEN_PATTERN)) {
    if (match.index > last) parts.push({ literal: value.slice(last, match.index) });
    const token = match[0] as DateToken;
    parts.push({ token });
    const period = token === 'HH' ? 3_600_000 : 86_400_000;
    periodMs = Math.min(periodMs ?? period, period);
    last = match.index + token.length;
  }
  if (last < value.length) parts.push({ literal: value.slice(last) });
  const literal = value.replace(TOKEN_PATTERN, '');
  if (/[{}]/.test(literal)) {
    throw new InvalidOptionError(
      `invalid value '${value}' for log opt 'elasticsearch-index': Logstash's %{+...} and date math's {now/d} are not supported; the date fields are YYYY, MM, DD and HH (the line's time in UTC), as in ${DEFAULT_INDEX}`,
    );
  }
  if (/[A-Z]/.test(literal)) {
    throw new InvalidOptionError(
      `invalid value '${value}' for log opt 'elasticsearch-index': index names are lower case; the only upper-case parts allowed are the date fields YYYY, MM, DD and HH (the line's time in UTC), as in ${DEFAULT_INDEX}`,
    );
  }
  // The pattern is as long as the names it makes: each field is as wide as its value.
  checkIndexName('elasticsearch-index', value);
  return { parts, periodMs };
}

/** Elasticsearch's rules for index and data stream names. */
function checkIndexName(key: string, name: string): void {
  const why =
    name === '' ? 'it is empty'
    : name === '.' || name === '..' ? `it cannot be '.' or '..'`
    : /^[-_+]/.test(name) ? `it cannot start with '-', '_' or '+'`
    : /[\\/*?"<>| ,#:]/.test(name) ? `it cannot contain \\ / * ? " < > | space , # or :`
    : Buffer.byteLength(name) > 255 ? 'it is longer than 255 bytes'
    : null;
  if (why !== null) throw new InvalidOptionError(`invalid value '${name}' for log opt '${key}': ${why}`);
}

export function indexName(pattern: IndexPattern, date: Date): string {
  return pattern.parts.map((part) => ('literal' in part ? part.literal : DATE_TOKENS[part.token](date))).join('');
}

function parseCredentials(env: NodeJS.ProcessEnv, flavor: Flavor): Credentials | null {
  const { username: userKey, password: passwordKey, apiKey: apiKeyKey } = CREDENTIAL_SETTINGS;
  const username = env[userKey] ?? '';
  const password = env[passwordKey] ?? '';
  const apiKey = env[apiKeyKey] ?? '';
  // Values are never quoted: they are secrets.
  if ((username === '') !== (password === '')) {
    throw new InvalidOptionError(`plugin settings ${userKey} and ${passwordKey} must be set together (docker plugin set)`);
  }
  if (apiKey !== '' && username !== '') {
    throw new InvalidOptionError(`plugin settings ${apiKeyKey} and ${userKey}/${passwordKey} cannot both be set: choose one way to authenticate`);
  }
  if (apiKey !== '' && flavor === 'opensearch') {
    throw new InvalidOptionError(`plugin setting ${apiKeyKey} is for Elasticsearch; with elasticsearch-flavor=opensearch use ${userKey} and ${passwordKey}`);
  }
  if (apiKey !== '') return { kind: 'api-key', apiKey };
  if (username !== '') return { kind: 'basic', username, password };
  return null;
}

/** Document ids: the first 22 base64url characters (132 bits) of a SHA-256. */
const ID_LENGTH = 22;

export interface BulkAction {
  create: { _index: string; _id: string };
}

/** Builds the bulk operations of one container; what never changes is built once. */
export class DocumentEncoder {
  private readonly destination: Destination;
  private readonly containerId: string;
  private readonly fixed: Record<string, unknown>;
  private indexCache: { period: number; name: string } | null = null;
  /**
   * The id each line was given, so a line the engine sends again (alone, or with fewer
   * others) keeps it: an identical line's rank in a smaller batch could name another's id.
   */
  private readonly ids = new WeakMap<OutgoingLine, string>();

  constructor(container: ContainerContext, destination: Destination) {
    this.destination = destination;
    this.containerId = container.id;
    this.fixed = {
      tag: container.tag,
      container: { id: container.id, name: container.name, image: { name: container.imageName, id: container.imageId } },
      host: { name: container.hostname },
    };
    if (container.attributes.length > 0) {
      // Dots would make objects of `com.example` and `com.example.team` and the two would
      // clash in the mapping (compose sets such pairs); ECS `labels` are flat keywords.
      this.fixed.labels = Object.fromEntries(container.attributes.map(([key, value]) => [key.replaceAll('.', '_'), value]));
    }
  }

  /** Action and document for each line, in order: `[action, doc, action, doc, ...]`. */
  encode(lines: readonly OutgoingLine[]): Array<BulkAction | Record<string, unknown>> {
    const operations: Array<BulkAction | Record<string, unknown>> = [];
    // How many lines of this batch had each identity so far.
    const seen = new Map<string, number>();
    for (const line of lines) {
      let _id = this.ids.get(line);
      if (_id === undefined) {
        const identity = this.identity(line);
        const rank = seen.get(identity) ?? 0;
        seen.set(identity, rank + 1);
        // Identical lines in one batch are distinct documents: each after the first has its rank in its id.
        _id = rank === 0 ? identity : createHash('sha256').update(`${identity}\0${rank}`).digest('base64url').slice(0, ID_LENGTH);
        this.ids.set(line, _id);
      }
      operations.push({ create: { _index: this.index(line.timeNano), _id } }, this.document(line));
    }
    return operations;
  }

  /**
   * A digest of what makes a line this line: the same container, time, stream and bytes.
   * Hashed from the bytes themselves, so the batch's map is keyed by short strings.
   */
  private identity(line: OutgoingLine): string {
    return createHash('sha256')
      .update(`${this.containerId}\0${line.timeNano}\0${line.source}\0`)
      .update(line.line)
      .digest('base64url')
      .slice(0, ID_LENGTH);
  }

  document(line: OutgoingLine): Record<string, unknown> {
    const own: Record<string, unknown> = {
      '@timestamp': rfc3339Nano(line.timeNano),
      message: line.line.toString('utf8'),
      stream: line.source,
      ...this.fixed,
    };
    if (line.partial) {
      own.partial_message = true;
      own.partial_id = line.partial.id;
      own.partial_ordinal = line.partial.ordinal;
      own.partial_last = line.partial.last;
    }
    if (!line.fields) return own;
    // fromEntries defines keys, so a parsed `__proto__` stays a plain field.
    return Object.fromEntries([...Object.entries(own), ...Object.entries(line.fields).filter(([key]) => !Object.hasOwn(own, key))]);
  }

  private index(timeNano: bigint): string {
    const destination = this.destination;
    if (destination.kind === 'data-stream') return destination.name;
    const ms = Number(timeNano / 1_000_000n);
    const periodMs = destination.pattern.periodMs;
    // A pattern without date fields names one index: it is built once, as period 0.
    const period = periodMs === null ? 0 : Math.floor(ms / periodMs);
    if (this.indexCache?.period !== period) this.indexCache = { period, name: indexName(destination.pattern, new Date(ms)) };
    return this.indexCache.name;
  }
}

/** One document's result in a bulk response. */
export interface BulkItem {
  status: number;
  _index?: string;
  error?: { type?: string; reason?: string | null } | null;
}

export interface BulkOutcome {
  /** Created, or already there (409: an earlier send of this batch took it). */
  done: number;
  /** Refused for good (mapping conflict, bad document), by position in the request. */
  rejected: number[];
  /** 429, 5xx, or a permission or missing-index error (which fixing the cluster cures), by position: those documents must go again. */
  retryable: number[];
}

export function classifyItems(items: readonly BulkItem[]): BulkOutcome {
  const outcome: BulkOutcome = { done: 0, rejected: [], retryable: [] };
  items.forEach((item, position) => {
    if ((item.status >= 200 && item.status < 300) || item.status === 409) outcome.done++;
    else if (transientStatus(item.status)) outcome.retryable.push(position);
    else outcome.rejected.push(position);
  });
  return outcome;
}

/**
 * Statuses that are the cluster's state, not the request's: busy (429, 5xx), a timeout
 * (408), and what an operator fixes without touching the lines (401, 403, an index or
 * data stream missing: 404).
 */
function transientStatus(status: number): boolean {
  return status === 429 || status >= 500 || status === 408 || status === 401 || status === 403 || status === 404;
}

/**
 * A refusal's type and reason, fit for the log: Elasticsearch may quote the document in a
 * reason ("Preview of field's value", a parser's "[Source: ...]"), which is cut off.
 */
export function describeRefusal(item: BulkItem): string {
  const reason = withoutContent(item.error?.reason ?? '');
  return `${item.status} ${item.error?.type ?? 'error'}${reason ? ': ' + reason : ''}`;
}

/** An Elasticsearch error text without the document's content it may quote, and not too long. */
function withoutContent(text: string): string {
  return text.replace(/\s*(Preview of field's value|\[Source:)[\s\S]*$/, '').slice(0, 300);
}

/**
 * Bulk body bytes one request may carry: AWS's smallest OpenSearch nodes take 10 MiB, and a
 * document can weigh several times its line (the message escaped, beside its parse-json keys).
 */
const MAX_BULK_BODY_BYTES = 8 << 20;

/** The operations as bulk body lines: an action's, then its document's. */
function bodyLines(operations: ReadonlyArray<BulkAction | Record<string, unknown>>): string[] {
  return operations.map((operation) => JSON.stringify(operation));
}

/**
 * Body lines cut into requests of at most MAX_BULK_BODY_BYTES (a document always with its
 * action), each with the batch's lines it carries: one request unless the documents are heavy.
 */
function bulkBodies(lines: readonly string[]): Request<string[]>[] {
  const bodies: Request<string[]>[] = [];
  let body: string[] = [];
  let docs: number[] = [];
  let bytes = 0;
  for (let i = 0; i < lines.length; i += 2) {
    const action = lines[i]!;
    const document = lines[i + 1]!;
    const size = Buffer.byteLength(action) + Buffer.byteLength(document) + 2;
    if (body.length > 0 && bytes + size > MAX_BULK_BODY_BYTES) {
      bodies.push({ lines: docs, payload: body });
      body = [];
      docs = [];
      bytes = 0;
    }
    body.push(action, document);
    docs.push(i / 2);
    bytes += size;
  }
  if (body.length > 0) bodies.push({ lines: docs, payload: body });
  return bodies;
}

/**
 * The bulk call of one client, on body lines already serialized (both clients send a string
 * as it is); rejects on a failed request (status, connection, abort).
 */
interface BulkClient {
  bulk(body: string[], signal: AbortSignal): Promise<{ items: BulkItem[] }>;
  close(): Promise<void>;
}

// Plain media types: the Elastic client's default `compatible-with=9` is refused by
// Elasticsearch 8, and these are understood by 7.x, 8.x and 9.x alike.
const PLAIN_HEADERS = { 'content-type': 'application/x-ndjson', accept: 'application/json' };

// Each client is loaded when a container first ships with it, not when the plugin starts:
// they cost the plugin memory that hosts not shipping to Elasticsearch should not pay.
async function elasticBulk(config: ElasticsearchConfig): Promise<BulkClient> {
  const { Client } = await import('@elastic/elasticsearch');
  const credentials = config.credentials;
  const client = new Client({
    nodes: config.nodes,
    // The engine's backoff governs; within one send, each address is tried once.
    maxRetries: config.nodes.length - 1,
    tls: config.tls,
    ...(credentials === null
      ? {}
      : { auth: credentials.kind === 'api-key' ? { apiKey: credentials.apiKey } : { username: credentials.username, password: credentials.password } }),
  });
  return {
    bulk: async (body, signal) => {
      try {
        const response = await client.bulk({ operations: body }, { signal, headers: PLAIN_HEADERS });
        return { items: response.items.map((entry) => Object.values(entry)[0] as BulkItem) };
      } catch (err) {
        if ((err as Error).name !== 'ProductNotSupportedError') throw err;
        throw new Error(`${(err as Error).message} For OpenSearch, set --log-opt elasticsearch-flavor=opensearch.`, { cause: err });
      }
    },
    close: () => client.close(),
  };
}

async function openSearchBulk(config: ElasticsearchConfig): Promise<BulkClient> {
  const { Client } = await import('@opensearch-project/opensearch');
  const credentials = config.credentials;
  const client = new Client({
    nodes: config.nodes,
    maxRetries: config.nodes.length - 1,
    ssl: config.tls,
    ...(credentials?.kind === 'basic' ? { auth: { username: credentials.username, password: credentials.password } } : {}),
  });
  return {
    bulk: async (body, signal) => {
      signal.throwIfAborted();
      // Its types want objects; its serializer sends a string line as it is, as the Elastic client's does.
      const request = client.bulk({ body: body as unknown as Array<Record<string, unknown>> });
      // Braces: abort() returns the request, a thenable, which EventTarget would await and
      // report its rejection as uncaught.
      const onAbort = (): void => {
        request.abort();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const response = await request;
        const items = (response.body.items as Array<Record<string, BulkItem>>).map((entry) => Object.values(entry)[0]!);
        return { items };
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },
    close: () => client.close(),
  };
}

/**
 * A failed bulk request as a SendError: transient for the cluster's state and the network
 * (see transientStatus), not for a request the server calls bad (400, 413), which the engine
 * sends in halves.
 */
function requestFailure(err: unknown): SendError {
  const meta = (err as { meta?: { statusCode?: number; headers?: Record<string, string> } }).meta;
  // A connection error has no status (the Elastic client says 0): only a 4xx answer names the request.
  const status = meta?.statusCode || (err as { statusCode?: number }).statusCode || 0;
  const transient = status < 400 || status >= 500 || transientStatus(status);
  const afterMs = retryAfterMs(meta?.headers?.['retry-after']);
  return new SendError(`elasticsearch: the bulk request failed: ${withoutContent((err as Error).message)}`, {
    transient,
    ...(afterMs === undefined ? {} : { retryAfterMs: afterMs }),
    ...(transient ? {} : { rejectCode: status === 413 ? ('too_large' as const) : ('invalid' as const) }),
    cause: err,
  });
}

class ElasticsearchBackend implements Backend {
  private readonly encoder: DocumentEncoder;
  private readonly config: ElasticsearchConfig;
  /** Made at the first send (neither client connects before its first request). */
  private client: Promise<BulkClient> | null = null;

  constructor(config: ElasticsearchConfig, container: ContainerContext) {
    this.encoder = new DocumentEncoder(container, config.destination);
    this.config = config;
  }

  private connect(): Promise<BulkClient> {
    this.client ??= this.config.flavor === 'opensearch' ? openSearchBulk(this.config) : elasticBulk(this.config);
    return this.client;
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (lines.length === 0) return DELIVERED;
    let body: string[];
    try {
      body = bodyLines(this.encoder.encode(lines));
    } catch (err) {
      throw new SendError(`elasticsearch: encoding the documents failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
    }
    return sendInOrder(bulkBodies(body), (request) => this.bulk(request, signal));
  }

  /** One bulk request: what each of its documents became. */
  private async bulk({ lines, payload }: Request<string[]>, signal: AbortSignal): Promise<SendResult> {
    let items: BulkItem[];
    try {
      ({ items } = await (await this.connect()).bulk(payload, signal));
    } catch (err) {
      // Either client's own abort error would hide why the engine aborted (shutdown, its send deadline).
      throw signal.aborted ? abortError(signal) : requestFailure(err);
    }
    if (items.length !== lines.length) {
      throw new SendError(`the bulk response has ${items.length} results for ${lines.length} documents`, { transient: true });
    }
    const outcome = classifyItems(items);
    if (outcome.rejected.length === 0 && outcome.retryable.length === 0) return DELIVERED;
    const rejected: Rejection[] = outcome.rejected.map((position) => ({ index: lines[position]!, code: 'invalid', reason: describeRefusal(items[position]!) }));
    if (outcome.retryable.length === 0) return { rejected };
    const first = items[outcome.retryable[0]!]!;
    return {
      rejected,
      retry: {
        lines: outcome.retryable.map((position) => lines[position]!),
        reason: `${outcome.retryable.length} of ${lines.length} documents were refused for now (first: ${describeRefusal(first)})`,
      },
    };
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (client) await (await client).close();
  }
}

export const elasticsearchFactory: BackendFactory<ElasticsearchConfig> = {
  name: 'elasticsearch',
  optionKeys: OPTION_KEYS,
  parseOptions: (opts) => parseElasticsearchOptions(opts),
  batchLimits(): BatchLimits {
    // Elastic's advice is bulk bodies of 5-15 MB: 5 MiB of lines plus what a document adds
    // to each (its action, time, container fields), in 5000 documents at most. Heavier
    // documents go as several requests (bulkBodies).
    return { maxLines: 5000, maxBytes: 5 << 20, lineOverheadBytes: 512 };
  },
  create(config: ElasticsearchConfig, container: ContainerContext): Backend {
    return new ElasticsearchBackend(config, container);
  },
};
