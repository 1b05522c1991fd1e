// CloudWatch Logs through the AWS SDK, with the events and `awslogs-*` options of Docker's
// awslogs driver (moby daemon/logger/awslogs): one event per line (or per multiline event),
// the raw line as its message, its time in milliseconds; the group and stream created as
// the options say. Unlike Docker's driver nothing is dropped after a failed put: throttling,
// 5xx, outages and credential or permission errors fail the send and the engine retries
// it; events the service refuses to store are reported rejected; creation happens at the
// first send, so an unreachable endpoint never fails `docker run`.
import type { CloudWatchLogsClient, InputLogEvent, RejectedLogEventsInfo } from '@aws-sdk/client-cloudwatch-logs';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type Rejection, type SendResult, SendError, transientError } from '../delivery/backend.ts';
import { type ContainerContext } from '../shaping/container.ts';
import { type OutgoingLine } from '../shaping/line.ts';
import { InvalidOptionError } from '../options/values.ts';
import { defineOptions, type OptionValues } from '../options/schema.ts';
import { type GoRegexp, compileGoRegexp } from '../shaping/go-regexp.ts';
import { datetimeFormatPattern, type MultilineOptions } from '../shaping/multiline.ts';
import { shownAddress } from '../transport/address.ts';
import { type Request, cutRequests, sendInOrder, splitUtf8 } from '../transport/requests.ts';

export interface AwslogsConfig {
  /** awslogs-region; null: the plugin's AWS_REGION / AWS_DEFAULT_REGION, else EC2 instance metadata. */
  region: string | null;
  group: string;
  /** awslogs-stream; null: the `tag` template if set, else the full container id. */
  stream: string | null;
  createGroup: boolean;
  createStream: boolean;
  /** From awslogs-multiline-pattern or awslogs-datetime-format: a matching line starts an event. */
  multilineStart: GoRegexp | null;
  /** awslogs-force-flush-interval-seconds: how long a batch (or an open multiline event) waits. */
  flushIntervalMs: number;
  endpoint: string | null;
  /** awslogs-credentials-endpoint: a path on the ECS credentials host, 169.254.170.2. */
  credentialsPath: string | null;
  /** awslogs-format: sent as the x-amzn-logs-format header. */
  format: 'json/emf' | null;
  /** The plugin settings of AWSLOGS_SETTINGS (the region, instance metadata), handed in. */
  environment: Readonly<Record<string, string | undefined>>;
}

// PutLogEvents' limits (CloudWatch Logs API reference), as Docker's driver counts them.
export const PER_EVENT_BYTES = 26;
export const MAX_PUT_BYTES = 1_048_576;
export const MAX_PUT_EVENTS = 10_000;
export const MAX_EVENT_BYTES = 262_144 - PER_EVENT_BYTES;
export const MAX_PUT_SPAN_MS = 24 * 3_600_000;

const DEFAULT_FLUSH_INTERVAL_S = 5;
/** A day: the batch delay and multiline flush timeout are timers, which take at most 24.8 days. */
const MAX_FLUSH_INTERVAL_S = 86_400;
const FORMATS = ['json/emf'] as const;
/** Retries of one put within a send (a fresh sequence token, a re-created stream) before the engine's backoff takes over. */
const MAX_PUT_REPAIRS = 3;

export const AWSLOGS_OPTIONS = defineOptions([
  { key: 'awslogs-region', type: 'custom', accepts: 'a region name (`us-east-1`)', parse: parseRegion, defaultDoc: "the plugin's `AWS_REGION` (or `AWS_DEFAULT_REGION`), else EC2 instance metadata", doc: "the region" },
  { key: 'awslogs-endpoint', type: 'custom', accepts: 'an http(s):// URL without user or password', parse: parseEndpoint, defaultDoc: "the region's", doc: "an `http://` or `https://` URL (no user or password), e.g. a VPC endpoint" },
  { key: 'awslogs-group', type: 'string', required: true, accepts: 'a log group name', defaultDoc: "required", doc: "the log group" },
  { key: 'awslogs-stream', type: 'string', accepts: 'a log stream name', defaultDoc: "the `tag` template if `tag` is set, else `{{.FullID}}`", doc: "the log stream" },
  { key: 'awslogs-create-group', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "create the group if CreateLogStream says it is missing" },
  { key: 'awslogs-create-stream', type: 'bool', default: 'true', defaultDoc: "`true`", doc: "`false`: never create the stream (it must exist; IAM may then omit `logs:CreateLogStream`)" },
  { key: 'awslogs-datetime-format', type: 'string', accepts: 'a strftime format (`%Y-%m-%d %H:%M:%S`)', defaultDoc: "none", doc: "strftime-like (`%a %A %w %d %b %B %m %Y %y %H %I %p %M %S %f %z %Z %j %L`), converted to the multiline pattern as Docker does; an unknown directive is an error (Docker drops it silently). Not with `awslogs-multiline-pattern`" },
  { key: 'awslogs-multiline-pattern', type: 'string', accepts: 'a Go regular expression (RE2)', defaultDoc: "none", doc: "a Go regexp (unanchored); a line that matches starts an event, the others join it" },
  // The path carries the task's credentials id.
  { key: 'awslogs-credentials-endpoint', type: 'custom', secret: true, accepts: "a path starting with '/' (`/v2/credentials/<id>`)", parse: parseCredentialsPath, defaultDoc: "none", doc: "a path on the ECS credentials host `169.254.170.2` to take credentials from" },
  {
    key: 'awslogs-force-flush-interval-seconds',
    type: 'custom',
    default: String(DEFAULT_FLUSH_INTERVAL_S),
    accepts: `a whole number of seconds from 1 to ${MAX_FLUSH_INTERVAL_S}`,
    parse: (value: string, key: string) => positiveInt(key, value, MAX_FLUSH_INTERVAL_S), defaultDoc: "`5`", doc: "a positive integer up to `86400` (a day): how long a batch that is not full waits for more lines, and an open multiline event for its next line" },
  { key: 'awslogs-max-buffered-events', type: 'custom', accepts: 'a positive whole number', parse: (value: string, key: string) => positiveInt(key, value), defaultDoc: "`4096`", doc: "a positive integer, validated and **ignored**: logship buffers on disk, in the local copy, and never blocks or drops when a queue is full" },
  { key: 'awslogs-format', type: 'custom', accepts: '`json/emf`', parse: parseFormat, defaultDoc: "none", doc: "`json/emf` sends the `x-amzn-logs-format: json/emf` header (Embedded Metric Format); not with the multiline options" },
]);

/** Plugin settings awslogs reads (the SDK reads its credentials' own: AWS_ACCESS_KEY_ID...). */
export const AWSLOGS_SETTINGS = defineOptions([
  { key: 'AWS_REGION', type: 'string', doc: 'the region when `awslogs-region` is not given (empty: `AWS_DEFAULT_REGION`, then EC2 instance metadata)' },
  { key: 'AWS_DEFAULT_REGION', type: 'string', doc: 'the region when neither `awslogs-region` nor `AWS_REGION` is given' },
  { key: 'AWS_EC2_METADATA_DISABLED', type: 'string', doc: '`true` never asks EC2 instance metadata (`169.254.169.254`) for a region or credentials; for hosts off EC2, where the lookup can only time out' },
  { key: 'AWS_EC2_METADATA_SERVICE_ENDPOINT', type: 'string', doc: 'where EC2 instance metadata answers (empty: `http://169.254.169.254`), for tests and emulators' },
]);

export function configureAwslogs(
  values: OptionValues<typeof AWSLOGS_OPTIONS>,
  settings: { own: OptionValues<typeof AWSLOGS_SETTINGS> },
): AwslogsConfig {
  const datetimeFormat = values['awslogs-datetime-format'] ?? '';
  const pattern = values['awslogs-multiline-pattern'] ?? '';
  if (datetimeFormat !== '' && pattern !== '') {
    throw new InvalidOptionError(`you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time`);
  }
  const format = values['awslogs-format'] ?? null;
  if (format !== null && (datetimeFormat !== '' || pattern !== '')) {
    throw new InvalidOptionError(
      `you cannot configure log opt 'awslogs-datetime-format' or 'awslogs-multiline-pattern' when log opt 'awslogs-format' is set to '${format}'`,
    );
  }
  return {
    region: values['awslogs-region'] ?? null,
    group: values['awslogs-group'],
    stream: values['awslogs-stream'] ?? null,
    createGroup: values['awslogs-create-group'],
    createStream: values['awslogs-create-stream'],
    multilineStart: multilineStart(datetimeFormat, pattern),
    flushIntervalMs: 1000 * values['awslogs-force-flush-interval-seconds'],
    endpoint: values['awslogs-endpoint'] ?? null,
    credentialsPath: values['awslogs-credentials-endpoint'] ?? null,
    format,
    environment: settings.own,
  };
}

function parseRegion(value: string): string {
  if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(value)) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt 'awslogs-region': expected a region name such as us-east-1`);
  }
  return value;
}

function parseFormat(value: string): 'json/emf' {
  const format = FORMATS.find((f) => f === value);
  if (!format) throw new InvalidOptionError(`invalid value '${value}' for log opt 'awslogs-format': expected ${FORMATS.join(' or ')}`);
  return format;
}

function positiveInt(key: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? '' : ` up to ${max}`;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': must specify a positive integer${range}`);
  }
  return n;
}

function multilineStart(datetimeFormat: string, pattern: string): GoRegexp | null {
  const [key, value] = datetimeFormat !== '' ? ['awslogs-datetime-format', datetimeFormat] : ['awslogs-multiline-pattern', pattern];
  if (value === '') return null;
  try {
    return key === 'awslogs-datetime-format' ? datetimeFormatPattern(value) : compileGoRegexp(value);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': ${err.message}`);
  }
}

function parseEndpoint(value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    /* reported below */
  }
  // Credentials in the URL would be sent nowhere useful and could end up quoted.
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '') {
    throw new InvalidOptionError(
      `invalid value ${shownAddress(value)} for log opt 'awslogs-endpoint': expected an http:// or https:// URL without user or password, such as https://logs.us-east-1.amazonaws.com`,
    );
  }
  return value;
}

// The path carries the task's credentials id: checked, never quoted.
function parseCredentialsPath(value: string): string {
  if (!value.startsWith('/') || /\s/.test(value)) {
    throw new InvalidOptionError(`invalid value for log opt 'awslogs-credentials-endpoint': expected a path starting with '/', such as /v2/credentials/<id>`);
  }
  return value;
}

/** Docker's rule: awslogs-stream, else the tag template when it is set, else the full container id. */
export function streamName(config: AwslogsConfig, container: ContainerContext): string {
  return config.stream ?? (container.tagSet ? container.tag : container.id);
}

/** JSON's own whitespace around a value: space, tab, line feed, carriage return. */
const JSON_BLANKS = /^[ \t\n\r]+|[ \t\n\r]+$/g;

/**
 * The events of a batch, in the order the lines came. A raw line becomes UTF-8 text (each
 * invalid byte a U+FFFD, as the SDK would send it anyway); a line parsed by `parse-json` goes
 * without the blanks around its object, so the message is exactly the JSON object Logs
 * Insights splits into fields, and no value is re-encoded (a big integer keeps its digits,
 * the keys their order); a multiline event ends in '\n' as
 * Docker's do. Longer messages are split at character boundaries; empty ones, which the
 * service refuses, are left out, as Docker does.
 */
export function toEvents(lines: readonly OutgoingLine[], multiline: boolean): LineEvent[] {
  const events: LineEvent[] = [];
  lines.forEach((line, index) => {
    let message = line.fields ? line.line.toString('utf8').replace(JSON_BLANKS, '') : line.line.toString('utf8');
    if (multiline) message += '\n';
    const timestamp = Number(line.timeNano / 1_000_000n);
    for (const piece of splitUtf8(message, MAX_EVENT_BYTES)) events.push({ timestamp, message: piece, line: index });
  });
  return events;
}

/**
 * The batch's lines a put's events come from, each once, in the order they first appear: a
 * line's pieces are next to each other, and after the sort by time the lines are mostly in
 * order, so only a put whose lines go back needs a set.
 */
export function linesOf(events: readonly LineEvent[]): number[] {
  const lines: number[] = [];
  let last = -1;
  let ascending = true;
  for (const { line } of events) {
    if (line === last) continue;
    if (line < last) ascending = false;
    lines.push(line);
    last = line;
  }
  return ascending ? lines : [...new Set(lines)];
}

/** An event and the line of the batch it comes from. */
export interface LineEvent {
  timestamp: number;
  message: string;
  line: number;
}

/**
 * The puts that carry these events: sorted by timestamp, stably (the service requires the
 * order, and equal times keep the lines' order, as in Docker's driver), then cut wherever a
 * put would pass the service's count, bytes or 24-hour span.
 */
export function planPuts<E extends InputLogEvent>(events: readonly E[]): E[][] {
  const sorted = [...events].sort((a, b) => a.timestamp! - b.timestamp!);
  const groups = cutRequests(
    sorted,
    { maxItems: MAX_PUT_EVENTS, maxBytes: MAX_PUT_BYTES },
    (event) => Buffer.byteLength(event.message!) + PER_EVENT_BYTES,
    (first, event) => event.timestamp! - first.timestamp! > MAX_PUT_SPAN_MS,
  );
  return groups.map((group) => group.map((i) => sorted[i]!));
}

/**
 * The events the service took the put with but will not store, by index in the put: older
 * than 14 days or the group's retention, or more than 2 hours ahead.
 */
export function rejectedEvents(info: RejectedLogEventsInfo | undefined, events: number): Array<{ event: number; code: 'too_old' | 'too_new'; reason: string }> {
  if (!info) return [];
  const out: Array<{ event: number; code: 'too_old' | 'too_new'; reason: string }> = [];
  const expired = Math.min(events, info.expiredLogEventEndIndex ?? 0);
  const old = Math.min(events, Math.max(expired, info.tooOldLogEventEndIndex ?? 0));
  for (let i = 0; i < old; i++) {
    const reason = i < expired ? 'CloudWatch Logs rejected the event: older than the log group\'s retention' : 'CloudWatch Logs rejected the event: older than 14 days';
    out.push({ event: i, code: 'too_old', reason });
  }
  const tooNew = info.tooNewLogEventStartIndex;
  if (tooNew !== undefined) {
    for (let i = Math.max(old, tooNew); i < events; i++) out.push({ event: i, code: 'too_new', reason: 'CloudWatch Logs rejected the event: more than 2 hours in the future' });
  }
  return out;
}

/**
 * A put's events as JSON text, as the SDK's serializer writes them (JSON.stringify of each
 * `{timestamp, message}`): that serializer walks every event through the operation's schema,
 * which with the garbage it makes was the largest part of the backend's CPU (a 1M-line profile:
 * 0.4 s of @smithy/core and much of 0.56 s of GC in 2.4 s).
 */
export function eventsJson(events: readonly LineEvent[]): string {
  let out = '';
  for (const { timestamp, message } of events) out += `${out === '' ? '' : ','}{"timestamp":${timestamp},"message":${JSON.stringify(message)}}`;
  return `[${out}]`;
}

/** The SDK's body with no events (the group, stream and token as it wrote them) holds `"logEvents":[]`, filled with `events`. */
const NO_EVENTS = '"logEvents":[]';

/** Thrown when the SDK's body does not hold NO_EVENTS once: the put goes again through the SDK's serializer. */
class NoEventsToFill extends Error {}

/** Whether puts are written by eventsJson (until an SDK is found to write its body some other way). */
let handBuiltEvents = true;

/**
 * The SDK's serialized PutLogEvents request with `events` in its empty `logEvents`; before
 * the build and finalize steps, so the content length and the signature are of this body.
 * In the SDK's JSON a `"` inside a value is escaped, so NO_EVENTS can only be the member itself.
 */
export function withEvents<R>(request: R, events: string): R {
  const body = (request as { body?: unknown }).body;
  // The SDK writes its JSON as UTF-8 bytes (a string from other versions).
  const text = typeof body === 'string' ? body : body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : null;
  const at = text === null ? -1 : text.indexOf(NO_EVENTS);
  if (text === null || at < 0 || text.indexOf(NO_EVENTS, at + 1) >= 0) throw new NoEventsToFill('the SDK wrote PutLogEvents without one empty logEvents');
  Object.assign(request as object, { body: `${text.slice(0, at)}"logEvents":${events}${text.slice(at + NO_EVENTS.length)}` });
  return request;
}

/** The region the config names, else the plugin's environment's; null: ask the instance metadata. */
export function configuredRegion(config: AwslogsConfig, env: Readonly<Record<string, string | undefined>> = config.environment): string | null {
  return config.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || null);
}

const IMDS = 'http://169.254.169.254';
const IMDS_TIMEOUT_MS = 2000;

/**
 * The instance's region from EC2 instance metadata (IMDSv2), as Docker falls back to. The
 * SDK's own variables apply: AWS_EC2_METADATA_SERVICE_ENDPOINT moves it, and
 * AWS_EC2_METADATA_DISABLED=true turns it off.
 */
export async function instanceRegion(signal: AbortSignal, env: Readonly<Record<string, string | undefined>> = {}): Promise<string> {
  const unknown = (why: string): Error =>
    new Error(`cannot determine the region for backend awslogs: set log opt 'awslogs-region' or the plugin's AWS_REGION; ${why}`);
  if (env.AWS_EC2_METADATA_DISABLED?.toLowerCase() === 'true') throw unknown('EC2 instance metadata is disabled (AWS_EC2_METADATA_DISABLED)');
  const base = (env.AWS_EC2_METADATA_SERVICE_ENDPOINT || IMDS).replace(/\/+$/, '');
  const timeout = AbortSignal.any([signal, AbortSignal.timeout(IMDS_TIMEOUT_MS)]);
  try {
    const token = await fetch(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
      signal: timeout,
    });
    if (!token.ok) throw new Error(`token request answered ${token.status}`);
    const region = await fetch(`${base}/latest/meta-data/placement/region`, {
      headers: { 'x-aws-ec2-metadata-token': await token.text() },
      signal: timeout,
    });
    if (!region.ok) throw new Error(`region request answered ${region.status}`);
    const name = (await region.text()).trim();
    if (name === '') throw new Error('the region is empty');
    return name;
  } catch (err) {
    // fetch says only "fetch failed"; the reason is its cause.
    const { message, cause } = err as Error & { cause?: Error };
    throw unknown(`EC2 instance metadata did not answer (${cause?.message ?? message})`);
  }
}

/**
 * Errors of PutLogEvents that say the put itself is bad: the engine sends the batch in halves
 * to find the line. Every other failure (throttling, 5xx, the network, credentials,
 * permissions, a missing group) is transient: fixing its cause loses nothing.
 */
const BAD_REQUEST = new Set(['InvalidParameterException', 'SerializationException', 'ValidationException']);

/** An SDK failure as the engine's warning shows it: the operation, where, the service's error name. */
function failure(operation: string, where: string, err: unknown): SendError {
  const { name, message } = err as Error;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const badRequest = operation === 'PutLogEvents' && (BAD_REQUEST.has(name) || status === 413);
  return new SendError(`awslogs ${operation} ${where}: ${name === 'Error' ? '' : `${name}: `}${message}`, { transient: !badRequest, cause: err });
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

// The SDK is loaded at the first send, not when the plugin starts: its ~10 MB of memory
// is not for hosts that never ship to CloudWatch.
type CloudWatchSdk = typeof import('@aws-sdk/client-cloudwatch-logs');
let cloudWatchSdk: Promise<CloudWatchSdk> | null = null;
const loadSdk = (): Promise<CloudWatchSdk> => (cloudWatchSdk ??= import('@aws-sdk/client-cloudwatch-logs'));

interface Connection {
  sdk: CloudWatchSdk;
  client: CloudWatchLogsClient;
}

class AwslogsBackend implements Backend {
  private readonly config: AwslogsConfig;
  private readonly stream: string;
  private readonly where: string;
  private connection: Connection | null = null;
  private streamReady = false;
  /** Only strict endpoints still check it; real CloudWatch ignores it since 2023. */
  private sequenceToken: string | undefined;

  constructor(config: AwslogsConfig, container: ContainerContext) {
    this.config = config;
    this.stream = streamName(config, container);
    this.where = `to ${config.group}/${this.stream}`;
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    const puts = planPuts(toEvents(lines, this.config.multilineStart !== null));
    if (puts.length === 0) return DELIVERED;
    let connection: Connection;
    try {
      connection = await this.connect(signal);
      if (!this.streamReady) {
        await this.createStream(connection, signal);
        this.streamReady = true;
      }
    } catch (err) {
      // The region, the SDK, the group or stream: none of it is the lines'.
      throw transientError(err);
    }
    const requests: Request<LineEvent[]>[] = puts.map((put) => ({ lines: linesOf(put), payload: put }));
    return sendInOrder(requests, (request) => this.put(connection, request.payload, signal));
  }

  async close(): Promise<void> {
    this.connection?.client.destroy();
    this.connection = null;
  }

  private async connect(signal: AbortSignal): Promise<Connection> {
    if (this.connection) return this.connection;
    const region = configuredRegion(this.config) ?? (await instanceRegion(signal, this.config.environment));
    const sdk = await loadSdk();
    const credentials =
      this.config.credentialsPath === null
        ? {}
        : { credentials: (await import('@aws-sdk/credential-provider-http')).fromHttp({ awsContainerCredentialsRelativeUri: this.config.credentialsPath }) };
    const client = new sdk.CloudWatchLogsClient({
      region,
      ...(this.config.endpoint === null ? {} : { endpoint: this.config.endpoint }),
      ...credentials,
      // The SDK's standard strategy retries once (a dropped connection, a throttle, a 5xx); past that the
      // batch goes back to the engine, whose backoff is the one that grows.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 30_000 },
    });
    if (this.config.format !== null) {
      const format = this.config.format;
      client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) request.headers['x-amzn-logs-format'] = format;
          return next(args);
        },
        { step: 'build', name: 'logshipLogsFormatHeader' },
      );
    }
    this.connection = { sdk, client };
    return this.connection;
  }

  /** CreateLogStream, and the group first when it is missing and awslogs-create-group allows it; existing ones are fine. */
  private async createStream({ sdk, client }: Connection, signal: AbortSignal): Promise<void> {
    if (!this.config.createStream) return;
    const stream = (): Promise<unknown> =>
      client.send(new sdk.CreateLogStreamCommand({ logGroupName: this.config.group, logStreamName: this.stream }), { abortSignal: signal });
    try {
      await stream();
      return;
    } catch (err) {
      if (errorName(err) === 'ResourceAlreadyExistsException') return;
      if (errorName(err) !== 'ResourceNotFoundException' || !this.config.createGroup) throw failure('CreateLogStream', this.where, err);
    }
    try {
      await client.send(new sdk.CreateLogGroupCommand({ logGroupName: this.config.group }), { abortSignal: signal });
    } catch (err) {
      if (errorName(err) !== 'ResourceAlreadyExistsException') throw failure('CreateLogGroup', this.where, err);
    }
    try {
      await stream();
    } catch (err) {
      if (errorName(err) !== 'ResourceAlreadyExistsException') throw failure('CreateLogStream', this.where, err);
    }
  }

  /** One PutLogEvents; the events it refuses to store are the lines it rejects. */
  private async put(connection: Connection, put: readonly LineEvent[], signal: AbortSignal): Promise<SendResult> {
    // The events as the JSON the SDK would write, written here; built at most once per put.
    let events: string | null = null;
    for (let repairs = 0; ; repairs++) {
      try {
        const fill = handBuiltEvents;
        const input = {
          logGroupName: this.config.group,
          logStreamName: this.stream,
          logEvents: fill ? [] : put.map(({ timestamp, message }): InputLogEvent => ({ timestamp, message })),
          ...(this.sequenceToken === undefined ? {} : { sequenceToken: this.sequenceToken }),
        };
        const command = new connection.sdk.PutLogEventsCommand(input);
        if (fill) {
          events ??= eventsJson(put);
          const text = events;
          // A serialize-step middleware (its arguments carry the request the serializer made).
          const fillEvents = (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => next({ ...args, request: withEvents(args.request, text) });
          command.middlewareStack.addRelativeTo(fillEvents as unknown as Parameters<typeof command.middlewareStack.addRelativeTo>[0], {
            relation: 'after',
            toMiddleware: 'serializerMiddleware',
            name: 'logshipLogEvents',
          });
        }
        const out = await connection.client.send(command, { abortSignal: signal });
        this.sequenceToken = out.nextSequenceToken;
        const rejected: Rejection[] = rejectedEvents(out.rejectedLogEventsInfo, put.length).map(({ event, code, reason }) => ({ index: put[event]!.line, code, reason }));
        return rejected.length === 0 ? DELIVERED : { rejected };
      } catch (err) {
        if (err instanceof NoEventsToFill) {
          // An SDK that writes the body otherwise: its own serializer from now on.
          handBuiltEvents = false;
          continue;
        }
        const name = errorName(err);
        const expected = (err as { expectedSequenceToken?: string }).expectedSequenceToken;
        // A put the service already has (a retry after a lost answer) is done.
        if (name === 'DataAlreadyAcceptedException') {
          this.sequenceToken = expected;
          return DELIVERED;
        }
        if (repairs >= MAX_PUT_REPAIRS) throw failure('PutLogEvents', this.where, err);
        if (name === 'InvalidSequenceTokenException') {
          // Older endpoints carry the token only as the last word of the message (Docker reads it there).
          this.sequenceToken = expected ?? (err as Error).message.split(' ').at(-1);
          continue;
        }
        if (name === 'ResourceNotFoundException' && this.config.createStream) {
          // Deleted since it was created: create it again, as at the first send.
          this.sequenceToken = undefined;
          try {
            await this.createStream(connection, signal);
          } catch (createErr) {
            throw transientError(createErr);
          }
          continue;
        }
        if (signal.aborted) throw transientError(err);
        throw failure('PutLogEvents', this.where, err);
      }
    }
  }
}

export const awslogsFactory: BackendFactory<AwslogsConfig, typeof AWSLOGS_OPTIONS, typeof AWSLOGS_SETTINGS> = {
  name: 'awslogs',
  options: AWSLOGS_OPTIONS,
  settings: AWSLOGS_SETTINGS,
  configure: configureAwslogs,
  batchLimits(config: AwslogsConfig): BatchLimits {
    return { maxLines: MAX_PUT_EVENTS, maxBytes: MAX_PUT_BYTES, lineOverheadBytes: PER_EVENT_BYTES, maxDelayMs: config.flushIntervalMs };
  },
  multiline(config: AwslogsConfig): MultilineOptions | null {
    if (config.multilineStart === null) return null;
    return {
      matcher: { kind: 'first-line', pattern: config.multilineStart },
      flushTimeoutMs: config.flushIntervalMs,
      // Never the limit: every line takes one byte at least, its '\n'.
      maxLines: MAX_EVENT_BYTES,
      maxBytes: MAX_EVENT_BYTES,
    };
  },
  create(config: AwslogsConfig, container: ContainerContext): Backend {
    return new AwslogsBackend(config, container);
  },
};
