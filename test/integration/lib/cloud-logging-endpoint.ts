// A Cloud Logging endpoint for the gcplogs tests: google.logging.v2.LoggingServiceV2 over
// gRPC, loaded from the protos shipped in @google-cloud/logging-api and google-gax
// (backends.md §4). It records every WriteLogEntries, enforces the limits logship promises
// to stay within (request size, entries per request, LogEntry size, entries in time order),
// recording each violation so a test fails on any, and injects throttling, 5xx-like errors,
// per-entry rejections and a full outage (the port closed).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

export const MAX_REQUEST_BYTES = 10_000_000;
export const MAX_ENTRY_BYTES = 256 * 1024;
export const MAX_ENTRIES = 1000;

const require = createRequire(import.meta.url);
const LOGGING_API = path.dirname(require.resolve('@google-cloud/logging-api/package.json'));

/** google-gax's protos (google/api, google/rpc, google/protobuf): its package.json is not exported, so found by path. */
function gaxProtos(): string {
  const candidates = [path.join(LOGGING_API, 'node_modules/google-gax'), path.resolve(LOGGING_API, '../../google-gax')];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'build/protos/google/api/client.proto')));
  if (!found) throw new Error(`google-gax protos not found near ${LOGGING_API}`);
  return path.join(found, 'build/protos');
}

const INCLUDE_DIRS = [path.join(LOGGING_API, 'build/protos'), gaxProtos()];

const definition = protoLoader.loadSync('google/logging/v2/logging.proto', {
  includeDirs: INCLUDE_DIRS,
  longs: String,
  enums: String,
  oneofs: true,
  defaults: false,
});
type ServiceDef = grpc.ServiceDefinition & { WriteLogEntries: grpc.MethodDefinition<object, object> };
const SERVICE = (definition['google.logging.v2.LoggingServiceV2'] as unknown) as ServiceDef;

// The same protos through protobufjs, to measure what the wire carried and to encode error details.
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => INCLUDE_DIRS.map((d) => path.join(d, target)).find((f) => fs.existsSync(f)) ?? target;
root.loadSync('google/logging/v2/logging.proto');
root.loadSync('google/rpc/status.proto');
const WriteRequest = root.lookupType('google.logging.v2.WriteLogEntriesRequest');
const LogEntryType = root.lookupType('google.logging.v2.LogEntry');
const PartialErrors = root.lookupType('google.logging.v2.WriteLogEntriesPartialErrors');
const Status = root.lookupType('google.rpc.Status');

export interface StructValue {
  [key: string]: unknown;
}

export interface ReceivedEntry {
  timestamp: { seconds: string; nanos: number };
  severity?: string;
  jsonPayload: StructValue;
  split?: { uid: string; index: number; totalSplits: number };
  insertId?: string;
}

export interface ReceivedRequest {
  authorization: string | undefined;
  logName: string;
  resource: { type: string; labels: Record<string, string> };
  partialSuccess: boolean;
  bytes: number;
  entries: ReceivedEntry[];
}

/** google.protobuf.Struct/Value as proto-loader decodes them, back to plain JSON. */
function fromValue(value: Record<string, unknown>): unknown {
  switch (value.kind) {
    case 'structValue':
      return fromStruct(value.structValue as Record<string, unknown>);
    case 'listValue':
      return ((value.listValue as { values?: Record<string, unknown>[] }).values ?? []).map(fromValue);
    case 'nullValue':
      return null;
    default:
      return value[value.kind as string];
  }
}

function fromStruct(struct: Record<string, unknown> | undefined): StructValue {
  const fields = (struct?.fields ?? {}) as Record<string, Record<string, unknown>>;
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, fromValue(v)]));
}

type Fault = { kind: 'status'; code: grpc.status; count: number; after: number } | { kind: 'reject'; match: (entry: ReceivedEntry) => boolean };

export class CloudLoggingEndpoint {
  readonly port: number;
  /** Requests answered OK (or partially), in arrival order. */
  readonly accepted: ReceivedRequest[] = [];
  /** Every request that arrived, failed ones included. */
  calls = 0;
  /** Broken limits, one line each: a test asserts this stays empty. */
  readonly violations: string[] = [];
  /** Entries written: of accepted requests, without rejected ones. */
  readonly written: ReceivedEntry[] = [];
  /** Each accepted request's bytes, when kept (a bench sends them again to measure the endpoint alone). */
  readonly raw: Buffer[] = [];
  private readonly keepRaw: boolean;
  private faults: Fault[] = [];
  private server: grpc.Server | null = null;

  constructor(port: number, options: { keepRaw?: boolean } = {}) {
    this.port = port;
    this.keepRaw = options.keepRaw ?? false;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Listens (again, after an outage) on the same port. */
  async start(credentials = grpc.ServerCredentials.createInsecure()): Promise<void> {
    // The API takes requests up to 10 MB; grpc-js's default would refuse over 4 MiB.
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 2 * MAX_REQUEST_BYTES });
    const method = SERVICE.WriteLogEntries;
    // Keeps the raw bytes beside the decoded request, so sizes are what the wire carried.
    const service = {
      ...SERVICE,
      WriteLogEntries: { ...method, requestDeserialize: (buf: Buffer) => ({ raw: buf, decoded: method.requestDeserialize(buf) }) },
    };
    server.addService(service, {
      WriteLogEntries: (call: grpc.ServerUnaryCall<{ raw: Buffer; decoded: Record<string, unknown> }, object>, done: grpc.sendUnaryData<object>) =>
        this.write(call, done),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(this.address, credentials, (err) => (err ? reject(err) : resolve())),
    );
    this.server = server;
  }

  /** A full outage: the port closes, connections drop. */
  stop(): void {
    this.server?.forceShutdown();
    this.server = null;
  }

  /** The next `count` requests, after `after` that go through, fail with `code` (RESOURCE_EXHAUSTED for throttling, UNAVAILABLE, INTERNAL). */
  failNext(code: grpc.status, count: number, after = 0): void {
    this.faults.push({ kind: 'status', code, count, after });
  }

  /** No more injected faults. */
  clearFaults(): void {
    this.faults = [];
  }

  /** Entries matching `match` are rejected one by one, as Cloud Logging rejects an invalid entry. */
  rejectEntries(match: (entry: ReceivedEntry) => boolean): void {
    this.faults.push({ kind: 'reject', match });
  }

  /** The `message` of every entry written, in order. */
  messages(): string[] {
    return this.written.map((e) => String(e.jsonPayload.message ?? ''));
  }

  private write(call: grpc.ServerUnaryCall<{ raw: Buffer; decoded: Record<string, unknown> }, object>, done: grpc.sendUnaryData<object>): void {
    this.calls++;
    const { raw, decoded } = call.request;
    const request: ReceivedRequest = {
      authorization: call.metadata.get('authorization')[0]?.toString(),
      logName: decoded.logName as string,
      resource: decoded.resource as ReceivedRequest['resource'],
      partialSuccess: decoded.partialSuccess === true,
      bytes: raw.length,
      entries: ((decoded.entries ?? []) as Record<string, unknown>[]).map((e) => ({
        ...(e as unknown as ReceivedEntry),
        jsonPayload: fromStruct(e.jsonPayload as Record<string, unknown>),
      })),
    };
    const broken = this.check(raw, request);
    if (broken.length > 0) {
      this.violations.push(...broken);
      return done({ code: grpc.status.INVALID_ARGUMENT, details: broken.join('; ') });
    }
    const status = this.faults.find((f): f is Extract<Fault, { kind: 'status' }> => f.kind === 'status' && f.count > 0);
    if (status && status.after-- <= 0) {
      status.count--;
      return done({ code: status.code, details: `injected ${grpc.status[status.code]}` });
    }
    const rejected = new Map<number, string>();
    for (const fault of this.faults) {
      if (fault.kind !== 'reject') continue;
      request.entries.forEach((entry, i) => fault.match(entry) && rejected.set(i, 'injected invalid entry'));
    }
    if (rejected.size > 0 && !request.partialSuccess) return done({ code: grpc.status.INVALID_ARGUMENT, details: 'invalid entries' });
    this.accepted.push(request);
    if (this.keepRaw) this.raw.push(raw);
    this.written.push(...request.entries.filter((_, i) => !rejected.has(i)));
    if (rejected.size === 0) return done(null, {});
    done(partialFailure(rejected));
  }

  private check(raw: Buffer, request: ReceivedRequest): string[] {
    const broken: string[] = [];
    if (raw.length > MAX_REQUEST_BYTES) broken.push(`request of ${raw.length} bytes over ${MAX_REQUEST_BYTES}`);
    if (request.entries.length > MAX_ENTRIES) broken.push(`request of ${request.entries.length} entries over ${MAX_ENTRIES}`);
    const entries = (WriteRequest.decode(raw) as unknown as { entries: protobuf.Message[] }).entries;
    entries.forEach((entry, i) => {
      const size = LogEntryType.encode(entry).finish().length;
      if (size > MAX_ENTRY_BYTES) broken.push(`entry ${i} of ${size} bytes over ${MAX_ENTRY_BYTES}`);
    });
    for (let i = 1; i < request.entries.length; i++) {
      if (nanos(request.entries[i]!) < nanos(request.entries[i - 1]!)) broken.push(`entry ${i} is older than entry ${i - 1}`);
    }
    return broken;
  }
}

function nanos(entry: ReceivedEntry): bigint {
  return BigInt(entry.timestamp.seconds) * 1_000_000_000n + BigInt(entry.timestamp.nanos ?? 0);
}

/** INVALID_ARGUMENT with WriteLogEntriesPartialErrors in grpc-status-details-bin, as the API answers. */
function partialFailure(rejected: Map<number, string>): Partial<grpc.StatusObject> {
  const logEntryErrors = Object.fromEntries([...rejected].map(([i, message]) => [i, { code: grpc.status.INVALID_ARGUMENT, message }]));
  const details = PartialErrors.encode(PartialErrors.fromObject({ logEntryErrors })).finish();
  const status = Status.encode(
    Status.fromObject({
      code: grpc.status.INVALID_ARGUMENT,
      message: `${rejected.size} invalid entries`,
      details: [{ type_url: 'type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors', value: details }],
    }),
  ).finish();
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(status));
  return { code: grpc.status.INVALID_ARGUMENT, details: `${rejected.size} invalid entries`, metadata };
}
