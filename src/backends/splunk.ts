// Splunk's HTTP Event Collector, with the events Docker's splunk driver sends (moby
// daemon/logger/splunk): POST /services/collector/event/1.0, `Authorization: Splunk <token>`,
// the events concatenated, in the inline, json or raw format, `time` as seconds with six
// decimals, optionally gzipped. What differs on purpose (README): the connection check
// runs before the first batch, not at `docker run`; every request has a timeout; with
// splunk-index-acknowledgment a batch is done only once the indexers acknowledged it, on a
// channel of the container's own; HEC's answers map to the delivery outcomes, so a poison
// event is rejected alone and a wrong token or index is retried until it is fixed.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import { type Backend, type BackendFactory, type BackendSettings, type BatchLimits, DELIVERED, type SendResult, SendError, abortError } from '../delivery/backend.ts';
import { RateLimitedWarning } from '../observability/log.ts';
import { type OptionValues, defineOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import { shownAddress } from '../transport/address.ts';
import { HttpClient, type HttpResponse, retryAfterMs } from '../transport/http.ts';
import { type Request, cutRequests, range, resultInLines, sendInOrder } from '../transport/requests.ts';
import { compactJson, goJsonBytes, goJsonString, goJsonValue, goString } from './go-json.ts';

/** Go's strconv.ParseInt (an optional sign) within gzip's levels, as Docker reads splunk-gzip-level. */
function gzipLevel(value: string, key: string): number {
  const n = /^[+-]?\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= -1 && n <= 9)) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number from -1 to 9`);
  return n;
}

export const SPLUNK_OPTIONS = defineOptions([
  { key: 'splunk-url', type: 'string', required: true, accepts: '`http(s)://host:port` (no path)', doc: '`http(s)://host:port`, no path (as in Docker): the collector' },
  { key: 'splunk-token', type: 'string', required: true, secret: true, accepts: 'the HEC token (never logged or shown in errors)', doc: 'the HEC token' },
  { key: 'splunk-source', type: 'string', accepts: 'text', defaultDoc: 'none', doc: 'the events\' `source`' },
  { key: 'splunk-sourcetype', type: 'string', accepts: 'text', defaultDoc: 'none', doc: 'the events\' `sourcetype`' },
  { key: 'splunk-index', type: 'string', accepts: 'an index name', defaultDoc: "the token's", doc: 'the events\' `index`' },
  { key: 'splunk-capath', type: 'string', accepts: 'a PEM file', defaultDoc: "the system's CAs", doc: 'PEM file of the CA that signs the collector\'s certificate' },
  { key: 'splunk-caname', type: 'string', accepts: 'a host name', defaultDoc: "the URL's host", doc: 'the name the collector\'s certificate must carry' },
  { key: 'splunk-insecureskipverify', type: 'bool', default: 'false', doc: '`true` skips verifying the collector\'s certificate' },
  { key: 'splunk-format', type: 'enum', default: 'inline', values: ['inline', 'json', 'raw'], doc: '`inline`: the line as a string in `event.line`; `json`: a line that is JSON embedded as JSON; `raw`: the tag, the attributes and the line as one string' },
  { key: 'splunk-verify-connection', type: 'bool', default: 'true', doc: '`true` checks the collector (an OPTIONS request) before the first batch, not at `docker run`' },
  { key: 'splunk-gzip', type: 'bool', default: 'false', doc: '`true` gzips the requests' },
  { key: 'splunk-gzip-level', type: 'custom', default: '-1', accepts: '-1 (the library default) to 9', parse: gzipLevel, doc: '-1 (the library default) to 9: the gzip level' },
  { key: 'splunk-index-acknowledgment', type: 'bool', default: 'false', doc: '`true`: a batch is done only once the indexers acknowledged it (the token must have indexer acknowledgment enabled)' },
]);

export type SplunkFormat = 'inline' | 'json' | 'raw';

export interface SplunkConfig {
  /** The collector's origin, `scheme://host:port`. */
  origin: string;
  token: string;
  source: string;
  sourcetype: string;
  index: string;
  tls: { ca?: Buffer; servername?: string; rejectUnauthorized: boolean };
  proxy: BackendSettings['proxy'];
  format: SplunkFormat;
  verifyConnection: boolean;
  /** The gzip level, or null for no compression. */
  gzipLevel: number | null;
  indexAck: boolean;
  /** How long a batch waits for its acknowledgment: ACK_WAIT_MS (tests make it shorter). */
  ackWaitMs: number;
}

export const EVENT_PATH = '/services/collector/event/1.0';
export const ACK_PATH = '/services/collector/ack';

export function configureSplunk(values: OptionValues<typeof SPLUNK_OPTIONS>, settings: BackendSettings): SplunkConfig {
  const url = values['splunk-url'];
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    /* reported below */
  }
  if (
    !parsed ||
    (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
    parsed.username !== '' ||
    parsed.password !== '' ||
    (parsed.pathname !== '' && parsed.pathname !== '/') ||
    parsed.search !== '' ||
    parsed.hash !== '' ||
    /[?#]/.test(url)
  ) {
    throw new InvalidOptionError(`invalid value ${shownAddress(url)} for log opt 'splunk-url': expected scheme://dns_name_or_ip:port (http or https, no path)`);
  }
  const capath = values['splunk-capath'];
  let ca: Buffer | undefined;
  if (capath !== undefined) {
    try {
      ca = fs.readFileSync(capath);
    } catch (err) {
      throw new InvalidOptionError(`cannot read the file of log opt 'splunk-capath' (${capath}): ${(err as Error).message}`);
    }
  }
  const tls: SplunkConfig['tls'] = { rejectUnauthorized: !values['splunk-insecureskipverify'] };
  if (ca) tls.ca = ca;
  if (values['splunk-caname'] !== undefined) tls.servername = values['splunk-caname'];
  return {
    origin: parsed.origin,
    token: values['splunk-token'],
    source: values['splunk-source'] ?? '',
    sourcetype: values['splunk-sourcetype'] ?? '',
    index: values['splunk-index'] ?? '',
    tls,
    proxy: settings.proxy,
    format: values['splunk-format'],
    verifyConnection: values['splunk-verify-connection'],
    gzipLevel: values['splunk-gzip'] ? values['splunk-gzip-level'] : null,
    indexAck: values['splunk-index-acknowledgment'],
    ackWaitMs: ACK_WAIT_MS,
  };
}

/**
 * Go's `fmt.Sprintf("%f", float64(UnixNano)/1e9)`: the same float64, with six decimals
 * rounded as Go rounds them. toFixed rounds an exact tie up, Go to even; a tie at the
 * seventh decimal happens when the float64 is an odd multiple of 1/128.
 */
export function splunkTime(timeNano: bigint): string {
  const seconds = Number(timeNano) / 1e9;
  const scaled = seconds * 128;
  if (Number.isInteger(scaled) && scaled % 2 !== 0) {
    const down = seconds.toFixed(7).slice(0, -1);
    if (Number(down[down.length - 1]) % 2 === 0) return down;
  }
  return seconds.toFixed(6);
}

/** Keys of an inline or json event; parse-json's keys beside them never replace them. */
const EVENT_KEYS = new Set(['line', 'source', 'tag', 'attrs']);

/**
 * The events of one container, as Docker's driver marshals them: everything but the line,
 * its stream and time is encoded once.
 */
export class SplunkEncoder {
  private readonly format: SplunkFormat;
  /** `,"tag":…,"attrs":{…}}` closing an inline or json event. */
  private readonly eventTail: string;
  /** The raw format's `tag key=value … ` before the line. */
  private readonly rawPrefix: string;
  /** `","host":…,"source":…,"sourcetype":…,"index":…}` after the time. */
  private readonly messageTail: string;

  constructor(config: Pick<SplunkConfig, 'format' | 'source' | 'sourcetype' | 'index'>, container: ContainerContext) {
    this.format = config.format;
    // Docker's splunk driver: an empty `tag` log-opt removes the tag (moby's splunk.go).
    const tag = container.tagEmpty ? '' : container.tag;
    const attrs = new Map(container.attributes);
    let eventTail = tag === '' ? '' : `,"tag":${goJsonString(tag)}`;
    if (attrs.size > 0) {
      const keys = [...attrs.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      eventTail += `,"attrs":{${keys.map((k) => `${goJsonString(k)}:${goJsonString(attrs.get(k)!)}`).join(',')}}`;
    }
    this.eventTail = eventTail + '}';
    this.rawPrefix = (tag === '' ? '' : tag + ' ') + container.attributes.map(([k, v]) => `${k}=${v} `).join('');
    let tail = `","host":${goJsonString(container.hostname)}`;
    if (config.source !== '') tail += `,"source":${goJsonString(config.source)}`;
    if (config.sourcetype !== '') tail += `,"sourcetype":${goJsonString(config.sourcetype)}`;
    if (config.index !== '') tail += `,"index":${goJsonString(config.index)}`;
    this.messageTail = tail + '}';
  }

  /** The event of one line, or null for one Docker does not send (a blank line in the raw format: HEC refuses it). */
  encode(line: OutgoingLine): Buffer | null {
    const after = `,"time":"${splunkTime(line.timeNano)}${this.messageTail}`;
    if (this.format === 'raw') {
      const text = goString(line.line);
      if (text.trim() === '') return null;
      return Buffer.from(`{"event":${goJsonString(this.rawPrefix + text)}${after}`);
    }
    const rest = `,"source":"${line.source}"${line.fields ? this.fieldsJson(line.fields) : ''}${this.eventTail}${after}`;
    const embedded = this.format === 'json' ? compactJson(line.line) : null;
    if (embedded === null) return Buffer.from(`{"event":{"line":${goJsonBytes(line.line)}${rest}`);
    return Buffer.concat([EVENT_LINE, embedded, Buffer.from(rest)]);
  }

  /** parse-json's keys in the event, beside the line (whose text still holds them all). */
  private fieldsJson(fields: Readonly<Record<string, unknown>>): string {
    let out = '';
    for (const [key, value] of Object.entries(fields)) {
      if (!EVENT_KEYS.has(key)) out += `,${goJsonString(key)}:${goJsonValue(value)}`;
    }
    return out;
  }
}

const EVENT_LINE = Buffer.from('{"event":{"line":');

/** HEC's answer to a request, when it is JSON. */
interface HecReply {
  text?: string;
  code?: number;
  ackId?: number;
  'invalid-event-number'?: number;
}

/** HEC codes (its documented "Possible error codes") that say the configuration is wrong: fixable, so retried. */
const CONFIG_CODES = new Map([
  [1, 'the token is disabled'],
  [2, 'the token is required'],
  [3, 'invalid authorization'],
  [4, 'invalid token'],
  [7, 'incorrect index'],
  [10, 'the data channel is missing'],
  [11, 'invalid data channel'],
  [14, 'indexer acknowledgment is disabled for the token'],
]);
/** Codes that name one event as bad: it is rejected alone. */
const EVENT_CODES = new Set([6, 12, 13, 15]);

const configWarning = new RateLimitedWarning('splunk: the collector refuses the configuration; retrying until it is fixed');
const noAckWarning = new RateLimitedWarning('splunk: splunk-index-acknowledgment is set but the collector gave no ackId (is acknowledgment enabled for the token?)');

/** Events per request: Docker's batch (SPLUNK_LOGGING_DRIVER_POST_MESSAGES_BATCH_SIZE's default). */
const REQUEST_EVENTS = 1000;
/** Bytes of events per request at most (before gzip), as the batch's 1 MiB of lines was. */
const MAX_REQUEST_BYTES = 1 << 20;

/** Per request: the connection, the answer's headers and its body each within this. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How long a batch waits for its acknowledgment before it goes again (within the engine's 60 s per send). */
export const ACK_WAIT_MS = 45_000;
const ACK_POLL_FIRST_MS = 100;
const ACK_POLL_MAX_MS = 2_000;

interface Reply {
  status: number;
  headers: Readonly<Record<string, string>>;
  body: HecReply | null;
  text: string;
}

export class SplunkBackend implements Backend {
  private readonly config: SplunkConfig;
  private readonly encoder: SplunkEncoder;
  /** The container's own channel: acknowledgments are per channel. */
  readonly channel = randomUUID();
  private readonly http: HttpClient;
  private verified: boolean;

  constructor(config: SplunkConfig, container: ContainerContext) {
    this.config = config;
    this.encoder = new SplunkEncoder(config, container);
    this.verified = !config.verifyConnection;
    this.http = new HttpClient({ name: 'splunk', tls: config.tls, proxy: config.proxy, timeoutMs: REQUEST_TIMEOUT_MS });
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    // Docker's requests of 1,000 events, in order (HEC orders events by a time in microseconds:
    // requests in flight together could swap lines of the same microsecond), several of them
    // per batch: what the engine does once per batch (the cursor, the settling) is done once
    // per 4,000 lines instead of per 1,000.
    const groups: Request<null>[] = [];
    for (let from = 0; from < lines.length; from += REQUEST_EVENTS) {
      groups.push({ lines: range(from, Math.min(lines.length, from + REQUEST_EVENTS)), payload: null });
    }
    if (groups.length === 1) return this.sendGroup(lines, groups[0]!.lines, signal);
    return sendInOrder(groups, (group) => this.sendGroup(lines, group.lines, signal));
  }

  /**
   * The events of some lines of the batch (`indexes`), encoded when they are due, in requests
   * of at most MAX_REQUEST_BYTES (an event over it goes alone). The result is in batch indexes.
   */
  private async sendGroup(lines: readonly OutgoingLine[], indexes: readonly number[], signal: AbortSignal): Promise<SendResult> {
    const events: Buffer[] = [];
    const lineOf: number[] = [];
    for (const i of indexes) {
      const event = this.encoder.encode(lines[i]!);
      if (event === null) continue;
      events.push(event);
      lineOf.push(i);
    }
    if (events.length === 0) return DELIVERED;
    if (!this.verified) await this.verify(signal);
    const requests = cutRequests(events, { maxBytes: MAX_REQUEST_BYTES }, (event) => event.length).map((piece) => ({ lines: piece.map((e) => lineOf[e]!), payload: piece }));
    const one = async ({ lines: at, payload }: Request<number[]>): Promise<SendResult> => resultInLines(await this.post(payload.map((e) => events[e]!), signal), at);
    return requests.length === 1 ? one(requests[0]!) : sendInOrder(requests, one);
  }

  /** Docker's check (an OPTIONS request answered 200), made when the first batch is due. */
  private async verify(signal: AbortSignal): Promise<void> {
    const reply = await this.request('OPTIONS', EVENT_PATH, null, signal);
    if (reply.status !== 200) {
      throw new SendError(`splunk-verify-connection: the collector answered ${reply.status} to OPTIONS ${EVENT_PATH}: ${reply.text.slice(0, 200)}`, { transient: true });
    }
    this.verified = true;
  }

  /** One request with the batch's events; the result's indexes are the events'. */
  private async post(events: readonly Buffer[], signal: AbortSignal): Promise<SendResult> {
    const body = Buffer.concat(events);
    const reply = await this.request('POST', EVENT_PATH, this.config.gzipLevel === null ? body : zlib.gzipSync(body, { level: this.config.gzipLevel }), signal);
    const code = reply.body?.code;
    if (reply.status === 200) {
      if (!this.config.indexAck) return DELIVERED;
      const ackId = reply.body?.ackId;
      if (typeof ackId !== 'number') {
        noAckWarning.warn();
        return DELIVERED;
      }
      return (await this.acknowledged(ackId, signal)) ? DELIVERED : { retry: { reason: `not acknowledged by the indexers within ${this.config.ackWaitMs / 1000} s (ackId ${ackId})` } };
    }
    const what = `the collector answered ${reply.status}${reply.body?.text ? ` (${reply.body.text}${code === undefined ? '' : `, code ${code}`})` : ''}`;
    if (code !== undefined && CONFIG_CODES.has(code)) {
      configWarning.warn({ status: reply.status, code, reason: CONFIG_CODES.get(code) });
      throw new SendError(`${what}: ${CONFIG_CODES.get(code)}; retried until the configuration is fixed`, { transient: true });
    }
    if (code !== undefined && EVENT_CODES.has(code)) {
      const bad = reply.body?.['invalid-event-number'];
      if (typeof bad === 'number' && bad >= 0 && bad < events.length) {
        // HEC names the event: it alone is refused, the others go again.
        return {
          rejected: [{ index: bad, code: 'invalid', reason: what }],
          retry: { lines: range(0, events.length).filter((i) => i !== bad), reason: `event ${bad} of the request was refused` },
        };
      }
      throw new SendError(what, { transient: false, rejectCode: 'invalid' });
    }
    if (reply.status === 413) throw new SendError(what, { transient: false, rejectCode: 'too_large' });
    if (reply.status === 429 || reply.status >= 500 || reply.status === 401 || reply.status === 403 || reply.status === 404 || reply.status === 405) {
      const afterMs = retryAfterMs(reply.headers['retry-after']);
      throw new SendError(what, { transient: true, ...(afterMs === undefined ? {} : { retryAfterMs: afterMs }) });
    }
    throw new SendError(what, { transient: false, rejectCode: 'invalid' });
  }

  /**
   * Polls HEC's ack endpoint for `ackId` on this container's channel until it is true or
   * the ack wait passed; a failing poll is tried again within that time.
   */
  private async acknowledged(ackId: number, signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + this.config.ackWaitMs;
    const query = Buffer.from(JSON.stringify({ acks: [ackId] }));
    for (let wait = ACK_POLL_FIRST_MS; ; wait = Math.min(wait * 2, ACK_POLL_MAX_MS)) {
      try {
        await sleep(Math.min(wait, Math.max(0, deadline - Date.now())), undefined, { signal });
      } catch {
        throw abortError(signal);
      }
      try {
        const reply = await this.request('POST', ACK_PATH, query, signal);
        if (reply.status === 200 && (reply.body as { acks?: Record<string, boolean> } | null)?.acks?.[String(ackId)] === true) return true;
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        void err; // the next poll, within the deadline
      }
      if (Date.now() >= deadline) return false;
    }
  }

  /** One request, whatever its answer; no answer at all (a connection, a timeout) throws a transient SendError. */
  private async request(method: 'POST' | 'OPTIONS', path: string, body: Buffer | null, signal: AbortSignal): Promise<Reply> {
    if (signal.aborted) throw abortError(signal);
    const headers: Record<string, string> = {};
    if (method === 'POST') headers.authorization = `Splunk ${this.config.token}`;
    if (method === 'POST' && path === EVENT_PATH && this.config.gzipLevel !== null) headers['content-encoding'] = 'gzip';
    if (this.config.indexAck) headers['x-splunk-request-channel'] = this.channel;
    // The token is in no error: it only ever goes in the request's headers.
    const response: HttpResponse = await this.http.request(
      { url: this.config.origin + path, method: method as 'POST', headers, ...(body === null ? {} : { body }) },
      signal,
    );
    const text = response.body.toString('utf8');
    let parsed: HecReply | null = null;
    try {
      const value: unknown = JSON.parse(text);
      if (value !== null && typeof value === 'object') parsed = value as HecReply;
    } catch {
      /* not JSON: a proxy's page */
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  async close(): Promise<void> {
    await this.http.close().catch(() => {});
  }
}

export const splunkFactory: BackendFactory<SplunkConfig, typeof SPLUNK_OPTIONS> = {
  name: 'splunk',
  options: SPLUNK_OPTIONS,
  configure: configureSplunk,
  batchLimits(): BatchLimits {
    // Four of Docker's requests of 1,000 events (REQUEST_EVENTS) and 1 MiB; the collector's
    // own limit is far larger (max_content_length).
    return { maxLines: 4 * REQUEST_EVENTS, maxBytes: 4 * MAX_REQUEST_BYTES };
  },
  create(config: SplunkConfig, container: ContainerContext): Backend {
    return new SplunkBackend(config, container);
  },
};
