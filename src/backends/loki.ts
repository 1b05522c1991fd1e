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
  type BackendSettings,
  type BatchLimits,
  DELIVERED,
  type RejectCode,
  type RetryPolicy,
  type SendResult,
  SendError,
} from '../delivery/backend.ts';
import { type OptionValues, defineOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import { type TagTemplate, TemplateError, compileTag } from '../shaping/tag.ts';
import { shownAddress } from '../transport/address.ts';
import { HttpClient, type HttpResponse, classifyResponse } from '../transport/http.ts';
import { tlsOptions } from '../transport/tls.ts';

/** Promtail's and Prometheus' label machinery, which logship has equivalents of rather than a copy. */
const PIPELINE_REFUSED =
  "Promtail's pipeline stages are not run by logship; its equivalents are log opts: multiline-pattern (the multiline stage), parse-json (the json stage: keys travel with the line), labels/env/loki-external-labels (the labels stage)";
const RELABEL_REFUSED =
  'Prometheus relabelling is not run by logship: choose the labels with loki-external-labels, labels, labels-regex, env and env-regex, and move some to structured metadata with loki-structured-metadata';

function refused(why: string): (value: string, key: string) => never {
  return (_value, key) => {
    throw new InvalidOptionError(`log opt '${key}' is not supported: ${why}`);
  };
}

/** An http(s) URL that may carry `user:password@` (the driver's basic auth): never quoted. */
function httpUrl(value: string, key: string): URL {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    /* below */
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new InvalidOptionError(`invalid value ${shownAddress(value)} for log opt '${key}': expected an http:// or https:// URL`);
  }
  return url;
}

function wholeNumber(value: string, key: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected a whole number (logship retries until delivered either way)`);
  return Number(value);
}

export const LOKI_OPTIONS = defineOptions([
  { key: 'loki-url', type: 'custom', required: true, secret: true, accepts: 'an http(s) URL', parse: httpUrl, doc: "Loki's push endpoint, e.g. `http://loki:3100/loki/api/v1/push`; may carry `user:password@` for basic auth (never shown)" },
  { key: 'loki-external-labels', type: 'custom', accepts: 'name=template,...', default: 'container_name={{.Name}}', empty: 'value', parse: (v) => parseExternalLabels(v), doc: 'labels of every stream, values are `tag` templates' },
  { key: 'loki-tenant-id', type: 'string', accepts: 'text', defaultDoc: 'none', doc: 'sent as `X-Scope-OrgID` (multi-tenant Loki)' },
  { key: 'loki-format', type: 'enum', values: ['protobuf', 'json'], default: 'protobuf', doc: "push body: protobuf with snappy (Loki's default), or JSON" },
  { key: 'loki-structured-metadata', type: 'custom', accepts: 'name,...', defaultDoc: 'none', parse: (v) => new Set(v.split(',').map((s) => s.trim()).filter(Boolean)), doc: 'labels sent as structured metadata (Loki 3) instead of index labels, e.g. `host,compose_project`' },
  { key: 'loki-batch-size', type: 'int', min: 1, max: 64 << 20, unit: 'bytes', default: '1048576', doc: 'most bytes of lines in one push' },
  { key: 'loki-batch-wait', type: 'duration', timer: true, min: 1, default: '1s', doc: 'how long a push that is not full waits for more lines' },
  { key: 'loki-timeout', type: 'duration', timer: true, min: 1, default: '10s', doc: 'time for one push to be answered' },
  { key: 'loki-min-backoff', type: 'duration', timer: true, min: 1, default: '500ms', doc: 'first wait before a failed push goes again' },
  { key: 'loki-max-backoff', type: 'duration', timer: true, min: 1, default: '5m', doc: 'longest wait between tries' },
  { key: 'loki-retries', type: 'custom', accepts: 'a whole number', default: '10', parse: wholeNumber, doc: 'accepted for compatibility: logship never drops a line after some tries, it keeps it in the local copy and tries on' },
  { key: 'loki-tls-ca-file', type: 'string', accepts: 'a PEM file', defaultDoc: "the system's CAs", doc: 'CA bundle (PEM) for an https URL' },
  { key: 'loki-tls-cert-file', type: 'string', accepts: 'a PEM file', defaultDoc: 'none', doc: 'client certificate (PEM), with loki-tls-key-file' },
  { key: 'loki-tls-key-file', type: 'string', accepts: 'a PEM file', defaultDoc: 'none', doc: 'client key (PEM)' },
  { key: 'loki-tls-server-name', type: 'string', accepts: 'a host name', defaultDoc: "the URL's host", doc: 'name the server certificate must have' },
  { key: 'loki-tls-insecure-skip-verify', type: 'bool', default: 'false', doc: "do not verify the server's certificate" },
  { key: 'loki-proxy-url', type: 'custom', secret: true, accepts: 'an http(s) URL', parse: httpUrl, defaultDoc: 'the plugin\'s HTTP_PROXY / HTTPS_PROXY', doc: 'forward proxy for the pushes' },
  { key: 'no-file', type: 'bool', default: 'false', doc: 'accepted for compatibility: logship always keeps its local copy (it is what `docker logs` reads and what delivery resumes from); size it with max-size and max-file' },
  { key: 'keep-file', type: 'bool', default: 'false', doc: 'accepted for compatibility: the local copy outlives the container until the plugin setting RETENTION' },
  { key: 'loki-pipeline-stages', type: 'custom', accepts: 'nothing (refused)', empty: 'value', parse: refused(PIPELINE_REFUSED), doc: "Promtail's pipeline: refused, see below" },
  { key: 'loki-pipeline-stage-file', type: 'custom', accepts: 'nothing (refused)', empty: 'value', parse: refused(PIPELINE_REFUSED), doc: "Promtail's pipeline: refused, see below" },
  { key: 'loki-relabel-config', type: 'custom', accepts: 'nothing (refused)', empty: 'value', parse: refused(RELABEL_REFUSED), doc: 'Prometheus relabelling: refused, see below' },
]);

export type LokiFormat = 'protobuf' | 'json';

export interface LokiConfig {
  url: URL;
  tls: ReturnType<typeof tlsOptions> | undefined;
  proxy: BackendSettings['proxy'];
  timeoutMs: number;
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

/** Prometheus' label names, which Loki's label parser takes. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function configureLoki(values: OptionValues<typeof LOKI_OPTIONS>, settings: BackendSettings): LokiConfig {
  const url = values['loki-url'];
  const https = url.protocol === 'https:';
  const skipVerify = values['loki-tls-insecure-skip-verify'];
  const tlsSet =
    (['loki-tls-ca-file', 'loki-tls-cert-file', 'loki-tls-key-file', 'loki-tls-server-name'] as const).find((key) => values[key]) ??
    (skipVerify ? 'loki-tls-insecure-skip-verify' : undefined);
  if (tlsSet && !https) throw new InvalidOptionError(`log opt '${tlsSet}' is set, but 'loki-url' is not https://`);
  if (values['loki-max-backoff'] < values['loki-min-backoff']) throw new InvalidOptionError(`log opt 'loki-max-backoff' must not be shorter than 'loki-min-backoff'`);
  const proxyUrl = values['loki-proxy-url'];
  return {
    url,
    tls: https
      ? tlsOptions({
          ca: { key: 'loki-tls-ca-file', file: values['loki-tls-ca-file'] },
          cert: { key: 'loki-tls-cert-file', file: values['loki-tls-cert-file'] },
          key: { key: 'loki-tls-key-file', file: values['loki-tls-key-file'] },
          skipVerify,
          servername: values['loki-tls-server-name'] || url.hostname,
        })
      : undefined,
    proxy: proxyUrl ? { httpProxy: proxyUrl.href, httpsProxy: proxyUrl.href, noProxy: '' } : settings.proxy,
    timeoutMs: values['loki-timeout'],
    format: values['loki-format'],
    externalLabels: values['loki-external-labels'],
    structuredMetadata: values['loki-structured-metadata'] ?? new Set(),
    tenantId: values['loki-tenant-id'] || null,
    batchBytes: values['loki-batch-size'],
    batchWaitMs: values['loki-batch-wait'],
    minBackoffMs: values['loki-min-backoff'],
    maxBackoffMs: values['loki-max-backoff'],
  };
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
  private readonly http: HttpClient;
  private readonly url: URL;
  private readonly headers: Record<string, string>;

  constructor(config: LokiConfig, container: ContainerContext) {
    this.encoder = new PushEncoder(config, container);
    // 401, 403 and 404 are fixed by an operator (credentials, tenant, address), not by the lines.
    this.http = new HttpClient({ name: 'loki', proxy: config.proxy, timeoutMs: config.timeoutMs, transientStatuses: [401, 403, 404], ...(config.tls ? { tls: config.tls } : {}) });
    // The credentials go as a header, never in the URL that messages name.
    this.url = new URL(config.url.href);
    this.url.username = '';
    this.url.password = '';
    this.headers = { 'user-agent': 'logship' };
    if (config.tenantId !== null) this.headers['x-scope-orgid'] = config.tenantId;
    const { username, password } = config.url;
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
    const answer = await this.http.request({ url: this.url, method: 'POST', headers: { ...this.headers, 'content-type': encoded.contentType }, body: encoded.body }, signal);
    const failure = classifyResponse(answer, { name: 'loki', transientStatuses: [401, 403, 404] }, answerText);
    if (!failure) return DELIVERED;
    const text = answerText(answer);
    if (answer.status === 400 && CONFIGURATION_400.some((s) => text.includes(s))) {
      throw new SendError(`loki: HTTP 400 (the tenant's configuration, retried until fixed): ${text}`, { transient: true });
    }
    if (answer.status === 400) throw new SendError(failure.message, { transient: false, rejectCode: rejectCodeOf(text) });
    throw failure;
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

/** The start of an answer's body as one line of text, for an error message. */
function answerText(answer: HttpResponse): string {
  return answer.body.subarray(0, 300).toString('utf8').replace(/\s+/g, ' ').trim();
}

export const lokiFactory: BackendFactory<LokiConfig, typeof LOKI_OPTIONS> = {
  name: 'loki',
  options: LOKI_OPTIONS,
  configure: (values, settings) => configureLoki(values, settings),
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
