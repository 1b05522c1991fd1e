// Elasticsearch and OpenSearch through the bulk API, on transport/http.ts: one POST of
// NDJSON per request to the first address that answers. Like the Elastic client, flavor
// `elasticsearch` refuses a server that does not say `X-Elastic-Product: Elasticsearch`,
// which OpenSearch never says; `elasticsearch-flavor=opensearch` skips that check and API keys.
//
// At least once without duplicates: every document has an `_id` derived from the line and
// goes with `create`, so when a batch goes again (after a restart) the documents already
// taken come back 409 (done) instead of being indexed twice. Per document: 429 and 5xx (and
// a permission error) are lines to send again, which the engine does after its backoff;
// any other refusal (a mapping conflict) is a rejection, since sending it again would fail
// the same way forever.
import { createHash, hash } from 'node:crypto';
import type tls from 'node:tls';
import { defineOptions, type OptionValues } from '../options/schema.ts';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type ProxySettings, type Rejection, type SendResult, SendError } from '../delivery/backend.ts';
import { parseUrl } from '../transport/address.ts';
import { HttpClient, type HttpResponse, classifyResponse } from '../transport/http.ts';
import { type Request, UNORDERED_IN_FLIGHT, cutRequests, range, sendInOrder, sendUnordered } from '../transport/requests.ts';
import { tlsFileOptions, tlsOptions } from '../transport/tls.ts';
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
  proxy: ProxySettings;
}

/** The plugin settings (config.json's env) that carry credentials. */
const CREDENTIAL_SETTINGS = {
  username: 'ELASTICSEARCH_USERNAME',
  password: 'ELASTICSEARCH_PASSWORD',
  apiKey: 'ELASTICSEARCH_API_KEY',
} as const;

const DEFAULT_URL = 'http://localhost:9200';
/** What Kibana's `logstash-*` index pattern finds, one index per day. */
const DEFAULT_INDEX = 'logstash-YYYY.MM.DD';
const TLS_FILE = 'a PEM file, as the plugin sees it';

export const ELASTICSEARCH_OPTIONS = defineOptions([
  { key: 'elasticsearch-url', type: 'custom', default: DEFAULT_URL, accepts: 'a comma list of `http(s)://host[:port][/path]`, without credentials', parse: parseUrls, defaultDoc: "`http://localhost:9200`", doc: "comma list of `http(s)://host[:port][/path]`; requests go round the list, and a dead address is passed over within the same send. Credentials in an address are refused (they would show in `docker inspect`): use the plugin settings below" },
  { key: 'elasticsearch-flavor', type: 'custom', default: 'elasticsearch', accepts: '`elasticsearch` or `opensearch`', parse: parseFlavor, defaultDoc: "`elasticsearch`", doc: "`elasticsearch` or `opensearch`: which server (OpenSearch has no product header and no API keys)" },
  { key: 'elasticsearch-index', type: 'custom', accepts: 'an index name with YYYY, MM, DD, HH (the line\'s UTC time)', parse: parseIndexPattern, defaultDoc: "`logstash-YYYY.MM.DD`", doc: "index name pattern: `YYYY`, `MM`, `DD`, `HH` are the line's UTC year, month, day and hour, everything else is literal (`app-YYYY.MM`, `docker-logs`). Index names are lower case, so any other upper-case letter, `{ }` (Logstash's `%{+YYYY.MM.dd}`, date math) and the characters Elasticsearch forbids (`\\ / * ? \" < > | , # :` space, a leading `- _ +`) are refused" },
  { key: 'elasticsearch-data-stream', type: 'custom', accepts: "a lower-case data stream name not starting with '.ds-'", parse: parseDataStream, defaultDoc: "none", doc: "write to this data stream instead (e.g. `logs-docker-default`, which the built-in `logs-*-*` template of Elasticsearch 8+ matches); not with `elasticsearch-index`" },
  { key: 'elasticsearch-tls-ca-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "the system's CAs", doc: "PEM file of the CA that signs the servers' certificates (`https://` addresses)" },
  { key: 'elasticsearch-tls-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "none", doc: "PEM client certificate and key, for servers that ask for one (both or neither)" },
  { key: 'elasticsearch-tls-key', type: 'string', accepts: TLS_FILE, defaultDoc: "none", doc: "PEM client certificate and key, for servers that ask for one (both or neither)" },
  { key: 'elasticsearch-tls-skip-verify', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "`true` skips verifying the server's certificate" },
]);

/** Credentials are plugin settings, never log-opts (`docker inspect` shows those). */
export const ELASTICSEARCH_SETTINGS = defineOptions([
  { key: CREDENTIAL_SETTINGS.username, type: 'string', doc: 'user for basic auth, with `ELASTICSEARCH_PASSWORD` (both or neither)' },
  { key: CREDENTIAL_SETTINGS.password, type: 'string', secret: true, doc: 'password of `ELASTICSEARCH_USERNAME`' },
  { key: CREDENTIAL_SETTINGS.apiKey, type: 'string', secret: true, doc: 'an Elasticsearch API key (encoded form: base64 of id:key, sent as `Authorization: ApiKey`), instead of basic auth; not for OpenSearch' },
]);

export function configureElasticsearch(
  values: OptionValues<typeof ELASTICSEARCH_OPTIONS>,
  settings: { proxy: ProxySettings; own: OptionValues<typeof ELASTICSEARCH_SETTINGS> },
): ElasticsearchConfig {
  const flavor = values['elasticsearch-flavor'];
  const nodes = values['elasticsearch-url'];
  const skipVerify = values['elasticsearch-tls-skip-verify'];
  const files = tlsFileOptions('elasticsearch-tls', values);
  const tlsSet = [files.ca, files.cert, files.key].find((entry) => entry?.file)?.key ?? (skipVerify ? 'elasticsearch-tls-skip-verify' : undefined);
  if (tlsSet && !nodes.some((url) => url.startsWith('https:'))) {
    throw new InvalidOptionError(`log opt '${tlsSet}' is set, but no address in 'elasticsearch-url' is https://`);
  }
  const dataStream = values['elasticsearch-data-stream'];
  const index = values['elasticsearch-index'];
  if (dataStream !== undefined && index !== undefined) {
    throw new InvalidOptionError(`log opts 'elasticsearch-index' and 'elasticsearch-data-stream' cannot be given together`);
  }
  return {
    flavor,
    nodes,
    destination: dataStream !== undefined ? { kind: 'data-stream', name: dataStream } : { kind: 'index', pattern: index ?? parseIndexPattern(DEFAULT_INDEX) },
    credentials: parseCredentials(settings.own, flavor),
    // SNI comes from each address's host name.
    tls: tlsOptions({ ...files, skipVerify }),
    proxy: settings.proxy,
  };
}

function parseFlavor(value: string): Flavor {
  if ((FLAVORS as readonly string[]).includes(value)) return value as Flavor;
  throw new InvalidOptionError(`invalid value '${value}' for log opt 'elasticsearch-flavor': expected ${FLAVORS.join(' or ')}`);
}

function parseUrls(value: string): string[] {
  const rules = {
    schemes: ['http', 'https'],
    expected: 'a comma list of http(s)://host[:port][/path]',
    noQuery: true,
    credentials: `log opt 'elasticsearch-url' must not carry credentials (user:password@): set ${CREDENTIAL_SETTINGS.username} and ${CREDENTIAL_SETTINGS.password}, or ${CREDENTIAL_SETTINGS.apiKey}, in the plugin settings`,
  };
  return value.split(',').map((entry) => parseUrl('elasticsearch-url', entry, rules).href.replace(/\/$/, ''));
}

function parseDataStream(dataStream: string): string {
  if (dataStream.startsWith('.ds-') || /[A-Z]/.test(dataStream)) {
    throw new InvalidOptionError(
      `invalid value '${dataStream}' for log opt 'elasticsearch-data-stream': expected a lower-case name not starting with '.ds-', such as logs-docker-default`,
    );
  }
  checkIndexName('elasticsearch-data-stream', dataStream);
  return dataStream;
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

function parseCredentials(env: Readonly<Record<string, string | undefined>>, flavor: Flavor): Credentials | null {
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
/** What a line's identity is hashed from, in one buffer when it fits (most lines are far shorter). */
const SCRATCH_BYTES = 16 << 10;

export interface BulkAction {
  create: { _index: string; _id: string };
}

/** Builds the bulk operations of one container; what never changes is built once. */
export class DocumentEncoder {
  private readonly destination: Destination;
  private readonly dataStreamJson: string;
  private readonly containerId: string;
  private readonly fixed: Record<string, unknown>;
  /** The fixed fields as the end of a document's JSON: `"tag":...}`. */
  private readonly fixedJson: string;
  /** The index of the period last seen, as JSON text. */
  private indexCache: { period: number; name: string } | null = null;
  /**
   * The id each line was given, so a line the engine sends again (alone, or with fewer
   * others) keeps it: an identical line's rank in a smaller batch could name another's id.
   */
  private readonly ids = new WeakMap<OutgoingLine, string>();
  /** `${containerId}\0`, then each line's part of what its identity hashes (a longer line is hashed in two parts). */
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private readonly prefixBytes: number;

  constructor(container: ContainerContext, destination: Destination) {
    this.destination = destination;
    this.dataStreamJson = destination.kind === 'data-stream' ? JSON.stringify(destination.name) : '';
    this.containerId = container.id;
    // An id too long for the buffer (never Docker's 64 hex digits) leaves no room: every line takes the two-part hash.
    this.prefixBytes = Buffer.byteLength(`${container.id}\0`) <= SCRATCH_BYTES / 2 ? this.scratch.write(`${container.id}\0`, 0, 'utf8') : SCRATCH_BYTES;
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
    this.fixedJson = JSON.stringify(this.fixed).slice(1);
  }

  /**
   * The bulk body's lines, in order: `[action, doc, action, doc, ...]`, each as the JSON text
   * it goes as (built here as text: no object per line to stringify again).
   */
  encode(lines: readonly OutgoingLine[]): string[] {
    const ids = this.idsOf(lines);
    return lines.flatMap((line, i) => this.operation(line, ids[i]!));
  }

  /** The `_id` of each line of a batch (identical lines in one batch get distinct ones). */
  idsOf(lines: readonly OutgoingLine[]): string[] {
    // How many lines of this batch had each identity so far.
    const seen = new Map<string, number>();
    return lines.map((line) => {
      let _id = this.ids.get(line);
      if (_id === undefined) {
        const identity = this.identity(line);
        const rank = seen.get(identity) ?? 0;
        seen.set(identity, rank + 1);
        // Identical lines in one batch are distinct documents: each after the first has its rank in its id.
        _id = rank === 0 ? identity : createHash('sha256').update(`${identity}\0${rank}`).digest('base64url').slice(0, ID_LENGTH);
        this.ids.set(line, _id);
      }
      return _id;
    });
  }

  /** A line's two lines of the bulk body: its action and its document. */
  operation(line: OutgoingLine, _id: string): [string, string] {
    // An _id is base64url: nothing in it to escape.
    return [`{"create":{"_index":${this.index(line.timeNano)},"_id":"${_id}"}}`, this.documentJson(line)];
  }

  /**
   * A digest of what makes a line this line: the same container, time, stream and bytes,
   * hashed as `${containerId}\0${timeNano}\0${source}\0` and the line's bytes (ids made by
   * earlier versions stay the same, so a batch sent again after an upgrade is still a 409).
   * The container's id is written once into a buffer of the encoder's, each line's part
   * after it, and hashed in one call: a hash object per line and its two updates were a
   * third of the backend's CPU.
   */
  private identity(line: OutgoingLine): string {
    const scratch = this.scratch;
    const own = `${line.timeNano}\0${line.source}\0`;
    // Digits and a stream name: one byte a character.
    if (this.prefixBytes + own.length + line.line.length > scratch.length) {
      return createHash('sha256').update(`${this.containerId}\0${own}`).update(line.line).digest('base64url').slice(0, ID_LENGTH);
    }
    let end = this.prefixBytes + scratch.write(own, this.prefixBytes, 'latin1');
    end += line.line.copy(scratch, end);
    return hash('sha256', scratch.subarray(0, end), 'base64url').slice(0, ID_LENGTH);
  }

  /**
   * JSON.stringify(document(line)), byte for byte; a plain line (no parsed fields, not a
   * partial) is built from the container's fields stringified once.
   */
  documentJson(line: OutgoingLine): string {
    if (line.fields || line.partial) return JSON.stringify(this.document(line));
    return `{"@timestamp":"${rfc3339Nano(line.timeNano)}","message":${JSON.stringify(line.line.toString('utf8'))},"stream":"${line.source}",${this.fixedJson}`;
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

  /** The index name for a line of this time, as JSON text. */
  private index(timeNano: bigint): string {
    const destination = this.destination;
    if (destination.kind === 'data-stream') return this.dataStreamJson;
    const ms = Number(timeNano / 1_000_000n);
    const periodMs = destination.pattern.periodMs;
    // A pattern without date fields names one index: it is built once, as period 0.
    const period = periodMs === null ? 0 : Math.floor(ms / periodMs);
    if (this.indexCache?.period !== period) this.indexCache = { period, name: JSON.stringify(indexName(destination.pattern, new Date(ms))) };
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

/**
 * Documents per bulk request: a batch of 5,000 goes as several, UNORDERED_IN_FLIGHT at once,
 * each encoded when it is due, so the cluster indexes one while the next is encoded and on
 * its way (transport/requests.ts: bulk documents need no order on the wire).
 */
const BULK_REQUEST_DOCUMENTS = 1250;

/**
 * Some documents' body lines (`operations[k]` is document `docs[k]` of the batch) cut into
 * requests of at most MAX_BULK_BODY_BYTES, a document always with its action, each with the
 * batch's lines it carries: one request unless the documents are heavy.
 */
function bulkBodies(operations: readonly (readonly [string, string])[], docs: readonly number[]): Request<string[]>[] {
  const size = (op: readonly [string, string]): number => Buffer.byteLength(op[0]) + Buffer.byteLength(op[1]) + 2;
  return cutRequests(operations, { maxBytes: MAX_BULK_BODY_BYTES }, size).map((group) => ({
    lines: group.map((k) => docs[k]!),
    payload: group.flatMap((k) => operations[k]!),
  }));
}

// Plain media types: the Elastic client's `compatible-with=9` is refused by Elasticsearch 8,
// and these are understood by 7.x, 8.x and 9.x alike, and by OpenSearch.
const BULK_HEADERS = { 'content-type': 'application/x-ndjson', accept: 'application/json' };
/**
 * The bulk answer cut down to what classifyItems and describeRefusal read: each item's
 * status and its error's type and reason (Elasticsearch and OpenSearch take `filter_path`
 * on every REST API, Elasticsearch since 1.6, OpenSearch since 1.0; Logstash's output sets
 * one too). A created document's item is then `{"create":{"status":201}}`, not its index,
 * id, version, shards and sequence numbers: an eighth of the answer to read and parse. An
 * error answer to the whole request is not filtered (its `error` stays whole).
 */
const BULK_FILTER = 'filter_path=items.*.status,items.*.error.type,items.*.error.reason';
/** Answers that mean this node cannot serve now, while another may: the next address is tried. */
const NEXT_NODE_STATUSES = new Set([502, 503, 504]);

function authorization(credentials: Credentials | null): Record<string, string> {
  if (credentials === null) return {};
  if (credentials.kind === 'api-key') return { authorization: `ApiKey ${credentials.apiKey}` };
  return { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` };
}

/** A refused bulk request's body, fit for the log: its error type and reason, no document. */
function refusalOf(response: HttpResponse): string {
  try {
    const error = (JSON.parse(response.body.toString('utf8')) as { error?: { type?: string; reason?: string } | string }).error;
    if (typeof error === 'string') return withoutContent(error);
    if (error) return withoutContent(`${error.type ?? 'error'}${error.reason ? ': ' + error.reason : ''}`);
  } catch {
    /* not JSON: its text */
  }
  return withoutContent(response.body.toString('utf8', 0, Math.min(response.body.length, 1200)).trim());
}

class ElasticsearchBackend implements Backend {
  private readonly encoder: DocumentEncoder;
  private readonly config: ElasticsearchConfig;
  /** Connects at the first request, not before. */
  private readonly http: HttpClient;
  private readonly headers: Record<string, string>;
  /** The address that answered last: sends go there first. */
  private node = 0;

  constructor(config: ElasticsearchConfig, container: ContainerContext) {
    this.encoder = new DocumentEncoder(container, config.destination);
    this.config = config;
    this.http = new HttpClient({
      name: 'elasticsearch',
      tls: config.tls,
      proxy: config.proxy,
      // Elastic's default request timeout; the engine's send deadline (60 s) bounds the whole send.
      timeoutMs: 30_000,
      // The cluster's state, not the request's: fixing the credentials, the role or the index loses nothing.
      transientStatuses: [401, 403, 404],
    });
    this.headers = { ...BULK_HEADERS, ...authorization(config.credentials) };
  }

  /**
   * One bulk request, to each address in turn from the last that answered, until one
   * answers other than with a connection failure or 502/503/504 (as the Elastic client's
   * retries on other nodes). Resolves to its items; throws the request's SendError.
   */
  private async post(payload: readonly string[], signal: AbortSignal): Promise<BulkItem[]> {
    const body = payload.join('\n') + '\n';
    const nodes = this.config.nodes;
    let failure: unknown;
    for (let attempt = 0; attempt < nodes.length; attempt++) {
      const node = (this.node + attempt) % nodes.length;
      let response: HttpResponse;
      try {
        response = await this.http.request({ url: `${nodes[node]}/_bulk?${BULK_FILTER}`, method: 'POST', headers: this.headers, body }, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        failure = err;
        continue;
      }
      if (NEXT_NODE_STATUSES.has(response.status) && attempt < nodes.length - 1) continue;
      this.node = node;
      return this.items(response);
    }
    throw failure;
  }

  private items(response: HttpResponse): BulkItem[] {
    const refused = classifyBulkResponse(response);
    if (refused) throw refused;
    if (this.config.flavor === 'elasticsearch' && response.headers['x-elastic-product'] !== 'Elasticsearch') {
      throw new SendError(
        'elasticsearch: the server is not Elasticsearch (its answer has no X-Elastic-Product: Elasticsearch header). For OpenSearch, set --log-opt elasticsearch-flavor=opensearch.',
        { transient: true },
      );
    }
    let parsed: { items?: Array<Record<string, BulkItem>> };
    try {
      parsed = JSON.parse(response.body.toString('utf8')) as typeof parsed;
    } catch (err) {
      throw new SendError(`elasticsearch: ${response.where} answered ${response.status} with a body that is not JSON`, { transient: true, cause: err });
    }
    return (parsed.items ?? []).map((entry) => Object.values(entry)[0]!);
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (lines.length === 0) return DELIVERED;
    // The ids first, for the whole batch: an identical line's rank is the batch's.
    const ids = this.encoding(() => this.encoder.idsOf(lines));
    const groups: Request<null>[] = [];
    for (let from = 0; from < lines.length; from += BULK_REQUEST_DOCUMENTS) {
      groups.push({ lines: range(from, Math.min(lines.length, from + BULK_REQUEST_DOCUMENTS)), payload: null });
    }
    return sendUnordered(groups, UNORDERED_IN_FLIGHT.elasticsearch, signal, async (group) => {
      const operations = this.encoding(() => group.lines.map((i) => this.encoder.operation(lines[i]!, ids[i]!)));
      const requests = bulkBodies(operations, group.lines);
      return requests.length === 1 ? this.bulk(requests[0]!, signal) : sendInOrder(requests, (request) => this.bulk(request, signal));
    });
  }

  private encoding<T>(encode: () => T): T {
    try {
      return encode();
    } catch (err) {
      throw new SendError(`elasticsearch: encoding the documents failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
    }
  }

  /** One bulk request: what each of its documents became. */
  private async bulk({ lines, payload }: Request<string[]>, signal: AbortSignal): Promise<SendResult> {
    const items = await this.post(payload, signal);
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
    await this.http.close();
  }
}

/**
 * A bulk answer that is not 2xx as a SendError: transient for the cluster's state and the
 * network (429, 5xx, 408, 401, 403, 404), not for a request the server calls bad (400,
 * 413: too_large), which the engine sends in halves. Null for 2xx.
 */
function classifyBulkResponse(response: HttpResponse): SendError | null {
  return classifyResponse(response, { name: 'elasticsearch', transientStatuses: [401, 403, 404] }, refusalOf);
}

export const elasticsearchFactory: BackendFactory<ElasticsearchConfig, typeof ELASTICSEARCH_OPTIONS, typeof ELASTICSEARCH_SETTINGS> = {
  name: 'elasticsearch',
  options: ELASTICSEARCH_OPTIONS,
  settings: ELASTICSEARCH_SETTINGS,
  configure: configureElasticsearch,
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
