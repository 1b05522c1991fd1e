// Kafka, through @platformatic/kafka (pure JavaScript: nothing to build for the rootfs),
// loaded at a container's first send so the plugin pays for it only on hosts that use it;
// its Produce requests' bytes are written by kafka-produce.ts (the library's encoder was most
// of the CPU time shipping short lines: the figures are there).
// A record per line: the fluentd driver's fields as JSON (or the line as it is), the line's
// time as the record's, the container's id, name, stream and attributes as headers, keyed by
// a template (default the full container id, so a container's lines stay in one partition
// and in order).
//
// Delivery: with kafka-acks=all (the default) the producer is idempotent, so the library's own
// retries within a send (a leader moved, a timeout) carry the same sequence numbers and the
// broker drops the copies; the engine moves the cursor only once the broker acknowledged the
// batch. A send that fails is retried by the engine with a new producer id: at least once,
// a copy possible only for a batch the broker wrote but whose answer was lost. Every send
// goes to one partition (the key's, or for keyless records one chosen per send), so a batch
// is taken or refused whole and never half-written across partitions.
import { randomInt } from 'node:crypto';
import type tls from 'node:tls';
import type { ProducerOptions } from '@platformatic/kafka';
import { type Backend, type BackendFactory, type BackendSettings, type BatchLimits, DELIVERED, type Rejection, type SendResult, SendError, abortError } from '../delivery/backend.ts';
import { RateLimitedWarning } from '../observability/log.ts';
import { type OptionValues, defineOptions } from '../options/schema.ts';
import { InvalidOptionError } from '../options/values.ts';
import type { ContainerContext } from '../shaping/container.ts';
import type { OutgoingLine } from '../shaping/line.ts';
import { type TagTemplate, TemplateError, compileTag } from '../shaping/tag.ts';
import { parseHostPort } from '../transport/address.ts';
import { sendInOrder } from '../transport/requests.ts';
import { tlsFileOptions, tlsOptions } from '../transport/tls.ts';
import { fluentdRecordFields } from './fluentd.ts';
import { goJsonBytes, goJsonString, goJsonValue, isPlainJsonText } from './go-json.ts';
import { type RecordProducer, type RecordSource, createProducer, kafkaBytes, kafkaHeaders, prepareMessages, put, uvarintSize, writeUvarint, zigzag } from './kafka-produce.ts';

const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCompression = (typeof COMPRESSIONS)[number];
const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** What a record takes beside its key, value and headers (Kafka's record and batch framing), counted against kafka-message-max-bytes. */
export const RECORD_OVERHEAD = 96;
const TLS_FILE = 'a PEM file, as the plugin sees it';

export const KAFKA_OPTIONS = defineOptions([
  { key: 'kafka-brokers', type: 'custom', required: true, accepts: 'a comma list of `host:port`', parse: parseBrokers, doc: 'comma list of bootstrap brokers, `host:port`; the others are found from the cluster\'s metadata' },
  { key: 'kafka-topic', type: 'custom', required: true, accepts: "a template like `tag`'s", parse: parseTemplate, doc: "the topic, a template like `tag`'s (`logs`, `logs-{{.Name}}`); it must give a valid topic name (letters, digits, `.`, `_`, `-`, at most 249)" },
  { key: 'kafka-key', type: 'custom', default: '{{.FullID}}', empty: 'value', accepts: "a template like `tag`'s", parse: parseTemplate, doc: "the records' key, a template like `tag`'s: one partition per key, so a container's lines keep their order; empty: no key (each batch to a partition of its own choosing, order only within a partition)" },
  { key: 'kafka-format', type: 'enum', default: 'json', values: ['json', 'raw'], doc: '`json`: a record with the fields the fluentd driver sends (`container_id`, `container_name`, `source`, `log`, the attributes); `raw`: the line as it is' },
  { key: 'kafka-compression', type: 'enum', default: 'lz4', values: COMPRESSIONS, doc: 'how record batches are compressed: `lz4` (the default: smaller and, to a local broker, faster than none), `none`, `gzip`, `snappy`, `zstd` (Kafka 2.1 or later)' },
  { key: 'kafka-acks', type: 'custom', default: 'all', accepts: '`all` or `1`', parse: parseAcks, doc: '`all`: the in-sync replicas have the batch before it counts as delivered, with an idempotent producer (no copies from retries); `1`: the leader alone (a leader lost before the others copied it loses the batch); `0` is refused: the broker would say nothing, so nothing could be known delivered' },
  { key: 'kafka-client-id', type: 'string', default: 'logship', accepts: 'text', doc: 'the client id the brokers see (quotas, logs)' },
  { key: 'kafka-message-max-bytes', type: 'size', units: 'decimal', default: '1m', doc: "the largest record, uncompressed, key and headers included (the broker's `message.max.bytes` is 1,048,588 by default); a longer one is rejected and dead-lettered, never retried. Also the most record bytes in one produce request" },
  { key: 'kafka-tls', type: 'bool', default: 'false', doc: '`true`: TLS to the brokers' },
  { key: 'kafka-tls-ca-cert', type: 'string', accepts: TLS_FILE, defaultDoc: "the system's CAs", doc: "PEM file of the CA that signs the brokers' certificates" },
  { key: 'kafka-tls-cert', type: 'string', accepts: TLS_FILE, defaultDoc: 'none', doc: 'PEM client certificate and key, for brokers that ask for one (both or neither)' },
  { key: 'kafka-tls-key', type: 'string', accepts: TLS_FILE, defaultDoc: 'none', doc: 'PEM client certificate and key, for brokers that ask for one (both or neither)' },
  { key: 'kafka-tls-skip-verify', type: 'bool', default: 'false', doc: "`true` skips verifying the brokers' certificates" },
]);

/** SASL is plugin settings, never log-opts (`docker inspect` shows those). */
export const KAFKA_SETTINGS = defineOptions([
  { key: 'KAFKA_SASL_MECHANISM', type: 'enum', values: SASL_MECHANISMS, doc: 'SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD); unset: no SASL' },
  { key: 'KAFKA_SASL_USERNAME', type: 'string', doc: 'SASL user' },
  { key: 'KAFKA_SASL_PASSWORD', type: 'string', secret: true, doc: 'SASL password' },
]);

export interface KafkaConfig {
  brokers: string[];
  topic: TagTemplate;
  key: TagTemplate;
  format: 'json' | 'raw';
  compression: KafkaCompression;
  /** `all` makes the producer idempotent. */
  acks: 'all' | '1';
  clientId: string;
  messageMaxBytes: number;
  tls: tls.ConnectionOptions | null;
  sasl: { mechanism: SaslMechanism; username: string; password: string } | null;
}

function parseBrokers(value: string, key: string): string[] {
  const brokers = value.split(',').map((b) => b.trim());
  for (const broker of brokers) {
    const hostPort = broker === '' ? null : parseHostPort(broker, 0);
    if (!hostPort || hostPort.host === '' || hostPort.port === 0) {
      throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': '${broker}' is not host:port; expected a comma list of host:port`);
    }
  }
  return brokers;
}

function parseTemplate(value: string, key: string): TagTemplate {
  try {
    return compileTag(value);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new InvalidOptionError(`invalid template '${value}' for log opt '${key}': ${err.message}`);
  }
}

function parseAcks(value: string, key: string): 'all' | '1' {
  if (value === 'all' || value === '-1') return 'all';
  if (value === '1') return '1';
  if (value === '0') {
    throw new InvalidOptionError(`log opt '${key}=0' is refused: with acks=0 the broker never answers, so logship could not know a batch arrived and would move past lines it may have lost; use 'all' (the default) or '1'`);
  }
  throw new InvalidOptionError(`invalid value '${value}' for log opt '${key}': expected all or 1`);
}

export function configureKafka(values: OptionValues<typeof KAFKA_OPTIONS>, settings: BackendSettings<OptionValues<typeof KAFKA_SETTINGS>>): KafkaConfig {
  const skipVerify = values['kafka-tls-skip-verify'];
  const files = tlsFileOptions('kafka-tls', values);
  const tlsSet = [files.ca, files.cert, files.key].find((entry) => entry?.file)?.key ?? (skipVerify ? 'kafka-tls-skip-verify' : undefined);
  if (tlsSet && !values['kafka-tls']) throw new InvalidOptionError(`log opt '${tlsSet}' is set, but 'kafka-tls' is not true`);
  const maxBytes = values['kafka-message-max-bytes'];
  if (maxBytes < 1024 || maxBytes > 100_000_000) {
    throw new InvalidOptionError(`invalid value for log opt 'kafka-message-max-bytes': expected a size from 1k to 100m, got ${maxBytes} bytes`);
  }
  return {
    brokers: values['kafka-brokers'],
    topic: values['kafka-topic'],
    key: values['kafka-key'],
    format: values['kafka-format'],
    compression: values['kafka-compression'],
    acks: values['kafka-acks'],
    clientId: values['kafka-client-id'],
    messageMaxBytes: maxBytes,
    // SNI comes from each broker's host name.
    tls: values['kafka-tls'] ? tlsOptions({ ...files, skipVerify }) : null,
    sasl: parseSasl(settings.own),
  };
}

function parseSasl(own: OptionValues<typeof KAFKA_SETTINGS>): KafkaConfig['sasl'] {
  const mechanism = own.KAFKA_SASL_MECHANISM;
  const username = own.KAFKA_SASL_USERNAME ?? '';
  const password = own.KAFKA_SASL_PASSWORD ?? '';
  // Never quoted: the password is a secret.
  if (mechanism === undefined) {
    if (username !== '' || password !== '') throw new InvalidOptionError('plugin settings KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD need KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)');
    return null;
  }
  if (username === '' || password === '') throw new InvalidOptionError(`plugin setting KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (docker plugin set)`);
  return { mechanism, username, password };
}

/** Kafka's rule for topic names (its Topic.validate). */
function checkTopic(topic: string): void {
  const why =
    topic === '' ? 'it is empty'
    : topic === '.' || topic === '..' ? "it cannot be '.' or '..'"
    : topic.length > 249 ? 'it is longer than 249 characters'
    : /[^a-zA-Z0-9._-]/.test(topic) ? 'it may have only letters, digits, ., _ and -'
    : null;
  if (why !== null) throw new InvalidOptionError(`log opt 'kafka-topic' gives '${topic}' for this container, which is not a valid topic name: ${why}`);
}

function executeTemplate(template: TagTemplate, key: string, container: ContainerContext): string {
  try {
    return template.execute(container.info);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new InvalidOptionError(`log opt '${key}': ${err.message}`);
  }
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
const SOURCE_HEADER = utf8('source');
const SOURCES = { stdout: utf8('stdout'), stderr: utf8('stderr') } as const;

/** The records of one container: everything but the line, its stream and time is encoded once, as Kafka's bytes. */
export class KafkaEncoder {
  readonly topic: string;
  readonly key: Buffer | undefined;
  /** The key as a record holds it (its length, then its bytes). */
  readonly keyField: Buffer;
  readonly format: 'json' | 'raw';
  /**
   * The headers of a stdout line and of a stderr line as a record holds them: container_id,
   * container_name, the attributes and `source`, with their count.
   */
  readonly headerFields: Readonly<Record<'stdout' | 'stderr', Buffer>>;
  /** The headers' keys and values, as counted against kafka-message-max-bytes. */
  readonly headerBytes: number;
  /** `,"container_id":…,…attributes}` after the line's own fields, as fluentd's record. */
  private readonly jsonTail: string;
  /**
   * A plain line's record as bytes around the line's: `{"source":"stdout","log":"` before it,
   * `"` + jsonTail after it (`tail`), and that with the record's headers (`tailHeaders`,
   * copied as one: they follow the value). Null when an attribute replaces source or log
   * (the general path then).
   */
  readonly plain: { stdout: Buffer; stderr: Buffer; tail: Buffer; tailHeaders: Readonly<Record<'stdout' | 'stderr', Buffer>> } | null;
  /** An attribute named `source` or `log` replaces that field, as in the fluentd driver's map. */
  private readonly sourceOverride: boolean;
  private readonly logOverride: boolean;
  /** Keys a parsed JSON line may not set: the record's own. */
  private readonly ownKeys: ReadonlySet<string>;

  constructor(config: Pick<KafkaConfig, 'topic' | 'key' | 'format'>, container: ContainerContext) {
    this.topic = executeTemplate(config.topic, 'kafka-topic', container);
    checkTopic(this.topic);
    const key = executeTemplate(config.key, 'kafka-key', container);
    this.key = key === '' ? undefined : utf8(key);
    this.keyField = kafkaBytes(this.key);
    this.format = config.format;
    const { fields, sourceOverride, logOverride, ownKeys } = fluentdRecordFields(container);
    this.sourceOverride = sourceOverride;
    this.logOverride = logOverride;
    this.ownKeys = ownKeys;
    this.jsonTail = [...fields].map(([k, v]) => `,${goJsonString(k)}:${goJsonString(v)}`).join('') + '}';
    const headers = new Map<string, string>([
      ['container_id', container.id],
      ['container_name', container.name],
    ]);
    for (const [k, v] of container.attributes) if (k !== 'source') headers.set(k, v);
    const fixed = [...headers].map(([k, v]) => [utf8(k), utf8(v)] as const);
    this.headerFields = {
      stdout: kafkaHeaders(new Map([...fixed, [SOURCE_HEADER, SOURCES.stdout]])),
      stderr: kafkaHeaders(new Map([...fixed, [SOURCE_HEADER, SOURCES.stderr]])),
    };
    const tail = utf8('"' + this.jsonTail);
    this.plain =
      this.sourceOverride || this.logOverride
        ? null
        : {
            stdout: utf8('{"source":"stdout","log":"'),
            stderr: utf8('{"source":"stderr","log":"'),
            tail,
            tailHeaders: { stdout: Buffer.concat([tail, this.headerFields.stdout]), stderr: Buffer.concat([tail, this.headerFields.stderr]) },
          };
    this.headerBytes = fixed.reduce((n, [k, v]) => n + k.length + v.length, 0) + SOURCE_HEADER.length + 'stdout'.length;
  }

  /** The records of a send's lines. */
  records(lines: readonly OutgoingLine[]): KafkaRecords {
    return new KafkaRecords(this, lines);
  }

  /**
   * A line's record value when it is not written from the line's bytes as they are: json()'s
   * for a line that is not plain (isPlain), null for a plain one or raw format.
   */
  value(line: OutgoingLine): Buffer | null {
    if (this.format === 'raw' || this.isPlain(line)) return null;
    return utf8(this.json(line));
  }

  /**
   * Whether json() of the line is the line's bytes between plain's head and tail: no partial
   * metadata or parsed fields, and its bytes their own JSON text. Building the string and
   * encoding it again was 11% of the CPU time while shipping short lines (bench/kafka.ts).
   */
  private isPlain(line: OutgoingLine): boolean {
    return this.plain !== null && !line.partial && !line.fields && isPlainJsonText(line.line);
  }

  /** The fluentd driver's record: `source` and `log`, partial metadata, parse-json's keys, then the container's fields. */
  private json(line: OutgoingLine): string {
    let out = '{';
    let sep = '';
    if (!this.sourceOverride) {
      out += `"source":"${line.source}"`;
      sep = ',';
    }
    if (!this.logOverride) {
      out += `${sep}"log":${goJsonBytes(line.line)}`;
      sep = ',';
    }
    const partial = line.partial;
    if (partial) {
      out += `${sep}"partial_message":"true","partial_id":${goJsonString(partial.id)},"partial_ordinal":"${partial.ordinal}","partial_last":"${partial.last}"`;
      sep = ',';
    }
    if (line.fields) {
      for (const [k, v] of Object.entries(line.fields)) {
        if (this.ownKeys.has(k)) continue;
        out += `${sep}${goJsonString(k)}:${goJsonValue(v)}`;
        sep = ',';
      }
    }
    // jsonTail starts with a comma: without any field before it, drop it.
    return sep === '' ? out + this.jsonTail.slice(1) : out + this.jsonTail;
  }
}

/** A request's lines (indexes in the send) and their records. */
export interface RecordRequest {
  lines: number[];
  records: RecordSource;
}

/**
 * A send's lines as records, written straight from the lines into the request's record batch
 * (kafka-produce.ts): per line only what cannot be shared, its value's length and, for a line
 * not written from its bytes, its value. Sizes are worked out once, here; cut() gives the
 * requests of a send, request() the RecordSource of some of the lines.
 */
export class KafkaRecords {
  private readonly encoder: KafkaEncoder;
  private readonly lines: readonly OutgoingLine[];
  /** Line i's value when not written from its bytes (KafkaEncoder.value); null while every line so far is (most sends: no array of 20,000 nulls). */
  private values: (Buffer | null)[] | null = null;
  private readonly valueSizes: Int32Array;
  /** Bytes of line i's record after its offset delta (bodySize), worked out with its value's size. */
  private readonly bodySizes: Int32Array;
  private readonly times: Float64Array;

  constructor(encoder: KafkaEncoder, lines: readonly OutgoingLine[]) {
    this.encoder = encoder;
    this.lines = lines;
    const n = lines.length;
    this.valueSizes = new Int32Array(n);
    this.bodySizes = new Int32Array(n);
    this.times = new Float64Array(n);
    const { plain, keyField, headerFields } = encoder;
    const raw = encoder.format === 'raw';
    // The ms of the line before and where it starts and ends in ns: a line in the same ms (most
    // of them, in a burst) is told by comparing, which allocates nothing; a BigInt division does.
    let ms = 0;
    let msStart = 1n;
    let msEnd = 0n;
    for (let i = 0; i < n; i++) {
      const line = lines[i]!;
      const value = encoder.value(line);
      if (value !== null) (this.values ??= new Array<Buffer | null>(n).fill(null))[i] = value;
      const size = value !== null ? value.length : raw ? line.line.length : plain![line.source].length + line.line.length + plain!.tail.length;
      this.valueSizes[i] = size;
      this.bodySizes[i] = keyField.length + uvarintSize(zigzag(size)) + size + headerFields[line.source].length;
      const t = line.timeNano;
      if (t < msStart || t >= msEnd) {
        const whole = t / 1_000_000n;
        ms = Number(whole);
        // Before 1970 the division truncates up, so no range there: each such line divides.
        msStart = whole >= 0n ? whole * 1_000_000n : 1n;
        msEnd = whole >= 0n ? msStart + 1_000_000n : 0n;
      }
      this.times[i] = ms;
    }
  }

  /**
   * The send cut into requests, in order, each within `maxBytes` of records as size() counts
   * them with RECORD_OVERHEAD each (a record batch within the broker's limit whatever the
   * compression); a line whose record alone is over it is rejected, in no request.
   */
  cut(maxBytes: number): { requests: RecordRequest[]; tooLarge: Rejection[] } {
    const requests: RecordRequest[] = [];
    const tooLarge: Rejection[] = [];
    let lines: number[] = [];
    let bytes = 0;
    for (let i = 0; i < this.lines.length; i++) {
      const size = this.size(i) + RECORD_OVERHEAD;
      if (size > maxBytes) {
        tooLarge.push({ index: i, code: 'too_large', reason: `the record is ${size} bytes, over kafka-message-max-bytes (${maxBytes})` });
        continue;
      }
      if (lines.length > 0 && bytes + size > maxBytes) {
        requests.push({ lines, records: this.request(lines) });
        lines = [];
        bytes = 0;
      }
      lines.push(i);
      bytes += size;
    }
    if (lines.length > 0) requests.push({ lines, records: this.request(lines) });
    return { requests, tooLarge };
  }

  /** Line i's record: key, value and headers, as counted against kafka-message-max-bytes. */
  size(i: number): number {
    return this.valueSizes[i]! + (this.encoder.key?.length ?? 0) + this.encoder.headerBytes;
  }

  /** Line i's time, ms since the epoch. */
  timestampMs(i: number): number {
    return this.times[i]!;
  }

  /** Bytes of line i's record after its offset delta: key, value and headers as Kafka writes them. */
  bodySize(i: number): number {
    return this.bodySizes[i]!;
  }

  writeBody(i: number, buf: Buffer, pos: number): number {
    const { keyField, headerFields, plain } = this.encoder;
    const line = this.lines[i]!;
    pos = put(buf, pos, keyField);
    pos = writeUvarint(buf, pos, zigzag(this.valueSizes[i]!));
    const value = this.values === null ? null : this.values[i]!;
    if (value === null && plain !== null && this.encoder.format === 'json') {
      pos = put(buf, pos, plain[line.source]);
      pos = put(buf, pos, line.line);
      return put(buf, pos, plain.tailHeaders[line.source]);
    }
    pos = put(buf, pos, value ?? line.line);
    return put(buf, pos, headerFields[line.source]);
  }

  /** The records of lines `indexes` (in that order), for one request. */
  request(indexes: readonly number[]): RecordSource {
    return {
      count: indexes.length,
      timestampMs: (i) => this.timestampMs(indexes[i]!),
      bodySize: (i) => this.bodySize(indexes[i]!),
      writeBody: (i, buf, pos) => this.writeBody(indexes[i]!, buf, pos),
    };
  }
}

/** The broker's error codes (Kafka's protocol names) found in a library error, its causes and aggregated errors. */
export function brokerErrors(err: unknown): Set<string> {
  const found = new Set<string>();
  const visit = (e: unknown, depth: number): void => {
    if (!(e instanceof Error) || depth > 6) return;
    const apiId = (e as { apiId?: unknown }).apiId;
    if (typeof apiId === 'string') found.add(apiId);
    if (e instanceof AggregateError) for (const inner of e.errors) visit(inner, depth + 1);
    visit(e.cause, depth + 1);
  };
  visit(err, 0);
  return found;
}

function libraryCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('PLT_KFK_') && code !== 'PLT_KFK_MULTIPLE') return code;
    if (e instanceof AggregateError) {
      const inner = e.errors.map(libraryCode).find((c) => c !== undefined);
      if (inner) return inner;
    }
  }
  return undefined;
}

const TOO_LARGE = ['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'];
const INVALID = ['INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TIMESTAMP'];
/** Node's codes for a broker certificate that did not verify: the CA option is the operator's to fix. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const warnings = {
  authorization: new RateLimitedWarning(
    "kafka: the cluster refuses this producer the topic (TOPIC_AUTHORIZATION_FAILED): its lines are dead-lettered (code unauthorized) until the producer's principal is granted WRITE on the topic (see acl)",
  ),
  unknownTopic: new RateLimitedWarning('kafka: the topic does not exist and the cluster does not create topics (UNKNOWN_TOPIC_OR_PARTITION); retrying until it is created'),
  authentication: new RateLimitedWarning('kafka: SASL authentication failed; retrying until the plugin settings or the cluster are fixed'),
  certificate: new RateLimitedWarning("kafka: the broker's TLS certificate did not verify; retrying until kafka-tls-ca-cert names the CA that signed it (or the certificate is fixed)"),
  handshake: new RateLimitedWarning('kafka: the broker ended the TLS handshake (a broker that requires a client certificate does so without kafka-tls-cert and kafka-tls-key); retrying'),
};

/** A TLS failure among an error and its causes: the broker's certificate, or the broker ending the handshake; with Node's words. */
function tlsFailure(err: unknown): { kind: 'certificate' | 'handshake'; text: string } | null {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): { kind: 'certificate' | 'handshake'; text: string } | null => {
    if (!(e instanceof Error) || depth > 6 || seen.has(e)) return null;
    seen.add(e);
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      if (CERTIFICATE_CODES.has(code)) return { kind: 'certificate', text: `${code}: ${e.message}` };
      // The broker's alert: a certificate it needs and was not sent (TLS 1.3 says so, 1.2 says handshake failure).
      if (/^ERR_SSL_(TLSV1\d?|SSLV3)_ALERT_(CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE)$/.test(code)) return { kind: 'handshake', text: code };
    }
    if (e instanceof AggregateError) {
      for (const inner of e.errors) {
        const found = visit(inner, depth + 1);
        if (found) return found;
      }
    }
    return visit(e.cause, depth + 1);
  };
  return visit(err, 0);
}

/**
 * A failed produce as the engine's outcome. A batch the broker calls too large or invalid is
 * not transient (the engine halves it down to the line, and rejects that one). A topic the
 * cluster refuses this producer (TOPIC_AUTHORIZATION_FAILED) is refused for every line of it,
 * whatever the batch: a non-transient SendError with the code `unauthorized`, which send()
 * turns into every line rejected (no halving: no line of it would pass), so a container's lines
 * do not wait behind an ACL forever while its store fills; the dead-letter file keeps them.
 * Retried with a warning instead: a topic that does not exist (UNKNOWN_TOPIC_OR_PARTITION: it
 * may be being created, by the cluster or the operator, and a partition is briefly unknown while
 * its leader moves) and SASL refused (the connection's login, not this topic or batch: every
 * container's lines would go to dead letters while a password rotates or a new SCRAM user
 * reaches every broker). Everything else (the network, TLS, a leader moved, not enough
 * replicas, timeouts) is transient. The message never holds the password.
 */
export function classifyError(err: unknown, topic: string, sasl: KafkaConfig['sasl'], socketError: Error | null = null): SendError {
  const codes = brokerErrors(err);
  const has = (names: readonly string[]): boolean => names.some((n) => codes.has(n));
  const authentication = libraryCode(err) === 'PLT_KFK_AUTHENTICATION' || codes.has('SASL_AUTHENTICATION_FAILED');
  const tls = tlsFailure(err) ?? (socketError && tlsFailure(socketError));
  // The library's text names connections that failed, not why: the why first, in plain words.
  const why =
    codes.has('TOPIC_AUTHORIZATION_FAILED') ? 'the cluster refuses this producer the topic: '
    : authentication && sasl ? `SASL authentication failed (${sasl.mechanism}, user '${sasl.username}'): `
    : tls?.kind === 'certificate' ? `the broker's TLS certificate did not verify (${tls.text}): `
    : tls?.kind === 'handshake' ? `the broker ended the TLS handshake (${tls.text}; does it require a client certificate, kafka-tls-cert and kafka-tls-key?): `
    : '';
  let message = `kafka: producing to '${topic}' failed: ${why}${String(err)}${codes.size > 0 ? ` (${[...codes].join(', ')})` : ''}`;
  if (sasl) message = message.replaceAll(sasl.password, '(not shown)');
  if (has(TOO_LARGE)) return new SendError(message, { transient: false, rejectCode: 'too_large' });
  if (has(INVALID)) return new SendError(message, { transient: false, rejectCode: 'invalid' });
  if (codes.has('TOPIC_AUTHORIZATION_FAILED')) {
    // The principal is the SASL user, or the client certificate's name, or User:ANONYMOUS.
    const principal = sasl ? `User:${sasl.username}` : "User:<the client certificate's name, or ANONYMOUS>";
    warnings.authorization.warn({ topic, acl: `kafka-acls --add --allow-principal '${principal}' --operation Write --topic '${topic}'` });
    return new SendError(message, { transient: false, rejectCode: 'unauthorized' });
  }
  if (codes.has('UNKNOWN_TOPIC_OR_PARTITION')) warnings.unknownTopic.warn({ topic });
  else if (authentication) warnings.authentication.warn(sasl ? { mechanism: sasl.mechanism, username: sasl.username } : {});
  else if (tls) warnings[tls.kind].warn({ error: tls.text });
  return new SendError(message, { transient: true });
}

/** A batch's outcome when the cluster refused its topic: every line rejected, none halved. */
export function refusedTopic(err: unknown, lines: readonly number[]): SendResult | null {
  if (!(err instanceof SendError) || err.rejectCode !== 'unauthorized') return null;
  return { rejected: lines.map((index) => ({ index, code: 'unauthorized', reason: err.message })) };
}

// The library is loaded at the first send, not when the plugin starts.
type KafkaLibrary = typeof import('@platformatic/kafka');
let library: Promise<KafkaLibrary> | null = null;
const loadLibrary = () => (library ??= import('@platformatic/kafka'));

/** Retries the library makes within one send: with the same sequence numbers, so the broker drops copies. */
const LIBRARY_RETRIES = 3;
const LIBRARY_RETRY_DELAY_MS = 250;
const CONNECT_TIMEOUT_MS = 10_000;
/** Per request, and the brokers' own produce timeout: within the engine's 60 s per send. */
const REQUEST_TIMEOUT_MS = 30_000;

export class KafkaBackend implements Backend {
  private readonly config: KafkaConfig;
  private readonly encoder: KafkaEncoder;
  private producer: RecordProducer | null = null;
  /**
   * The last error of a broker connection's socket since the last failed send. The library fails
   * the requests of a connection the broker closed with "Connection closed" alone; why (a TLS
   * alert: the broker requires a client certificate) comes only as the connection's error event.
   */
  private socketError: Error | null = null;
  /** Keyless records: the partition of the next send (the library takes it modulo the partitions). */
  private nextPartition = randomInt(1 << 20);
  /** Keyed records: the key's hash, Java's murmur2, so Java clients and Kafka Streams pick the same partition. */
  private keyPartition: number | undefined;

  constructor(config: KafkaConfig, container: ContainerContext) {
    this.config = config;
    this.encoder = new KafkaEncoder(config, container);
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (lines.length === 0) return DELIVERED;
    const { requests, tooLarge } = this.encoder.records(lines).cut(this.config.messageMaxBytes);
    if (requests.length === 0) return { rejected: tooLarge };
    const partition = this.encoder.key === undefined ? this.nextPartition++ : undefined;
    const result = await sendInOrder(
      requests.map((r) => ({ lines: r.lines, payload: r.records })),
      async (request) => {
        try {
          await this.produce(request.payload, partition, signal);
        } catch (err) {
          const refused = refusedTopic(err, request.lines);
          if (refused) return refused;
          throw err;
        }
        return DELIVERED;
      },
    );
    return tooLarge.length > 0 ? { ...result, rejected: [...tooLarge, ...(result.rejected ?? [])] } : result;
  }

  private async produce(records: RecordSource, partition: number | undefined, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw abortError(signal);
    const producer = await this.connect();
    const { topic } = this.encoder;
    // The library takes a partition modulo the topic's partitions, as it does its partitioner's
    // hash: the key's hash is computed once, not per record.
    const messages = prepareMessages(records, topic, partition ?? this.keyPartition!);
    const sent = producer.send({ messages, ...(this.config.acks === '1' ? { acks: 1 } : {}) });
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([sent, aborted]);
    } catch (err) {
      if (signal.aborted) {
        // The library cannot cancel a send: its connections go, so nothing of this one
        // lands after a later send; the engine sends the batch again.
        sent.catch(() => {});
        await this.drop();
        throw abortError(signal);
      }
      throw classifyError(err, topic, this.config.sasl, this.takeSocketError());
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }

  private async connect(): Promise<RecordProducer> {
    if (this.producer) return this.producer;
    const lib = await loadLibrary();
    const { config } = this;
    if (this.encoder.key !== undefined) this.keyPartition = lib.compatibilityPartitioner({ topic: this.encoder.topic }, this.encoder.key);
    const options: ProducerOptions<Buffer, Buffer, Buffer, Buffer> = {
      clientId: config.clientId,
      bootstrapBrokers: config.brokers,
      compression: config.compression,
      autocreateTopics: true,
      retries: LIBRARY_RETRIES,
      retryDelay: LIBRARY_RETRY_DELAY_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      timeout: REQUEST_TIMEOUT_MS,
      ...(config.acks === 'all'
        ? // InitProducerId for a new producer: id -1, epoch -1 (the library's 0/0 names an existing one).
          { idempotent: true, producerId: -1n, producerEpoch: -1 }
        : { idempotent: false }),
      ...(config.tls ? { tls: config.tls } : {}),
      ...(config.sasl ? { sasl: { ...config.sasl } } : {}),
    };
    this.producer = createProducer(lib, options);
    this.producer.on('client:broker:connect', ({ connection }: { connection: import('node:events').EventEmitter }) =>
      connection.on('error', (err: Error) => void (this.socketError = err)),
    );
    return this.producer;
  }

  private takeSocketError(): Error | null {
    const err = this.socketError;
    this.socketError = null;
    return err;
  }

  private async drop(): Promise<void> {
    const producer = this.producer;
    this.producer = null;
    if (producer) await producer.close(true).catch(() => {});
  }

  async close(): Promise<void> {
    await this.drop();
  }
}

export const kafkaFactory: BackendFactory<KafkaConfig, typeof KAFKA_OPTIONS, typeof KAFKA_SETTINGS> = {
  name: 'kafka',
  options: KAFKA_OPTIONS,
  settings: KAFKA_SETTINGS,
  configure: configureKafka,
  batchLimits(config: KafkaConfig): BatchLimits {
    // Several produce requests per send when the lines are many: fewer round trips per line.
    return { maxLines: 20_000, maxBytes: Math.max(4 << 20, config.messageMaxBytes) };
  },
  create(config: KafkaConfig, container: ContainerContext): Backend {
    return new KafkaBackend(config, container);
  },
};
