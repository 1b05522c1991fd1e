// Google Cloud Logging with the entries Docker's gcplogs driver writes (moby
// daemon/logger/gcplogs): log `gcplogs-docker-driver`, a gce_instance resource, and a
// jsonPayload of instance, container and message, plus a severity from the stream, which
// Docker's driver leaves out. Unlike Docker's driver nothing connects at create: project
// discovery, credentials and every call happen in send, so an unreachable API only
// delays delivery (the engine retries) instead of failing `docker run`.
import { randomBytes } from 'node:crypto';
import type { Entry, protos as Protos, v2 } from '@google-cloud/logging';
import { InvalidOptionError, parseBool } from '../lifecycle/options.ts';
import { backendDropped } from '../observability/metrics.ts';
import { RateLimitedWarning } from '../observability/log.ts';
import type { Backend, BackendFactory, BatchLimits, ContainerContext, OutgoingLine } from '../delivery/backend.ts';
import { BatchParts } from './batch-parts.ts';
import { abortError, parseHostPort, shownAddress } from './connection.ts';

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

const OPTION_KEYS = ['gcp-project', 'gcp-log-cmd', 'gcp-meta-zone', 'gcp-meta-name', 'gcp-meta-id', 'gcp-endpoint'] as const;

export const LOG_NAME = 'gcplogs-docker-driver';

/**
 * Cloud Logging's limits (cloud.google.com/logging/quotas): 10 MB per entries.write request
 * and about 256 KiB per LogEntry, counted on internal sizes. A line's message is cut into
 * pieces of at most this many bytes, leaving a quarter of the entry for the container's
 * metadata; pieces are linked by LogEntry.split, never dropped or truncated.
 */
export const MAX_MESSAGE_BYTES = 192 * 1024;
/** Line bytes the engine batches; a batch whose parse-json fields weigh more goes as several requests. */
const MAX_BATCH_BYTES = 4 << 20;
/** What an entry weighs besides its message: instance, container, timestamp, severity, insertId. */
const ENTRY_OVERHEAD_BYTES = 1024;
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
 * Lines per batch. The API documents no count per request; Google's own clients bundle 1000
 * entries, and half that leaves room for the extra entries of split lines.
 */
const MAX_BATCH_LINES = 500;

/** The library's own retries are off: the engine's backoff governs; this bounds one attempt. */
const CALL_TIMEOUT_MS = 50_000;

/** The gRPC status codes used here (fixed by the gRPC protocol), without loading gRPC to name them. */
const GRPC_STATUS = { CANCELLED: 1, DEADLINE_EXCEEDED: 4, RESOURCE_EXHAUSTED: 8, ABORTED: 10, INTERNAL: 13, UNAVAILABLE: 14 } as const;

/**
 * Per-entry codes that say "try again" rather than "this entry is bad": with one of them the
 * batch is retried whole (the engine backs off), as is any failure of the request itself.
 */
const RETRYABLE_CODES = new Set<number>([
  GRPC_STATUS.UNAVAILABLE,
  GRPC_STATUS.RESOURCE_EXHAUSTED,
  GRPC_STATUS.DEADLINE_EXCEEDED,
  GRPC_STATUS.INTERNAL,
  GRPC_STATUS.ABORTED,
  GRPC_STATUS.CANCELLED,
]);

export function parseGcplogsOptions(opts: Readonly<Record<string, string>>): GcplogsConfig {
  const project = opts['gcp-project'] ?? '';
  if ('gcp-project' in opts && !/^[a-z][a-z0-9.:-]{0,127}$/.test(project)) {
    throw new InvalidOptionError(
      `invalid value '${project}' for log opt 'gcp-project': expected a project id (lower-case letters, digits and hyphens, starting with a letter)`,
    );
  }
  const zone = opts['gcp-meta-zone'] ?? '';
  const name = opts['gcp-meta-name'] ?? '';
  const id = opts['gcp-meta-id'] ?? '';
  return {
    project: project === '' ? null : project,
    logCommand: opts['gcp-log-cmd'] ? parseBool('gcp-log-cmd', opts['gcp-log-cmd']) : false,
    instance: zone || name || id ? { zone, name, id } : null,
    endpoint: opts['gcp-endpoint'] ? parseEndpoint(opts['gcp-endpoint']) : null,
  };
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

/** Cuts at most `max` bytes, backing off so no UTF-8 sequence is split across pieces. */
export function utf8Pieces(bytes: Buffer, max: number): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  while (bytes.length - start > max) {
    let end = start + max;
    for (let back = 0; back < 3 && (bytes[end]! & 0xc0) === 0x80; back++) end--;
    pieces.push(bytes.subarray(start, end));
    start = end;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

/** Builds the LogEntries of one container's lines (with the library's Entry); the fixed keys are built once. */
export class EntryEncoder {
  private readonly container: Json;
  private readonly instance: Json | null;
  private readonly Entry: typeof Entry;

  constructor(container: ContainerContext, logCommand: boolean, instance: Json | null, entryClass: typeof Entry) {
    this.container = containerPayload(container, logCommand);
    this.instance = instance;
    this.Entry = entryClass;
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

/** At most what the line's entries weigh in a write request. */
function requestBytes(line: OutgoingLine): number {
  const entries = Math.max(1, Math.ceil(line.line.length / MAX_MESSAGE_BYTES));
  return line.line.length * (withFields(line) ? 1 + FIELDS_BYTES_PER_LINE_BYTE : 1) + entries * ENTRY_OVERHEAD_BYTES;
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
export function partialErrors(err: GrpcError, protos: typeof Protos): Map<number, number> | null {
  const raw = err.metadata?.get('grpc-status-details-bin')[0];
  if (!Buffer.isBuffer(raw)) return null;
  const detail = protos.google.rpc.Status.decode(raw).details.find((d) => d.type_url === PARTIAL_ERRORS_TYPE);
  if (!(detail?.value instanceof Uint8Array)) return null;
  const decoded = protos.google.logging.v2.WriteLogEntriesPartialErrors.decode(detail.value);
  const codes = new Map<number, number>();
  for (const [index, status] of Object.entries(decoded.logEntryErrors)) codes.set(Number(index), status.code ?? 0);
  return codes.size > 0 ? codes : null;
}

const rejectedWarning = new RateLimitedWarning('gcplogs: Cloud Logging rejected entries; their lines are dropped');

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

class GcplogsBackend implements Backend {
  private readonly config: GcplogsConfig;
  private readonly container: ContainerContext;
  /** Made at the first send, with the libraries; constructing it opens nothing (the channel and credentials come at the first call). */
  private client: InstanceType<typeof v2.LoggingServiceV2Client> | null = null;
  private resolved: { target: Target; encoder: EntryEncoder; protos: typeof Protos } | null = null;
  private readonly parts = new BatchParts();

  constructor(config: GcplogsConfig, container: ContainerContext) {
    this.config = config;
    this.container = container;
  }

  private async resolve(): Promise<{ target: Target; encoder: EntryEncoder; protos: typeof Protos }> {
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
    const encoder = new EntryEncoder(this.container, this.config.logCommand, resolvedTarget.instance, logging.Entry);
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

  async send(lines: readonly OutgoingLine[], signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    // The metadata server and the auth library take no signal: a lookup left behind still caches its answer.
    const resolved = await abortable(this.resolve(), signal);
    await this.parts.send(lines, requests(lines), (request) => this.write(resolved, request, signal));
  }

  /** One entries.write of these lines; per-entry rejections are counted, anything else rejects. */
  private async write(
    { target: t, encoder, protos }: { target: Target; encoder: EntryEncoder; protos: typeof Protos },
    lines: readonly OutgoingLine[],
    signal: AbortSignal,
  ): Promise<void> {
    const entries: object[] = [];
    const lineOf: number[] = [];
    // Entries in time order, equal times in the lines' order: a multiline event takes its
    // first line's time, so it can close after a later line of the other stream.
    const ordered = [...lines].sort((a, b) => (a.timeNano < b.timeNano ? -1 : a.timeNano > b.timeNano ? 1 : 0));
    ordered.forEach((line, i) => {
      for (const entry of encoder.encode(line)) {
        entries.push(entry);
        lineOf.push(i);
      }
    });
    const request = { logName: t.logName, resource: t.resource, entries, partialSuccess: true };
    try {
      await abortable(
        this.client!.writeLogEntries(request, { timeout: CALL_TIMEOUT_MS, retry: { retryCodes: [] } }),
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw abortError(signal);
      const rejected = partialErrors(err as GrpcError, protos);
      // Only per-entry errors are the entries' own; any other failure (IAM, project, quota,
      // outage) is the request's and is retried, so a fixed configuration loses nothing.
      if (!rejected || [...rejected.values()].some((code) => RETRYABLE_CODES.has(code))) throw err;
      const droppedLines = new Set([...rejected.keys()].map((index) => lineOf[index]));
      backendDropped.inc({ backend: 'gcplogs', reason: 'rejected' }, droppedLines.size);
      rejectedWarning.warn({
        container: this.container.id.slice(0, 12),
        lines: droppedLines.size,
        error: (err as Error).message,
      });
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}

/**
 * The batch cut into write requests of at most MAX_REQUEST_BYTES by estimate, in order: one
 * unless parse-json fields make it heavier.
 */
function requests(lines: readonly OutgoingLine[]): Array<readonly OutgoingLine[]> {
  const out: Array<readonly OutgoingLine[]> = [];
  let start = 0;
  let bytes = 0;
  lines.forEach((line, i) => {
    const size = requestBytes(line);
    if (i > start && bytes + size > MAX_REQUEST_BYTES) {
      out.push(lines.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
  });
  if (start < lines.length) out.push(start === 0 ? lines : lines.slice(start));
  return out;
}

/** Rejects as soon as `signal` aborts; the abandoned call ends by its own timeout. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export const gcplogsFactory: BackendFactory<GcplogsConfig> = {
  name: 'gcplogs',
  optionKeys: OPTION_KEYS,
  parseOptions: parseGcplogsOptions,
  batchLimits: (): BatchLimits => ({ maxLines: MAX_BATCH_LINES, maxBytes: MAX_BATCH_BYTES, lineOverheadBytes: ENTRY_OVERHEAD_BYTES }),
  create(config: GcplogsConfig, container: ContainerContext): Backend {
    return new GcplogsBackend(config, container);
  },
};
