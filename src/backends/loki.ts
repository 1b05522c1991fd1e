// Grafana Loki through its push API (/loki/api/v1/push), with the option names, defaults and
// labels of Grafana's Loki Docker driver, so switching is `--log-driver` and `backend=loki`.
//
// A container is at most two streams (its labels, with `source` stdout or stderr); a batch is
// one push of protobuf compressed with snappy's block format (what Loki and the driver use),
// or JSON with `loki-format=json`. Loki answers a push whose entries it partly refuses (too
// old, out of order, too long) with one 400 for the push after taking the valid entries; the
// 400 is not transient, so the engine sends the batch in halves until the entries refused
// stand alone and dead-letters them. Entries sent twice so are no duplicates: Loki drops an
// entry whose stream, time and line it already has.
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import snappy from 'snappyjs';
import {
  type Backend,
  type BackendFactory,
  type BatchLimits,
  type ContainerContext,
  DELIVERED,
  type OutgoingLine,
  type RejectCode,
  type RetryPolicy,
  type SendResult,
  SendError,
} from '../delivery/backend.ts';
import { InvalidOptionError, MAX_TIMER_DURATION_MS, parseBool, parseTimerDuration } from '../lifecycle/options.ts';
import { type TagTemplate, TemplateError, compileTag } from '../shaping/tag.ts';
import { shownAddress, tlsOptions } from './connection.ts';
import { type HttpAnswer, HttpPoster, type HttpTarget, answerText, statusError } from './http-post.ts';

/** One log-opt: what `docker run` may set, as data (the README table is made from it). */
export interface OptionRow {
  key: string;
  /** What the value is, for errors and the README. */
  accepts: string;
  default: string;
  doc: string;
}

export const LOKI_OPTIONS: readonly OptionRow[] = [
  { key: 'loki-url', accepts: 'http(s) URL', default: '(required)', doc: "Loki's push endpoint, e.g. `http://loki:3100/loki/api/v1/push`; may carry `user:password@` for basic auth (never shown)" },
  { key: 'loki-external-labels', accepts: 'name=template,...', default: 'container_name={{.Name}}', doc: 'labels of every stream, values are `tag` templates' },
  { key: 'loki-tenant-id', accepts: 'text', default: '(none)', doc: 'sent as `X-Scope-OrgID` (multi-tenant Loki)' },
  { key: 'loki-format', accepts: 'protobuf, json', default: 'protobuf', doc: 'push body: protobuf with snappy (Loki\'s default), or JSON' },
  { key: 'loki-structured-metadata', accepts: 'name,...', default: '(none)', doc: 'labels sent as structured metadata (Loki 3) instead of index labels, e.g. `host,compose_project`' },
  { key: 'loki-batch-size', accepts: 'bytes', default: '1048576', doc: 'most bytes of lines in one push' },
  { key: 'loki-batch-wait', accepts: 'duration', default: '1s', doc: 'how long a push that is not full waits for more lines' },
  { key: 'loki-timeout', accepts: 'duration', default: '10s', doc: 'time for one push to be answered' },
  { key: 'loki-min-backoff', accepts: 'duration', default: '500ms', doc: 'first wait before a failed push goes again' },
  { key: 'loki-max-backoff', accepts: 'duration', default: '5m', doc: 'longest wait between tries' },
  { key: 'loki-retries', accepts: 'whole number', default: '10', doc: 'accepted for compatibility: logship never drops a line after some tries, it keeps it in the local copy and tries on' },
  { key: 'loki-tls-ca-file', accepts: 'file', default: '(system CAs)', doc: 'CA bundle (PEM) for an https URL' },
  { key: 'loki-tls-cert-file', accepts: 'file', default: '(none)', doc: 'client certificate (PEM), with loki-tls-key-file' },
  { key: 'loki-tls-key-file', accepts: 'file', default: '(none)', doc: 'client key (PEM)' },
  { key: 'loki-tls-server-name', accepts: 'name', default: "(the URL's host)", doc: 'name the server certificate must have' },
  { key: 'loki-tls-insecure-skip-verify', accepts: 'bool', default: 'false', doc: "do not verify the server's certificate" },
  { key: 'loki-proxy-url', accepts: 'http URL', default: '(none)', doc: 'forward proxy for the pushes' },
  { key: 'no-file', accepts: 'bool', default: 'false', doc: 'accepted for compatibility: logship always keeps its local copy (it is what `docker logs` reads and what delivery resumes from); size it with max-size and max-file' },
  { key: 'keep-file', accepts: 'bool', default: 'false', doc: 'accepted for compatibility: the local copy outlives the container until the plugin setting RETENTION' },
  { key: 'loki-pipeline-stages', accepts: '(refused)', default: '', doc: "Promtail's pipeline: refused, see below" },
  { key: 'loki-pipeline-stage-file', accepts: '(refused)', default: '', doc: "Promtail's pipeline: refused, see below" },
  { key: 'loki-relabel-config', accepts: '(refused)', default: '', doc: "Prometheus relabelling: refused, see below" },
];

/** Promtail's and Prometheus' label machinery, which logship has equivalents of rather than a copy. */
const REFUSED: Readonly<Record<string, string>> = {
  'loki-pipeline-stages':
    "Promtail's pipeline stages are not run by logship; its equivalents are log opts: multiline-pattern (the multiline stage), parse-json (the json stage: keys travel with the line), labels/env/loki-external-labels (the labels stage)",
  'loki-pipeline-stage-file':
    "Promtail's pipeline stages are not run by logship; its equivalents are log opts: multiline-pattern (the multiline stage), parse-json (the json stage: keys travel with the line), labels/env/loki-external-labels (the labels stage)",
  'loki-relabel-config':
    'Prometheus relabelling is not run by logship: choose the labels with loki-external-labels, labels, labels-regex, env and env-regex, and move some to structured metadata with loki-structured-metadata',
};

export type LokiFormat = 'protobuf' | 'json';

export interface LokiConfig {
  target: HttpTarget;
  format: LokiFormat;
  /** Label name and template, in the option's order. */
  externalLabels: ReadonlyArray<readonly [string, TagTemplate]>;
  /** Label names that go as structured metadata instead. */
  structuredMetadata: ReadonlySet<string>;
  tenantId: string | null;
  batchBytes: number;
  batchWaitMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

const DEFAULTS = {
  externalLabels: 'container_name={{.Name}}',
  batchBytes: 1024 * 1024,
  batchWaitMs: 1000,
  timeoutMs: 10_000,
  minBackoffMs: 500,
  maxBackoffMs: 5 * 60_000,
};

/** Prometheus' label names, which Loki's label parser takes. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parseLokiOptions(opts: Readonly<Record<string, string>>): LokiConfig {
  for (const key of Object.keys(REFUSED)) {
    if (opts[key] !== undefined) throw new InvalidOptionError(`log opt '${key}' is not supported: ${REFUSED[key]}`);
  }
  const raw = opts['loki-url'];
  if (!raw) throw new InvalidOptionError(`log opt 'loki-url' is required with backend=loki: Loki's push endpoint, such as http://loki:3100/loki/api/v1/push`);
  const url = parseUrl('loki-url', raw);
  const https = url.protocol === 'https:';
  const skipVerify = opts['loki-tls-insecure-skip-verify'] ? parseBool('loki-tls-insecure-skip-verify', opts['loki-tls-insecure-skip-verify']) : false;
  const tlsKeys = { ca: 'loki-tls-ca-file', cert: 'loki-tls-cert-file', key: 'loki-tls-key-file' };
  const tlsSet = [tlsKeys.ca, tlsKeys.cert, tlsKeys.key, 'loki-tls-server-name'].find((key) => opts[key]) ?? (skipVerify ? 'loki-tls-insecure-skip-verify' : undefined);
  if (tlsSet && !https) throw new InvalidOptionError(`log opt '${tlsSet}' is set, but 'loki-url' is not https://`);
  for (const key of ['no-file', 'keep-file']) if (opts[key]) parseBool(key, opts[key]);
  if (opts['loki-retries'] !== undefined && !/^\d+$/.test(opts['loki-retries'])) {
    throw new InvalidOptionError(`invalid value '${opts['loki-retries']}' for log opt 'loki-retries': expected a whole number (logship retries until delivered either way)`);
  }
  const format = opts['loki-format'] || 'protobuf';
  if (format !== 'protobuf' && format !== 'json') throw new InvalidOptionError(`invalid value '${format}' for log opt 'loki-format': expected protobuf or json`);
  const minBackoffMs = duration(opts, 'loki-min-backoff', DEFAULTS.minBackoffMs, 1);
  const maxBackoffMs = duration(opts, 'loki-max-backoff', DEFAULTS.maxBackoffMs, 1);
  if (maxBackoffMs < minBackoffMs) throw new InvalidOptionError(`log opt 'loki-max-backoff' must not be shorter than 'loki-min-backoff'`);
  return {
    target: {
      url,
      tls: https ? tlsOptions(opts, tlsKeys, skipVerify, opts['loki-tls-server-name'] || url.hostname) : {},
      proxy: opts['loki-proxy-url'] ? parseUrl('loki-proxy-url', opts['loki-proxy-url']).href : null,
      timeoutMs: duration(opts, 'loki-timeout', DEFAULTS.timeoutMs, 1),
    },
    format,
    externalLabels: parseExternalLabels(opts['loki-external-labels'] ?? DEFAULTS.externalLabels),
    structuredMetadata: new Set((opts['loki-structured-metadata'] ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
    tenantId: opts['loki-tenant-id'] || null,
    batchBytes: batchSize(opts['loki-batch-size']),
    batchWaitMs: duration(opts, 'loki-batch-wait', DEFAULTS.batchWaitMs, 1),
    minBackoffMs,
    maxBackoffMs,
  };
}

function parseUrl(key: string, raw: string): URL {
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    /* below */
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new InvalidOptionError(`invalid value ${shownAddress(raw)} for log opt '${key}': expected an http:// or https:// URL`);
  }
  return url;
}

function duration(opts: Readonly<Record<string, string>>, key: string, fallback: number, minMs: number): number {
  const value = opts[key];
  if (!value) return fallback;
  // The driver takes any Go duration; a day is the most a timer here is set for.
  return Math.min(parseTimerDuration(key, value, minMs), MAX_TIMER_DURATION_MS);
}

function batchSize(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULTS.batchBytes;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 64 << 20) {
    throw new InvalidOptionError(`invalid value '${value}' for log opt 'loki-batch-size': expected bytes from 1 to ${64 << 20} (the driver's default is ${DEFAULTS.batchBytes})`);
  }
  return n;
}

/** `name=template,...` as the driver splits it: on commas, then on the one `=`. */
export function parseExternalLabels(value: string): Array<readonly [string, TagTemplate]> {
  if (value === '') return [];
  return value.split(',').map((pair) => {
    const parts = pair.split('=');
    if (parts.length !== 2) {
      throw new InvalidOptionError(`invalid value '${value}' for log opt 'loki-external-labels': expected name=value pairs separated by commas, such as container_name={{.Name}},env=prod`);
    }
    const [name, template] = parts as [string, string];
    if (!LABEL_NAME.test(name)) {
      throw new InvalidOptionError(`invalid label name '${name}' in log opt 'loki-external-labels': expected letters, digits and _, not starting with a digit`);
    }
    try {
      return [name, compileTag(template)] as const;
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      throw new InvalidOptionError(`invalid template '${template}' in log opt 'loki-external-labels': ${err.message}`);
    }
  });
}

/** Labels the Loki driver adds from the container's own labels (compose, swarm), by label key. */
const AUTOMATIC_LABELS: ReadonlyArray<readonly [string, string]> = [
  ['com.docker.swarm.service.name', 'swarm_service'],
  ['com.docker.stack.namespace', 'swarm_stack'],
  ['com.docker.compose.service', 'compose_service'],
  ['com.docker.compose.project', 'compose_project'],
];

/**
 * A container's labels, as the driver builds them: the external labels, then the `labels`
 * and `env` attributes, the compose and swarm labels, `host`; a name given twice keeps the
 * last value. The driver makes `.` and `-` of an attribute `_` and fails the container on any
 * other character a label name cannot have; here those become `_` too, since a label or env
 * var's name is the image's choice, not the operator's.
 */
export function streamLabels(config: Pick<LokiConfig, 'externalLabels'>, container: ContainerContext): Map<string, string> {
  const labels = new Map<string, string>();
  for (const [name, template] of config.externalLabels) {
    try {
      labels.set(name, template.execute(container.info));
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      throw new InvalidOptionError(`log opt 'loki-external-labels': label '${name}': ${err.message}`);
    }
  }
  for (const [key, value] of container.attributes) {
    labels.set(key.replace(/[^a-zA-Z0-9_]/g, '_').replace(/^(?=[0-9])/, '_'), value);
  }
  for (const [key, name] of AUTOMATIC_LABELS) {
    const value = container.info.labels[key];
    if (value) labels.set(name, value);
  }
  labels.set('host', container.hostname);
  return labels;
}

/** Loki's label selector text (`{a="x", b="y"}`), names sorted as Prometheus prints a label set. */
export function selector(labels: ReadonlyMap<string, string>): string {
  const names = [...labels.keys()].sort();
  // A JSON string is a Go string literal for what Loki's parser unquotes (\" \\ \n \uXXXX).
  return `{${names.map((name) => `${name}=${JSON.stringify(labels.get(name))}`).join(', ')}}`;
}

const schemaPath = fileURLToPath(new URL('../../proto/loki/push.proto', import.meta.url));
let pushRequestType: protobuf.Type | null = null;

/** Compiled at a container's first push, so a plugin not shipping to Loki does not pay for it. */
function pushRequest(): protobuf.Type {
  pushRequestType ??= protobuf.loadSync(schemaPath).lookupType('logproto.PushRequest');
  return pushRequestType;
}

interface Stream {
  /** Index labels, with `source`. */
  labels: string;
  /** The same as an object, for JSON. */
  labelObject: Record<string, string>;
  indexes: number[];
}

/** Turns batches of one container's lines into push bodies. */
export class PushEncoder {
  private readonly format: LokiFormat;
  private readonly streams: Record<'stdout' | 'stderr', Omit<Stream, 'indexes'>>;
  private readonly metadata: ReadonlyArray<{ name: string; value: string }>;

  constructor(config: Pick<LokiConfig, 'externalLabels' | 'structuredMetadata' | 'format'>, container: ContainerContext) {
    this.format = config.format;
    const all = streamLabels(config, container);
    const index = new Map([...all].filter(([name]) => !config.structuredMetadata.has(name)));
    this.metadata = [...all].filter(([name]) => config.structuredMetadata.has(name)).map(([name, value]) => ({ name, value }));
    const stream = (source: 'stdout' | 'stderr'): Omit<Stream, 'indexes'> => {
      const labels = new Map(index).set('source', source);
      return { labels: selector(labels), labelObject: Object.fromEntries(labels) };
    };
    this.streams = { stdout: stream('stdout'), stderr: stream('stderr') };
  }

  /** The body and its content type; entries of each stream in time order. */
  encode(lines: readonly OutgoingLine[]): { body: Buffer; contentType: string } {
    const bySource: Record<'stdout' | 'stderr', number[]> = { stdout: [], stderr: [] };
    lines.forEach((line, i) => bySource[line.source === 'stderr' ? 'stderr' : 'stdout'].push(i));
    const streams: Stream[] = [];
    for (const source of ['stdout', 'stderr'] as const) {
      const indexes = bySource[source];
      if (indexes.length === 0) continue;
      // Stable: lines of one time keep the order they were written in.
      indexes.sort((a, b) => (lines[a]!.timeNano < lines[b]!.timeNano ? -1 : lines[a]!.timeNano > lines[b]!.timeNano ? 1 : 0));
      streams.push({ ...this.streams[source], indexes });
    }
    return this.format === 'json' ? this.json(lines, streams) : this.protobuf(lines, streams);
  }

  private protobuf(lines: readonly OutgoingLine[], streams: readonly Stream[]): { body: Buffer; contentType: string } {
    const message = {
      streams: streams.map((stream) => ({
        labels: stream.labels,
        entries: stream.indexes.map((i) => {
          const line = lines[i]!;
          return {
            timestamp: { seconds: Number(line.timeNano / 1_000_000_000n), nanos: Number(line.timeNano % 1_000_000_000n) },
            line: line.line.toString('utf8'),
            structuredMetadata: this.metadata,
          };
        }),
      })),
    };
    const encoded = pushRequest().encode(message as unknown as protobuf.Message).finish();
    return { body: Buffer.from(snappy.compress(encoded)), contentType: 'application/x-protobuf' };
  }

  private json(lines: readonly OutgoingLine[], streams: readonly Stream[]): { body: Buffer; contentType: string } {
    const metadata = this.metadata.length > 0 ? Object.fromEntries(this.metadata.map(({ name, value }) => [name, value])) : null;
    const body = {
      streams: streams.map((stream) => ({
        stream: stream.labelObject,
        values: stream.indexes.map((i) => {
          const line = lines[i]!;
          const text = line.line.toString('utf8');
          return metadata ? [String(line.timeNano), text, metadata] : [String(line.timeNano), text];
        }),
      })),
    };
    return { body: Buffer.from(JSON.stringify(body)), contentType: 'application/json' };
  }
}

/**
 * What a 400 says of the entries it refuses, from the reasons Loki writes (pkg/validation,
 * pkg/chunkenc): `too_old` for entries older than its window or out of order in their
 * stream, `too_new` for entries too far in the future, `too_large` for a line past its limit.
 */
export function rejectCodeOf(text: string): RejectCode {
  const t = text.toLowerCase();
  if (t.includes('too far behind') || t.includes('timestamp too old') || t.includes('out of order')) return 'too_old';
  if (t.includes('timestamp too new')) return 'too_new';
  if (t.includes('max entry size')) return 'too_large';
  return 'invalid';
}

/**
 * 400s that are the tenant's configuration, not the lines: structured metadata disallowed,
 * labels the tenant's policy requires, ingestion blocked. The operator fixes those; every line
 * would be dead-lettered meanwhile if they were taken for the lines' fault.
 */
const CONFIGURATION_400 = ['this feature is disallowed', 'missing required labels', 'ingestion blocked'];

class LokiBackend implements Backend {
  private readonly encoder: PushEncoder;
  private readonly poster: HttpPoster;
  private readonly headers: Record<string, string>;

  constructor(config: LokiConfig, container: ContainerContext) {
    this.encoder = new PushEncoder(config, container);
    this.poster = new HttpPoster(config.target);
    this.headers = { 'user-agent': 'logship' };
    if (config.tenantId !== null) this.headers['x-scope-orgid'] = config.tenantId;
    const { username, password } = config.target.url;
    if (username !== '' || password !== '') {
      this.headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(username)}:${decodeURIComponent(password)}`).toString('base64')}`;
    }
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (lines.length === 0) return DELIVERED;
    let encoded: { body: Buffer; contentType: string };
    try {
      encoded = this.encoder.encode(lines);
    } catch (err) {
      throw new SendError(`loki: encoding the push failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
    }
    const answer: HttpAnswer = await this.poster.post(encoded.body, { ...this.headers, 'content-type': encoded.contentType }, signal);
    if (answer.status >= 200 && answer.status < 300) return DELIVERED;
    const text = answerText(answer);
    if (answer.status === 400 && CONFIGURATION_400.some((s) => text.includes(s))) {
      throw new SendError(`loki: HTTP 400 (the tenant's configuration, retried until fixed): ${text}`, { transient: true });
    }
    throw statusError('loki', answer, answer.status === 400 ? rejectCodeOf(text) : 'invalid');
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}

export const lokiFactory: BackendFactory<LokiConfig> = {
  name: 'loki',
  optionKeys: LOKI_OPTIONS.map((o) => o.key),
  parseOptions: (opts) => parseLokiOptions(opts),
  batchLimits(config): BatchLimits {
    // Loki's default limit of a push body is far above a driver-sized batch; the entry's
    // time and framing are a few bytes beside its line.
    return { maxLines: 10_000, maxBytes: config.batchBytes, maxDelayMs: config.batchWaitMs, lineOverheadBytes: 16 };
  },
  retryPolicy(config): RetryPolicy {
    return { initialDelayMs: config.minBackoffMs, maxDelayMs: config.maxBackoffMs };
  },
  create(config, container) {
    return new LokiBackend(config, container);
  },
};
