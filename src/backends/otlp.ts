// OpenTelemetry's own protocol (OTLP logs) to any collector or vendor that takes it: over
// HTTP as protobuf (the SDKs' default) or JSON (the OTLP/JSON mapping: lowerCamelCase keys,
// 64-bit integers as decimal strings, enums as numbers), or over gRPC. The messages come from
// the official opentelemetry-proto definitions (proto/opentelemetry/) through protobufjs;
// no SDK batch processor is between the store and the wire (it drops records when full: the
// store is the buffer here).
//
// gRPC is spoken on node:http2 (a unary call is one POST with a 5-byte frame header and a
// status in the trailers), not @grpc/grpc-js: logship needs one unary call and none of
// grpc-js's channels, balancing or service config, and the plugin's bundle stays as it is.
//
// Records follow the semantic conventions: the container, image, host and service on the
// resource; the line as body (with parse-json, its object as a kvlist), INFO for stdout and
// ERROR for stderr, `log.iostream`, and the `labels`/`env` attributes on each record.
import { isUtf8 } from 'node:buffer';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import type tls from 'node:tls';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import protobuf from 'protobufjs';
import {
  type Backend,
  type BackendFactory,
  type BackendSettings,
  type BatchLimits,
  DELIVERED,
  type Rejection,
  type SendResult,
  SendError,
  abortError,
} from '../delivery/backend.ts';
import { type OptionValues, defineOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import { shownAddress } from '../transport/address.ts';
import { HttpClient } from '../transport/http.ts';
import { tlsOptions } from '../transport/tls.ts';

const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback);

// Protocol, compression and the TLS files may also come from the settings, so they are
// checked in configure, where the message can say which of the two gave the value.
export const OTLP_OPTIONS = defineOptions([
  { key: 'otlp-endpoint', type: 'string', accepts: 'an http(s) URL', defaultDoc: 'http://localhost:4318 (grpc: 4317)', doc: 'the collector; for HTTP `/v1/logs` is added to the path unless it ends so' },
  { key: 'otlp-protocol', type: 'string', accepts: '`http/protobuf`, `http/json` or `grpc`', defaultDoc: 'http/protobuf', doc: 'how records travel' },
  { key: 'otlp-headers', type: 'string', secret: true, accepts: 'key=value,...', defaultDoc: 'none', doc: 'request headers (values percent-encoded, as OTEL_EXPORTER_OTLP_HEADERS); secrets: never shown; better set in the plugin settings' },
  { key: 'otlp-compression', type: 'string', accepts: '`gzip` or `none`', defaultDoc: 'none', doc: 'compression of request bodies' },
  { key: 'otlp-timeout', type: 'duration', timer: true, min: 1, defaultDoc: '10s', doc: 'time for one export to be answered' },
  { key: 'otlp-tls-ca-file', type: 'string', accepts: 'a PEM file', defaultDoc: "the system's CAs", doc: 'CA bundle (PEM) for an https endpoint' },
  { key: 'otlp-tls-cert-file', type: 'string', accepts: 'a PEM file', defaultDoc: 'none', doc: 'client certificate (PEM), with otlp-tls-key-file' },
  { key: 'otlp-tls-key-file', type: 'string', accepts: 'a PEM file', defaultDoc: 'none', doc: 'client key (PEM)' },
  { key: 'otlp-tls-insecure-skip-verify', type: 'bool', default: 'false', doc: "do not verify the collector's certificate" },
]);

/**
 * The plugin settings that set defaults for every container, named as the OpenTelemetry
 * SDKs' environment variables; the `_LOGS_` form wins over the general one, a log-opt over both.
 */
const setting = (key: string, secret = false) => ({ key, type: 'string', doc: `as the OpenTelemetry SDKs read ${key}`, ...(secret ? { secret: true } : {}) }) as const;
export const OTLP_SETTINGS = defineOptions([
  setting('OTEL_EXPORTER_OTLP_ENDPOINT'),
  setting('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT'),
  setting('OTEL_EXPORTER_OTLP_PROTOCOL'),
  setting('OTEL_EXPORTER_OTLP_LOGS_PROTOCOL'),
  setting('OTEL_EXPORTER_OTLP_HEADERS', true),
  setting('OTEL_EXPORTER_OTLP_LOGS_HEADERS', true),
  setting('OTEL_EXPORTER_OTLP_COMPRESSION'),
  setting('OTEL_EXPORTER_OTLP_LOGS_COMPRESSION'),
  setting('OTEL_EXPORTER_OTLP_TIMEOUT'),
  setting('OTEL_EXPORTER_OTLP_LOGS_TIMEOUT'),
  setting('OTEL_EXPORTER_OTLP_CERTIFICATE'),
  setting('OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE'),
  setting('OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE'),
  setting('OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE'),
  setting('OTEL_EXPORTER_OTLP_CLIENT_KEY'),
  setting('OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY'),
  setting('OTEL_RESOURCE_ATTRIBUTES'),
]);

type Texts = Readonly<Record<string, string | undefined>>;

const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof PROTOCOLS)[number];

export interface OtlpConfig {
  protocol: OtlpProtocol;
  /** For HTTP, the full URL of the logs endpoint; for gRPC, the origin. */
  url: URL;
  tls: tls.ConnectionOptions;
  proxy: BackendSettings['proxy'];
  /** Lower-case names; values are secrets. */
  headers: Record<string, string>;
  gzip: boolean;
  timeoutMs: number;
  /** From OTEL_RESOURCE_ATTRIBUTES, beneath the container's own. */
  resource: ReadonlyArray<readonly [string, string]>;
}

export function configureOtlp(values: OptionValues<typeof OTLP_OPTIONS>, settings: BackendSettings<OptionValues<typeof OTLP_SETTINGS>>): OtlpConfig {
  const opts: Texts = {
    'otlp-endpoint': values['otlp-endpoint'],
    'otlp-protocol': values['otlp-protocol'],
    'otlp-headers': values['otlp-headers'],
    'otlp-compression': values['otlp-compression'],
    'otlp-tls-ca-file': values['otlp-tls-ca-file'],
    'otlp-tls-cert-file': values['otlp-tls-cert-file'],
    'otlp-tls-key-file': values['otlp-tls-key-file'],
  };
  const env: Texts = settings.own;
  /** A log-opt, else the `_LOGS_` setting, else the general one, with where it came from for errors. */
  const pick = (key: string, name: string): { value: string; from: string } | null => {
    if (opts[key]) return { value: opts[key], from: `log opt '${key}'` };
    for (const setting of [`OTEL_EXPORTER_OTLP_LOGS_${name}`, `OTEL_EXPORTER_OTLP_${name}`]) {
      const value = env[setting];
      if (value) return { value, from: `plugin setting ${setting}` };
    }
    return null;
  };
  const protocolPick = pick('otlp-protocol', 'PROTOCOL');
  const protocol = (protocolPick?.value ?? 'http/protobuf') as OtlpProtocol;
  if (!PROTOCOLS.includes(protocol)) throw new InvalidOptionError(`invalid value '${protocol}' for ${protocolPick!.from}: expected ${PROTOCOLS.join(', ')}`);
  const url = endpoint(opts, env, protocol);
  const https = url.protocol === 'https:';
  const skipVerify = values['otlp-tls-insecure-skip-verify'];
  // TLS files from the log-opts, else the settings (the SDKs' CERTIFICATE, CLIENT_CERTIFICATE, CLIENT_KEY).
  const files: Record<string, { key: string; file: string }> = {};
  for (const [key, name] of [['otlp-tls-ca-file', 'CERTIFICATE'], ['otlp-tls-cert-file', 'CLIENT_CERTIFICATE'], ['otlp-tls-key-file', 'CLIENT_KEY']] as const) {
    const p = pick(key, name);
    if (p) files[key] = { key: p.from.startsWith('log opt') ? key : p.from.replace('plugin setting ', ''), file: p.value };
  }
  const tlsSet = Object.keys(files)[0] ?? (skipVerify ? 'otlp-tls-insecure-skip-verify' : undefined);
  if (tlsSet && !https) throw new InvalidOptionError(`TLS is configured ('${tlsSet}'), but the OTLP endpoint is not https://`);
  const compressionPick = pick('otlp-compression', 'COMPRESSION');
  const compression = compressionPick?.value ?? 'none';
  if (compression !== 'gzip' && compression !== 'none') throw new InvalidOptionError(`invalid value '${compression}' for ${compressionPick!.from}: expected gzip or none`);
  return {
    protocol,
    url,
    tls: https
      ? tlsOptions({
          ...(files['otlp-tls-ca-file'] ? { ca: files['otlp-tls-ca-file'] } : {}),
          ...(files['otlp-tls-cert-file'] ? { cert: files['otlp-tls-cert-file'] } : {}),
          ...(files['otlp-tls-key-file'] ? { key: files['otlp-tls-key-file'] } : {}),
          skipVerify,
          servername: url.hostname,
        })
      : {},
    proxy: settings.proxy,
    headers: {
      ...parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS, 'plugin setting OTEL_EXPORTER_OTLP_HEADERS'),
      ...parseHeaders(env.OTEL_EXPORTER_OTLP_LOGS_HEADERS, 'plugin setting OTEL_EXPORTER_OTLP_LOGS_HEADERS'),
      ...parseHeaders(opts['otlp-headers'], "log opt 'otlp-headers'"),
    },
    gzip: compression === 'gzip',
    timeoutMs: values['otlp-timeout'] ?? timeout(env),
    resource: parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES),
  };
}

function endpoint(opts: Texts, env: Texts, protocol: OtlpProtocol): URL {
  const grpc = protocol === 'grpc';
  // The signal's own setting is the logs URL as it is; the general one and the log-opt are a
  // base to which /v1/logs is added (OTLP exporter specification).
  const [raw, from, asIs] = opts['otlp-endpoint']
    ? [opts['otlp-endpoint'], "log opt 'otlp-endpoint'", false]
    : env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT
      ? [env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, 'plugin setting OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', true]
      : env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? [env.OTEL_EXPORTER_OTLP_ENDPOINT, 'plugin setting OTEL_EXPORTER_OTLP_ENDPOINT', false]
        : [grpc ? 'http://localhost:4317' : 'http://localhost:4318', 'the default', false];
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    /* below */
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
    throw new InvalidOptionError(`invalid value ${shownAddress(raw)} for ${from}: expected an http:// or https:// URL without credentials (send those in otlp-headers)`);
  }
  if (grpc || asIs || /\/v1\/logs\/?$/.test(url.pathname)) return url;
  url.pathname = `${url.pathname.replace(/\/$/, '')}/v1/logs`;
  return url;
}

function timeout(env: Texts): number {
  for (const setting of ['OTEL_EXPORTER_OTLP_LOGS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
    const value = env[setting];
    if (!value) continue;
    // The SDKs' variables are milliseconds.
    const ms = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(ms >= 1 && ms <= 86_400_000)) throw new InvalidOptionError(`invalid value '${value}' for plugin setting ${setting}: expected milliseconds, 1 to 86400000`);
    return ms;
  }
  return 10_000;
}

/** A header name as RFC 9110 allows it. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `key=value,...` with percent-encoded values (W3C Baggage's form, as the SDKs read it). Values are never quoted in errors. */
export function parseHeaders(value: string | undefined, from: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value) return out;
  value.split(',').forEach((entry, i) => {
    if (entry.trim() === '') return;
    const eq = entry.indexOf('=');
    const name = eq < 0 ? '' : entry.slice(0, eq).trim();
    if (!TOKEN.test(name)) throw new InvalidOptionError(`invalid ${from}: entry ${i + 1} is not name=value with a header name (values are not shown)`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      throw new InvalidOptionError(`invalid ${from}: the value of header '${name}' is not percent-encoded text (values are not shown)`);
    }
    if (/[\r\n\0]/.test(decoded)) throw new InvalidOptionError(`invalid ${from}: the value of header '${name}' has a line break (values are not shown)`);
    out[name.toLowerCase()] = decoded;
  });
  return out;
}

/** OTEL_RESOURCE_ATTRIBUTES: `key=value,...`, values percent-encoded. */
export function parseResourceAttributes(value: string | undefined): Array<readonly [string, string]> {
  if (!value) return [];
  return value.split(',').flatMap((entry) => {
    const eq = entry.indexOf('=');
    if (entry.trim() === '') return [];
    if (eq <= 0) throw new InvalidOptionError(`invalid plugin setting OTEL_RESOURCE_ATTRIBUTES: '${entry}' is not key=value`);
    try {
      return [[entry.slice(0, eq).trim(), decodeURIComponent(entry.slice(eq + 1).trim())] as const];
    } catch {
      throw new InvalidOptionError(`invalid plugin setting OTEL_RESOURCE_ATTRIBUTES: the value of '${entry.slice(0, eq).trim()}' is not percent-encoded text`);
    }
  });
}

// The messages, loaded at a container's first export from the official files: each named by
// its own URL so the bundle copies it, and imports resolved by file name (the bundle's assets
// folder is flat).
const PROTO_FILES = [
  fileURLToPath(new URL('../../proto/opentelemetry/proto/common/v1/common.proto', import.meta.url)),
  fileURLToPath(new URL('../../proto/opentelemetry/proto/resource/v1/resource.proto', import.meta.url)),
  fileURLToPath(new URL('../../proto/opentelemetry/proto/logs/v1/logs.proto', import.meta.url)),
  fileURLToPath(new URL('../../proto/opentelemetry/proto/collector/logs/v1/logs_service.proto', import.meta.url)),
];
let messages: { request: protobuf.Type; response: protobuf.Type } | null = null;

export function otlpMessages(): { request: protobuf.Type; response: protobuf.Type } {
  if (messages) return messages;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO_FILES.find((file) => file.endsWith(`/${target.split('/').at(-1)}`)) ?? target;
  root.loadSync(PROTO_FILES);
  messages = {
    request: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
  };
  return messages;
}

/** An AnyValue, in the form both protobufjs (from plain objects) and OTLP/JSON take. */
export type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: KeyValue[] } }
  | Record<string, never>;
export interface KeyValue {
  key: string;
  value: AnyValue;
}

/** A parsed JSON value as an AnyValue: integers as intValue, other numbers as doubleValue, null as the empty value. */
export function anyValue(value: unknown): AnyValue {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  if (Array.isArray(value)) return { arrayValue: { values: value.map(anyValue) } };
  if (value !== null && typeof value === 'object') return { kvlistValue: { values: keyValues(value as Record<string, unknown>) } };
  return {};
}

function keyValues(object: Readonly<Record<string, unknown>>): KeyValue[] {
  return Object.entries(object).map(([key, value]) => ({ key, value: anyValue(value) }));
}

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });

const SEVERITY = { stdout: { severityNumber: 9, severityText: 'INFO' }, stderr: { severityNumber: 17, severityText: 'ERROR' } } as const;

/** The resource of a container, by the semantic conventions; OTEL_RESOURCE_ATTRIBUTES fill in what the container does not say. */
export function resourceAttributes(container: ContainerContext, fromSettings: ReadonlyArray<readonly [string, string]>): KeyValue[] {
  const own = new Map<string, KeyValue>();
  const image = splitImage(container.imageName);
  own.set('container.id', str('container.id', container.id));
  own.set('container.name', str('container.name', container.name));
  own.set('container.image.name', str('container.image.name', image.name));
  if (image.tag) own.set('container.image.tags', { key: 'container.image.tags', value: { arrayValue: { values: [{ stringValue: image.tag }] } } });
  if (container.imageId) own.set('container.image.id', str('container.image.id', container.imageId));
  own.set('container.runtime.name', str('container.runtime.name', 'docker'));
  own.set('host.name', str('host.name', container.hostname));
  const compose = container.info.labels['com.docker.compose.service'];
  own.set('service.name', str('service.name', compose || container.name));
  const project = container.info.labels['com.docker.compose.project'];
  if (project) own.set('service.namespace', str('service.namespace', project));
  const out = [...own.values()];
  for (const [key, value] of fromSettings) if (!own.has(key)) out.push(str(key, value));
  return out;
}

/** `registry:5000/app:1.2` → name `registry:5000/app`, tag `1.2`; a digest reference has no tag. */
function splitImage(reference: string): { name: string; tag: string | null } {
  const at = reference.indexOf('@');
  const base = at >= 0 ? reference.slice(0, at) : reference;
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/')) return { name: base.slice(0, colon), tag: at >= 0 ? null : base.slice(colon + 1) };
  return { name: base, tag: null };
}

/** Builds the export request of one container's batch, as the object tree both encodings take. */
export class RecordEncoder {
  private readonly resource: { attributes: KeyValue[] };
  private readonly scope = { name: 'logship' };
  private readonly attributes: KeyValue[];
  private plain: PlainRequestWriter | null = null;

  constructor(container: ContainerContext, fromSettings: ReadonlyArray<readonly [string, string]>) {
    this.resource = { attributes: resourceAttributes(container, fromSettings) };
    this.attributes = container.attributes.map(([key, value]) => str(key, value));
  }

  request(lines: readonly OutgoingLine[], observedNano = BigInt(Date.now()) * 1_000_000n): object {
    const observed = String(observedNano);
    const iostream = { stdout: str('log.iostream', 'stdout'), stderr: str('log.iostream', 'stderr') };
    const logRecords = lines.map((line) => {
      const source = line.source === 'stderr' ? 'stderr' : 'stdout';
      return {
        timeUnixNano: String(line.timeNano),
        observedTimeUnixNano: observed,
        ...SEVERITY[source],
        body: line.fields ? { kvlistValue: { values: keyValues(line.fields) } } : { stringValue: line.line.toString('utf8') },
        attributes: [iostream[source], ...this.attributes],
      };
    });
    return { resourceLogs: [{ resource: this.resource, scopeLogs: [{ scope: this.scope, logRecords }] }] };
  }

  /** Plain lines' protobuf is written by PlainRequestWriter; parse-json's kvlists go through protobufjs's encoder of the object tree. */
  encode(lines: readonly OutgoingLine[], protocol: OtlpProtocol, observedNano = BigInt(Date.now()) * 1_000_000n): Buffer {
    if (protocol === 'http/json') return Buffer.from(JSON.stringify(this.request(lines, observedNano)));
    if (lines.every((line) => !line.fields)) {
      this.plain ??= new PlainRequestWriter(this.resource, this.scope, this.attributes);
      return this.plain.write(lines, observedNano);
    }
    return Buffer.from(otlpMessages().request.encode(this.request(lines, observedNano) as protobuf.Message).finish());
  }
}

const varintLength = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** A length-delimited field: its tag, its length, its bytes. */
function field(tag: number, bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + varintLength(bytes.length) + bytes.length);
  out[0] = tag;
  out.set(bytes, writeVarint(out, 1, bytes.length));
  return out;
}

// LogRecord's fields, as protobufjs writes them (in field-number order): time_unix_nano (1,
// fixed64), severity_number (2), severity_text (3), body (5, an AnyValue of string_value 1),
// attributes (6, repeated), observed_time_unix_nano (11, fixed64).
const TAG_TIME = 0x09;
const TAG_SEVERITY = 0x10;
const TAG_SEVERITY_TEXT = 0x1a;
const TAG_BODY = 0x2a;
const TAG_STRING_VALUE = 0x0a;
const TAG_OBSERVED = 0x59;
const TAG_LOG_RECORD = 0x12; // ScopeLogs.log_records (2)
const TAG_SCOPE_LOGS = 0x12; // ResourceLogs.scope_logs (2)
const TAG_RESOURCE_LOGS = 0x0a; // ExportLogsServiceRequest.resource_logs (1)

/**
 * The protobuf export request of a batch of plain lines (no parse-json fields), written by
 * hand into one buffer: protobufjs's encoding of the object tree, with each time's decimal
 * string parsed again by Long, was 80% of the CPU shipping to OTLP (bench/delivery-backends.ts,
 * profiled). What stays the same for every record (the resource, the scope, the severity
 * fields and attributes of each stream) is encoded once by protobufjs; the output is byte for
 * byte protobufjs's (test/unit/otlp.test.ts).
 */
class PlainRequestWriter {
  /** ResourceLogs.resource (1) and ScopeLogs.scope (1), as fields. */
  private readonly resource: Buffer;
  private readonly scope: Buffer;
  /** Per stream: severity number and text, then the attributes, as fields (between the time and the body, and after the body). */
  private readonly severity: Record<'stdout' | 'stderr', Buffer>;
  private readonly attributes: Record<'stdout' | 'stderr', Buffer>;

  constructor(resource: { attributes: KeyValue[] }, scope: { name: string }, attributes: readonly KeyValue[]) {
    const root = otlpMessages().request.root;
    const encode = (type: string, value: object): Uint8Array => root.lookupType(type).encode(value as protobuf.Message).finish();
    this.resource = field(0x0a, encode('opentelemetry.proto.resource.v1.Resource', resource));
    this.scope = field(0x0a, encode('opentelemetry.proto.common.v1.InstrumentationScope', scope));
    const streamFields = (source: 'stdout' | 'stderr'): { severity: Buffer; attributes: Buffer } => {
      const { severityNumber, severityText } = SEVERITY[source];
      const text = Buffer.from(severityText, 'latin1');
      const kvs = [str('log.iostream', source), ...attributes].map((kv) => field(0x32, encode('opentelemetry.proto.common.v1.KeyValue', kv)));
      return { severity: Buffer.concat([Buffer.from([TAG_SEVERITY, severityNumber, TAG_SEVERITY_TEXT, text.length]), text]), attributes: Buffer.concat(kvs) };
    };
    const out = streamFields('stdout');
    const err = streamFields('stderr');
    this.severity = { stdout: out.severity, stderr: err.severity };
    this.attributes = { stdout: out.attributes, stderr: err.attributes };
  }

  write(lines: readonly OutgoingLine[], observedNano: bigint): Buffer {
    // The bodies' bytes: the line's own when it is UTF-8, otherwise the text protobufjs would
    // write for it (a JavaScript string of it, invalid sequences replaced).
    const bodies = lines.map((line) => (isUtf8(line.line) ? line.line : Buffer.from(line.line.toString('utf8'))));
    const recordLengths = new Array<number>(lines.length);
    let recordsBytes = 0;
    for (let i = 0; i < lines.length; i++) {
      const source = lines[i]!.source === 'stderr' ? 'stderr' : 'stdout';
      const text = bodies[i]!.length;
      const any = 1 + varintLength(text) + text;
      const length = 9 + this.severity[source].length + 1 + varintLength(any) + any + this.attributes[source].length + 9;
      recordLengths[i] = length;
      recordsBytes += 1 + varintLength(length) + length;
    }
    const scopeLogs = this.scope.length + recordsBytes;
    const resourceLogs = this.resource.length + 1 + varintLength(scopeLogs) + scopeLogs;
    const out = Buffer.allocUnsafe(1 + varintLength(resourceLogs) + resourceLogs);
    out[0] = TAG_RESOURCE_LOGS;
    let pos = writeVarint(out, 1, resourceLogs);
    pos += this.resource.copy(out, pos);
    out[pos++] = TAG_SCOPE_LOGS;
    pos = writeVarint(out, pos, scopeLogs);
    pos += this.scope.copy(out, pos);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const source = line.source === 'stderr' ? 'stderr' : 'stdout';
      const body = bodies[i]!;
      out[pos++] = TAG_LOG_RECORD;
      pos = writeVarint(out, pos, recordLengths[i]!);
      out[pos++] = TAG_TIME;
      pos = out.writeBigUInt64LE(BigInt.asUintN(64, line.timeNano), pos);
      pos += this.severity[source].copy(out, pos);
      out[pos++] = TAG_BODY;
      pos = writeVarint(out, pos, 1 + varintLength(body.length) + body.length);
      out[pos++] = TAG_STRING_VALUE;
      pos = writeVarint(out, pos, body.length);
      pos += body.copy(out, pos);
      pos += this.attributes[source].copy(out, pos);
      out[pos++] = TAG_OBSERVED;
      pos = out.writeBigUInt64LE(observedNano, pos);
    }
    return out;
  }
}

/** What an export response says of the records: `rejected` of them refused for good. */
export interface ExportOutcome {
  rejected: number;
  message: string;
}

export function exportOutcome(body: Buffer, json: boolean): ExportOutcome {
  if (body.length === 0) return { rejected: 0, message: '' };
  const decoded = (json ? JSON.parse(body.toString('utf8')) : otlpMessages().response.toObject(otlpMessages().response.decode(body), { longs: String })) as {
    partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string };
  };
  return { rejected: Number(decoded.partialSuccess?.rejectedLogRecords ?? 0), message: decoded.partialSuccess?.errorMessage ?? '' };
}

/**
 * A partial success names how many records were refused, never which: that many lines are
 * told to the engine as rejected, the last of the request, so the count is right; they are
 * dead-lettered (kept, not lost) though the collector may have kept them.
 */
export function partialRejections(count: number, lines: number, message: string): Rejection[] {
  const n = Math.min(Math.max(0, Math.trunc(count)), lines);
  const reason = `the collector refused ${n} of ${lines} records without naming them${message ? `: ${message.slice(0, 200)}` : ''}`;
  return Array.from({ length: n }, (_, i) => ({ index: lines - n + i, code: 'invalid' as const, reason }));
}

const GRPC_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

/**
 * gRPC statuses that name the request as bad (the engine sends it in halves): INVALID_ARGUMENT
 * and FAILED_PRECONDITION. Every other one is the collector's state or the operator's to fix
 * (UNAVAILABLE, RESOURCE_EXHAUSTED, UNAUTHENTICATED, UNIMPLEMENTED at a wrong address, ...).
 */
const GRPC_NOT_TRANSIENT = new Set([3, 9]);

/** One HTTP/2 session to the collector, dialled at the first call and again after it fails. */
export class GrpcChannel {
  private readonly url: URL;
  private readonly tls: tls.ConnectionOptions;
  private readonly timeoutMs: number;
  private session: http2.ClientHttp2Session | null = null;

  constructor(url: URL, tlsOptions: tls.ConnectionOptions, timeoutMs: number) {
    this.url = url;
    this.tls = tlsOptions;
    this.timeoutMs = timeoutMs;
  }

  private connect(): http2.ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = http2.connect(this.url.origin, this.url.protocol === 'https:' ? this.tls : {});
    // A failed session fails its streams, which report it; the next call dials again.
    session.on('error', () => session.destroy());
    session.on('close', () => {
      if (this.session === session) this.session = null;
    });
    this.session = session;
    return session;
  }

  /** One unary call; resolves with the response message, throws a classified SendError. */
  call(message: Buffer, compressed: boolean, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<Buffer> {
    signal.throwIfAborted();
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = compressed ? 1 : 0;
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    return new Promise<Buffer>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      try {
        session = this.connect();
      } catch (err) {
        reject(new SendError(`otlp grpc: ${(err as Error).message}`, { transient: true, cause: err }));
        return;
      }
      const stream = session.request({
        ':method': 'POST',
        ':path': GRPC_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${this.timeoutMs}m`,
        'grpc-accept-encoding': 'identity,gzip',
        'user-agent': 'logship',
        ...(compressed ? { 'grpc-encoding': 'gzip' } : {}),
        ...headers,
      });
      let settled = false;
      const finish = (err: SendError | null, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else resolve(body!);
      };
      const onAbort = (): void => finish(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => finish(new SendError(`otlp grpc: no answer within ${this.timeoutMs} ms`, { transient: true })), this.timeoutMs);
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let statusMessage = '';
      let encoding = 'identity';
      const read = (h: http2.IncomingHttpHeaders): void => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
        if (h['grpc-message'] !== undefined) statusMessage = decodeURIComponentSafe(String(h['grpc-message']));
        if (h['grpc-encoding'] !== undefined) encoding = String(h['grpc-encoding']);
      };
      stream.on('response', (h) => {
        const httpStatus = Number(h[':status']);
        if (httpStatus !== 200) {
          finish(new SendError(`otlp grpc: HTTP ${httpStatus} from the collector`, { transient: true }));
          return;
        }
        read(h);
      });
      stream.on('trailers', read);
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err) => finish(new SendError(`otlp grpc: ${err.message}`, { transient: true, cause: err })));
      stream.on('end', () => {
        if (status === undefined) return finish(new SendError('otlp grpc: the call ended without a status', { transient: true }));
        const code = Number(status);
        if (code !== 0) {
          const transient = !GRPC_NOT_TRANSIENT.has(code);
          return finish(new SendError(`otlp grpc: status ${code}${statusMessage ? `: ${statusMessage.slice(0, 300)}` : ''}`, { transient, ...(transient ? {} : { rejectCode: 'invalid' as const }) }));
        }
        const body = Buffer.concat(chunks);
        if (body.length < 5) return finish(null, Buffer.alloc(0));
        const length = body.readUInt32BE(1);
        const payload = body.subarray(5, 5 + length);
        if (body[0] === 1 && encoding === 'gzip') {
          gunzip(payload).then((plain) => finish(null, plain), (err: Error) => finish(new SendError(`otlp grpc: ${err.message}`, { transient: true })));
        } else finish(null, payload);
      });
      stream.end(frame);
    });
  }

  close(): void {
    this.session?.destroy();
    this.session = null;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

class OtlpBackend implements Backend {
  private readonly config: OtlpConfig;
  private readonly encoder: RecordEncoder;
  private readonly http: HttpClient | null;
  private readonly grpc: GrpcChannel | null;

  constructor(config: OtlpConfig, container: ContainerContext) {
    this.config = config;
    this.encoder = new RecordEncoder(container, config.resource);
    if (config.protocol === 'grpc') {
      this.http = null;
      this.grpc = new GrpcChannel(config.url, config.tls, config.timeoutMs);
    } else {
      // 401, 403 and 404 are fixed by an operator (credentials, tenant, address), not by the lines.
      this.http = new HttpClient({ name: 'otlp', tls: config.tls, proxy: config.proxy, timeoutMs: config.timeoutMs, transientStatuses: [401, 403, 404] });
      this.grpc = null;
    }
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (lines.length === 0) return DELIVERED;
    let body: Buffer;
    try {
      body = this.encoder.encode(lines, this.config.protocol);
      if (this.config.gzip) body = await gzip(body);
    } catch (err) {
      throw new SendError(`otlp: encoding the records failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
    }
    let outcome: ExportOutcome;
    if (this.grpc) {
      outcome = exportOutcome(await this.grpc.call(body, this.config.gzip, this.config.headers, signal), false);
    } else {
      const json = this.config.protocol === 'http/json';
      const answer = await this.http!.send(
        {
          url: this.config.url,
          method: 'POST',
          headers: { 'user-agent': 'logship', ...this.config.headers, 'content-type': json ? 'application/json' : 'application/x-protobuf', ...(this.config.gzip ? { 'content-encoding': 'gzip' } : {}) },
          body,
        },
        signal,
      );
      const type = answer.headers['content-type'] ?? '';
      try {
        outcome = exportOutcome(answer.body, type.includes('json'));
      } catch {
        // A 2xx is the collector's word that it took the records; an unreadable body says no more.
        outcome = { rejected: 0, message: '' };
      }
    }
    if (outcome.rejected <= 0) return DELIVERED;
    return { rejected: partialRejections(outcome.rejected, lines.length, outcome.message) };
  }

  async close(): Promise<void> {
    await this.http?.close();
    this.grpc?.close();
  }
}

export const otlpFactory: BackendFactory<OtlpConfig, typeof OTLP_OPTIONS, typeof OTLP_SETTINGS> = {
  name: 'otlp',
  options: OTLP_OPTIONS,
  settings: OTLP_SETTINGS,
  configure: (values, settings) => configureOtlp(values, settings),
  batchLimits(): BatchLimits {
    // Under gRPC's 4 MiB default message size, which collectors keep, with each record's
    // time, severity and attributes beside its line.
    return { maxLines: 2000, maxBytes: 3 << 20, lineOverheadBytes: 128 };
  },
  create(config, container) {
    return new OtlpBackend(config, container);
  },
};
