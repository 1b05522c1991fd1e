// Google Cloud Logging with the entries Docker's gcplogs driver writes (moby
// daemon/logger/gcplogs): log `gcplogs-docker-driver`, a gce_instance resource, and a
// jsonPayload of instance, container and message, plus a severity from the stream, which
// Docker's driver leaves out. Unlike Docker's driver nothing connects at create: project
// discovery, credentials and every call happen in send, so an unreachable API only
// delays delivery (the engine retries) instead of failing `docker run`.
import { randomBytes } from 'node:crypto';
import type { Entry, protos as Protos, v2 } from '@google-cloud/logging';
import { InvalidOptionError } from '../options/values.ts';
import { defineOptions, type OptionValues } from '../options/schema.ts';
import { type Backend, type BackendFactory, type BatchLimits, DELIVERED, type Rejection, type SendResult, SendError, abortError, transientError } from '../delivery/backend.ts';
import { type ContainerContext } from '../shaping/container.ts';
import { type OutgoingLine } from '../shaping/line.ts';
import { parseHostPort, shownAddress } from '../transport/address.ts';
import { type Request, cutRequests, sendInOrder, utf8Pieces } from '../transport/requests.ts';

export interface GcpInstance {
  zone: string;
  name: string;
  id: string;
}

export interface GcpEndpoint {
  host: string;
  port: number;
  /** Plaintext gRPC, for emulators and tests on loopback: no TLS, so no credentials are sent. */
  plaintext: boolean;
}

export interface GcplogsConfig {
  /** gcp-project; null: discovered at send time (metadata server, GOOGLE_CLOUD_PROJECT, key file). */
  project: string | null;
  logCommand: boolean;
  /** From gcp-meta-*; used, as by Docker, only when no GCE metadata server answers. */
  instance: GcpInstance | null;
  /** logship's own gcp-endpoint; null: Cloud Logging's public endpoint. */
  endpoint: GcpEndpoint | null;
}

export const LOG_NAME = 'gcplogs-docker-driver';

/**
 * Cloud Logging's limits (cloud.google.com/logging/quotas): 10 MB per entries.write request
 * and about 256 KiB per LogEntry, counted on internal sizes. A line's message is cut into
 * pieces of at most this many bytes, leaving a quarter of the entry for the container's
 * metadata; pieces are linked by LogEntry.split, never dropped or truncated.
 */
export const MAX_MESSAGE_BYTES = 192 * 1024;
/**
 * Line bytes the engine batches; a batch whose entries weigh more (the container's keys and
 * attributes, which every entry carries, or parse-json fields) goes as several requests.
 */
const MAX_BATCH_BYTES = 4 << 20;
/** What the engine counts per line against MAX_BATCH_BYTES; the requests are sized on what each entry really carries. */
const ENTRY_OVERHEAD_BYTES = 1024;
/** The message's own framing in an entry (its key, the Value and the varints), and a split's fields. */
const MESSAGE_FRAMING_BYTES = 64;
/**
 * What parse-json fields weigh at most for each byte of their line: a Struct can take 5.5
 * times its JSON (`0,` in a list is two bytes of text and an eleven-byte Value).
 */
const FIELDS_BYTES_PER_LINE_BYTE = 6;
/** The longest line whose fields go with it: fields and message stay within one LogEntry. */
export const MAX_FIELDS_LINE_BYTES = 32 * 1024;
/** Estimated bytes a write request may carry: the API takes 10 MB, with room for what the estimate misses. */
const MAX_REQUEST_BYTES = 8_000_000;
/**
 * Entries per write request at most: what Google's own clients bundle (1000). A batch holds as
 * many lines; the rare split line's extra entries push its tail into another request
 * (requests()), rather than every batch being halved for them.
 */
const MAX_REQUEST_ENTRIES = 1000;
const MAX_BATCH_LINES = MAX_REQUEST_ENTRIES;

/** The library's own retries are off: the engine's backoff governs; this bounds one attempt. */
const CALL_TIMEOUT_MS = 50_000;

/** The gRPC status codes used here (fixed by the gRPC protocol), without loading gRPC to name them. */
const GRPC_STATUS = { INVALID_ARGUMENT: 3, OUT_OF_RANGE: 11 } as const;

/**
 * The codes that say the request or entry itself is bad: an entry with one is rejected, a
 * request failing with one is sent in halves by the engine to find the entry. Any other
 * code (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL, and also a permission,
 * project or credential error, which fixing the configuration must not lose) is transient.
 */
const BAD_REQUEST_CODES = new Set<number>([GRPC_STATUS.INVALID_ARGUMENT, GRPC_STATUS.OUT_OF_RANGE]);

export const GCPLOGS_OPTIONS = defineOptions([
  // Given empty, it is refused (Docker would look it up; an empty value is a mistake here).
  { key: 'gcp-project', type: 'custom', empty: 'value', accepts: 'a project id', parse: parseProject, defaultDoc: "the credentials' key file's `project_id`, else the metadata server's project", doc: "the project to write to (a project id: lower-case letters, digits, hyphens)" },
  { key: 'gcp-log-cmd', type: 'bool', default: 'false', defaultDoc: "`false`", doc: "`true` adds the container's command (entrypoint and arguments) as `container.command`" },
  { key: 'gcp-meta-zone', type: 'string', accepts: 'a zone name', defaultDoc: "none", doc: "the instance's zone, name and id off GCE; with any of them set the resource is `gce_instance`. On GCE the metadata server's values win, as in Docker" },
  { key: 'gcp-meta-name', type: 'string', accepts: 'an instance name', defaultDoc: "none", doc: "the instance's zone, name and id off GCE; with any of them set the resource is `gce_instance`. On GCE the metadata server's values win, as in Docker" },
  { key: 'gcp-meta-id', type: 'string', accepts: 'an instance id', defaultDoc: "none", doc: "the instance's zone, name and id off GCE; with any of them set the resource is `gce_instance`. On GCE the metadata server's values win, as in Docker" },
  { key: 'gcp-endpoint', type: 'custom', accepts: '`host:port` (gRPC over TLS) or `http://host:port` (plaintext gRPC)', parse: parseEndpoint, defaultDoc: "`logging.googleapis.com:443`", doc: "(logship only) `host:port`: gRPC over TLS (system CAs) with the credentials below, for a private endpoint such as `private.googleapis.com:443`; `http://host:port`: **plaintext** gRPC **without credentials**, for an emulator or a test endpoint on loopback (gRPC does not attach tokens to a plaintext channel, and a token must not travel in the clear)" },
]);

export function configureGcplogs(values: OptionValues<typeof GCPLOGS_OPTIONS>): GcplogsConfig {
  const zone = values['gcp-meta-zone'] ?? '';
  const name = values['gcp-meta-name'] ?? '';
  const id = values['gcp-meta-id'] ?? '';
  return {
    project: values['gcp-project'] ?? null,
    logCommand: values['gcp-log-cmd'],
    instance: zone || name || id ? { zone, name, id } : null,
    endpoint: values['gcp-endpoint'] ?? null,
  };
}

function parseProject(project: string): string {
  if (!/^[a-z][a-z0-9.:-]{0,127}$/.test(project)) {
    throw new InvalidOptionError(
      `invalid value '${project}' for log opt 'gcp-project': expected a project id (lower-case letters, digits and hyphens, starting with a letter)`,
    );
  }
  return project;
}

function parseEndpoint(value: string): GcpEndpoint {
  const plaintext = value.startsWith('http://');
  const hostPort = parseHostPort(plaintext ? value.slice('http://'.length) : value, plaintext ? 80 : 443);
  if (!hostPort || hostPort.host === '') {
    throw new InvalidOptionError(
      `invalid value ${shownAddress(value)} for log opt 'gcp-endpoint': expected host:port (gRPC over TLS) or http://host:port (plaintext gRPC)`,
    );
  }
  return { ...hostPort, plaintext };
}

type Json = Record<string, unknown>;

/** The jsonPayload keys of one container, as Docker's dockerLogEntry marshals them (empty ones omitted). */
export function containerPayload(container: ContainerContext, logCommand: boolean): Json {
  const info: Json = omitEmpty({
    name: '/' + container.name,
    id: container.id,
    imageName: container.imageName,
    imageId: container.imageId,
    created: container.created,
    command: logCommand ? container.command : '',
  });
  if (container.attributes.length > 0) info.metadata = Object.fromEntries(container.attributes);
  return info;
}

function omitEmpty(record: Record<string, string>): Json {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== ''));
}

export interface Target {
  logName: string;
  resource: { type: string; labels: Record<string, string> };
  /** The jsonPayload's `instance`, or null when Docker would leave it out. */
  instance: Json | null;
}

/** Docker's choice: the metadata server's instance on GCE, else gcp-meta-*, else the project. */
export function target(project: string, instance: GcpInstance | null): Target {
  const logName = `projects/${project}/logs/${LOG_NAME}`;
  if (!instance) return { logName, resource: { type: 'global', labels: { project_id: project } }, instance: null };
  return {
    logName,
    resource: { type: 'gce_instance', labels: { instance_id: instance.id, zone: instance.zone } },
    instance: omitEmpty({ zone: instance.zone, name: instance.name, id: instance.id }),
  };
}

/** Unix nanoseconds as a protobuf Timestamp. */
function timestamp(timeNano: bigint): { seconds: number; nanos: number } {
  return { seconds: Number(timeNano / 1_000_000_000n), nanos: Number(timeNano % 1_000_000_000n) };
}

/** Builds the LogEntries of one container's lines (with the library's Entry); the fixed keys are built once. */
export class EntryEncoder {
  private readonly container: Json;
  private readonly instance: Json | null;
  private readonly Entry: typeof Entry;
  /**
   * What every entry of this container weighs on the wire without its message: the
   * container's keys and attributes, the instance, time, severity, insertId. Measured once.
   */
  readonly entryBytes: number;

  constructor(container: ContainerContext, logCommand: boolean, instance: Json | null, entryClass: typeof Entry, protos: typeof Protos) {
    this.container = containerPayload(container, logCommand);
    this.instance = instance;
    this.Entry = entryClass;
    const LogEntry = protos.google.logging.v2.LogEntry;
    const empty = this.encode({ source: 'stdout', timeNano: 0n, line: Buffer.alloc(0) })[0]!;
    this.entryBytes = LogEntry.encode(LogEntry.fromObject(empty)).finish().length;
  }

  /** The entries a line becomes: more than one past MAX_MESSAGE_BYTES. */
  entryCount(line: OutgoingLine): number {
    return line.line.length <= MAX_MESSAGE_BYTES ? 1 : utf8Pieces(line.line, MAX_MESSAGE_BYTES).length;
  }

  /** At most what a line's entries weigh in a write request. */
  requestBytes(line: OutgoingLine): number {
    const entries = this.entryCount(line);
    const fields = withFields(line) ? FIELDS_BYTES_PER_LINE_BYTE * line.line.length : 0;
    return line.line.length + fields + entries * (this.entryBytes + MESSAGE_FRAMING_BYTES);
  }

  /** One entry per line, more for a line over MAX_MESSAGE_BYTES (linked by LogEntry.split). */
  encode(line: OutgoingLine): object[] {
    const meta = { timestamp: timestamp(line.timeNano), severity: line.source === 'stderr' ? 'ERROR' : 'INFO' };
    const pieces = utf8Pieces(line.line, MAX_MESSAGE_BYTES);
    if (pieces.length === 1) return [this.entry(meta, line.line.toString('utf8'), withFields(line) ? line.fields : undefined)];
    const uid = randomBytes(16).toString('hex');
    return pieces.map((piece, index) =>
      this.entry({ ...meta, split: { uid, index, totalSplits: pieces.length } }, piece.toString('utf8'), undefined),
    );
  }

  private entry(meta: object, message: string, fields: Readonly<Json> | undefined): object {
    // Docker's keys win a clash with the line's own: the line itself still goes as `message`.
    const payload: Json = { ...fields };
    if (this.instance) payload.instance = this.instance;
    payload.container = this.container;
    if (message !== '') payload.message = message;
    return new this.Entry(meta, payload).toJSON();
  }
}

/** Past MAX_FIELDS_LINE_BYTES the message alone carries a parsed line. */
function withFields(line: OutgoingLine): boolean {
  return line.fields !== undefined && line.line.length <= MAX_FIELDS_LINE_BYTES;
}

interface GrpcError extends Error {
  code?: number;
  metadata?: { get(key: string): Array<string | Buffer> };
}

const PARTIAL_ERRORS_TYPE = 'type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors';

/**
 * The per-entry errors of a failed partial-success write (by entry index), or null when
 * there are none. Read from the status details here: gax skips a detail type it lacks.
 */
export function partialErrors(err: GrpcError, protos: typeof Protos): Map<number, { code: number; message: string }> | null {
  const raw = err.metadata?.get('grpc-status-details-bin')[0];
  if (!Buffer.isBuffer(raw)) return null;
  const detail = protos.google.rpc.Status.decode(raw).details.find((d) => d.type_url === PARTIAL_ERRORS_TYPE);
  if (!(detail?.value instanceof Uint8Array)) return null;
  const decoded = protos.google.logging.v2.WriteLogEntriesPartialErrors.decode(detail.value);
  const errors = new Map<number, { code: number; message: string }>();
  for (const [index, status] of Object.entries(decoded.logEntryErrors)) errors.set(Number(index), { code: status.code ?? 0, message: status.message ?? '' });
  return errors.size > 0 ? errors : null;
}

/** A failed request as a SendError: transient unless its code says the request is bad. */
function requestFailure(err: GrpcError): SendError {
  const code = err.code;
  return new SendError(`gcplogs: entries.write failed: ${err.message}`, { transient: code === undefined || !BAD_REQUEST_CODES.has(code), cause: err });
}

// The Google libraries (gax, gRPC, the protos) are loaded at the first send, not when the
// plugin starts: their memory is not for hosts that never ship to Cloud Logging.
interface Google {
  logging: typeof import('@google-cloud/logging');
  metadata: typeof import('gcp-metadata');
  gax: typeof import('google-gax');
}
let google: Promise<Google> | null = null;

function loadGoogle(): Promise<Google> {
  google ??= Promise.all([import('@google-cloud/logging'), import('gcp-metadata'), import('google-gax')]).then(([logging, metadata, gax]) => ({
    logging,
    metadata,
    gax,
  }));
  return google;
}

/** The GCE instance, looked up once per process as Docker does; null off GCE. */
let gceInstance: Promise<GcpInstance | null> | null = null;

function lookupGceInstance(gcpMetadata: Google['metadata']): Promise<GcpInstance | null> {
  gceInstance ??= (async () => {
    if (!(await gcpMetadata.isAvailable())) return null;
    const [zone, name, id] = await Promise.all(['zone', 'name', 'id'].map((p) => gcpMetadata.instance(p)));
    // The server's zone is `projects/NUMBER/zones/ZONE`; Docker's metadata client keeps the last part.
    return { zone: String(zone).split('/').pop()!, name: String(name), id: String(id) };
  })().catch((err: unknown) => {
    gceInstance = null;
    throw err;
  });
  return gceInstance;
}

interface Resolved {
  target: Target;
  encoder: EntryEncoder;
  protos: typeof Protos;
}

class GcplogsBackend implements Backend {
  private readonly config: GcplogsConfig;
  private readonly container: ContainerContext;
  /** Made at the first send, with the libraries; constructing it opens nothing (the channel and credentials come at the first call). */
  private client: InstanceType<typeof v2.LoggingServiceV2Client> | null = null;
  private resolved: Resolved | null = null;

  constructor(config: GcplogsConfig, container: ContainerContext) {
    this.config = config;
    this.container = container;
  }

  private async resolve(): Promise<Resolved> {
    if (this.resolved) return this.resolved;
    const { logging, metadata, gax } = await loadGoogle();
    const endpoint = this.config.endpoint;
    this.client ??= new logging.v2.LoggingServiceV2Client({
      ...(this.config.project ? { projectId: this.config.project } : {}),
      ...(endpoint ? { apiEndpoint: endpoint.host, port: endpoint.port } : {}),
      ...(endpoint?.plaintext ? { sslCreds: gax.grpc.credentials.createInsecure() } : {}),
    });
    const instance = (await lookupGceInstance(metadata)) ?? this.config.instance;
    const project = this.config.project ?? (await this.discoverProject(this.client));
    const resolvedTarget = target(project, instance);
    const encoder = new EntryEncoder(this.container, this.config.logCommand, resolvedTarget.instance, logging.Entry, logging.protos);
    this.resolved = { target: resolvedTarget, encoder, protos: logging.protos };
    return this.resolved;
  }

  private async discoverProject(client: InstanceType<typeof v2.LoggingServiceV2Client>): Promise<string> {
    try {
      return await client.getProjectId();
    } catch {
      throw new Error(
        "log opt 'gcp-project' is not set and no GCE metadata server answered with a project " +
          '(nor GOOGLE_CLOUD_PROJECT or a key file with a project_id): set --log-opt gcp-project=PROJECT',
      );
    }
  }

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) throw abortError(signal);
    let resolved: Resolved;
    try {
      // The metadata server and the auth library take no signal: a lookup left behind still caches its answer.
      resolved = await abortable(this.resolve(), signal);
    } catch (err) {
      // The libraries, the project, the instance: none of it is the lines'.
      throw transientError(err);
    }
    return sendInOrder(requests(lines, resolved.encoder), (request) => this.write(resolved, lines, request.lines, signal));
  }

  /** One entries.write of these lines of the batch; entries the API refuses are their lines' rejections. */
  private async write({ target: t, encoder, protos }: Resolved, batch: readonly OutgoingLine[], lines: readonly number[], signal: AbortSignal): Promise<SendResult> {
    const entries: object[] = [];
    const lineOf: number[] = [];
    // Entries in time order, equal times in the lines' order: a multiline event takes its
    // first line's time, so it can close after a later line of the other stream.
    const ordered = [...lines].sort((a, b) => (batch[a]!.timeNano < batch[b]!.timeNano ? -1 : batch[a]!.timeNano > batch[b]!.timeNano ? 1 : 0));
    for (const index of ordered) {
      let encoded: object[];
      try {
        encoded = encoder.encode(batch[index]!);
      } catch (err) {
        throw new SendError(`gcplogs: encoding an entry failed: ${(err as Error).message}`, { transient: false, rejectCode: 'encode', cause: err });
      }
      for (const entry of encoded) {
        entries.push(entry);
        lineOf.push(index);
      }
    }
    const request = { logName: t.logName, resource: t.resource, entries, partialSuccess: true };
    try {
      await abortable(
        this.client!.writeLogEntries(request, { timeout: CALL_TIMEOUT_MS, retry: { retryCodes: [] } }),
        signal,
      );
      return DELIVERED;
    } catch (err) {
      if (signal.aborted) throw abortError(signal);
      const perEntry = partialErrors(err as GrpcError, protos);
      // Only per-entry errors are the entries' own; any other failure is the request's.
      if (!perEntry) throw requestFailure(err as GrpcError);
      const rejected: Rejection[] = [];
      const again = new Set<number>();
      for (const [entry, { code, message }] of perEntry) {
        const line = lineOf[entry];
        if (line === undefined) continue;
        if (BAD_REQUEST_CODES.has(code)) rejected.push({ index: line, code: 'invalid', reason: `Cloud Logging refused the entry (code ${code}): ${message.slice(0, 300)}` });
        else again.add(line);
      }
      if (again.size === 0) return { rejected };
      return { rejected, retry: { lines: [...again].sort((a, b) => a - b), reason: `Cloud Logging refused ${again.size} entries for now: ${(err as Error).message}` } };
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.close();
  }
}

/**
 * The batch cut into write requests of at most MAX_REQUEST_BYTES and MAX_REQUEST_ENTRIES, in
 * order, each line's entries weighed from what they carry: one request unless the container's
 * keys, parse-json fields or split lines make the lines heavy.
 */
function requests(lines: readonly OutgoingLine[], encoder: EntryEncoder): Request<null>[] {
  const limits = { maxBytes: MAX_REQUEST_BYTES, maxItems: MAX_REQUEST_ENTRIES, count: (index: number) => encoder.entryCount(lines[index]!) };
  return cutRequests(lines, limits, (line) => encoder.requestBytes(line)).map((group) => ({ lines: group, payload: null }));
}

/** Rejects as soon as `signal` aborts; the abandoned call ends by its own timeout. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export const gcplogsFactory: BackendFactory<GcplogsConfig, typeof GCPLOGS_OPTIONS> = {
  name: 'gcplogs',
  options: GCPLOGS_OPTIONS,
  configure: configureGcplogs,
  batchLimits: (): BatchLimits => ({ maxLines: MAX_BATCH_LINES, maxBytes: MAX_BATCH_BYTES, lineOverheadBytes: ENTRY_OVERHEAD_BYTES }),
  create(config: GcplogsConfig, container: ContainerContext): Backend {
    return new GcplogsBackend(config, container);
  },
};
