// An OTLP logs receiver on loopback for the backend tests, as a collector's otlp receiver
// behaves: HTTP POST /v1/logs with protobuf or JSON bodies (optionally gzip), and the gRPC
// LogsService/Export on @grpc/grpc-js (a real gRPC server, so logship's own HTTP/2 framing is
// checked by another implementation), both decoding with the official protos. Answers: the
// ExportLogsServiceResponse in the request's encoding, with a partial success when told to
// refuse records; 503 / UNAVAILABLE when told to fail; 401 / UNAUTHENTICATED when a required
// header is missing or wrong.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

// The protos' imports (`opentelemetry/proto/...`) are paths from proto/.
const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));
const SERVICE = 'opentelemetry/proto/collector/logs/v1/logs_service.proto';
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : `${PROTO_ROOT}${target}`);
root.loadSync(SERVICE);
const REQUEST = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
const RESPONSE = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');

/** A request as protobufjs' toObject gives it (longs and enums as the OTLP/JSON mapping writes them). */
export interface ExportRequest {
  resourceLogs?: Array<{
    resource?: { attributes?: Array<{ key: string; value: Record<string, unknown> }> };
    scopeLogs?: Array<{ scope?: { name?: string }; logRecords?: LogRecord[] }>;
  }>;
}
export interface LogRecord {
  timeUnixNano?: string;
  observedTimeUnixNano?: string;
  severityNumber?: number;
  severityText?: string;
  body?: Record<string, unknown>;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

export interface Received {
  via: 'http/protobuf' | 'http/json' | 'grpc';
  headers: Record<string, string>;
  request: ExportRequest;
}

export class OtlpReceiver {
  readonly received: Received[] = [];
  readonly violations: string[] = [];
  /** A header every request must carry, e.g. ['authorization', 'Bearer x']. */
  required: [string, string] | null = null;
  private failures = 0;
  private refuse: ((record: LogRecord) => boolean) | null = null;
  private invalid: ((record: LogRecord) => boolean) | null = null;
  private httpServer: http.Server | null = null;
  private grpcServer: grpc.Server | null = null;
  httpPort = 0;
  grpcPort = 0;

  /** The next n exports answered 503 / UNAVAILABLE. */
  fail(n: number): void {
    this.failures = n;
  }

  /** Records matching are refused through a partial success. */
  refuseRecords(rule: ((record: LogRecord) => boolean) | null): void {
    this.refuse = rule;
  }

  /** A request holding a record matching is refused whole: 400 / INVALID_ARGUMENT, as for a malformed record. */
  invalidWhen(rule: ((record: LogRecord) => boolean) | null): void {
    this.invalid = rule;
  }

  private isInvalid(request: ExportRequest): boolean {
    const rule = this.invalid;
    return rule !== null && (request.resourceLogs ?? []).some((rl) => (rl.scopeLogs ?? []).some((sl) => (sl.logRecords ?? []).some(rule)));
  }

  records(): Array<LogRecord & { resource: Record<string, unknown> }> {
    return this.received.flatMap((r) =>
      (r.request.resourceLogs ?? []).flatMap((rl) => {
        const resource = Object.fromEntries((rl.resource?.attributes ?? []).map((a) => [a.key, plain(a.value)]));
        return (rl.scopeLogs ?? []).flatMap((sl) => (sl.logRecords ?? []).filter((rec) => !this.refused.has(rec)).map((rec) => ({ ...rec, resource })));
      }),
    );
  }

  private readonly refused = new WeakSet<LogRecord>();

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get grpcUrl(): string {
    return `http://127.0.0.1:${this.grpcPort}`;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.handleHttp(req, res));
    await new Promise<void>((resolve) => server.listen(this.httpPort, '127.0.0.1', resolve));
    this.httpPort = (server.address() as AddressInfo).port;
    this.httpServer = server;
    const definition = protoLoader.loadSync(SERVICE, { includeDirs: [PROTO_ROOT], longs: String, enums: Number, defaults: false });
    const service = (grpc.loadPackageDefinition(definition) as unknown as { opentelemetry: { proto: { collector: { logs: { v1: { LogsService: grpc.ServiceClientConstructor } } } } } }).opentelemetry.proto.collector.logs.v1.LogsService;
    const g = new grpc.Server();
    g.addService(service.service, {
      Export: (call: grpc.ServerUnaryCall<ExportRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const headers = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
        if (this.required && headers[this.required[0]] !== this.required[1]) return callback({ code: grpc.status.UNAUTHENTICATED, details: 'missing or wrong credentials' });
        if (this.failures > 0) {
          this.failures--;
          return callback({ code: grpc.status.UNAVAILABLE, details: 'collector busy' });
        }
        const request = REQUEST.toObject(REQUEST.fromObject(call.request), { longs: String, enums: Number }) as ExportRequest;
        if (this.isInvalid(request)) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'malformed record' });
        callback(null, this.take('grpc', headers, request));
      },
    });
    await new Promise<void>((resolve, reject) =>
      g.bindAsync(`127.0.0.1:${this.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : ((this.grpcPort = port), resolve()))),
    );
    this.grpcServer = g;
  }

  async stop(): Promise<void> {
    const server = this.httpServer;
    this.httpServer = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const g = this.grpcServer;
    this.grpcServer = null;
    g?.forceShutdown();
  }

  /** Stores a request; the partial success for what it refuses. */
  private take(via: Received['via'], headers: Record<string, string>, request: ExportRequest): { partialSuccess?: { rejectedLogRecords: string; errorMessage: string } } {
    this.received.push({ via, headers, request });
    let rejected = 0;
    for (const rl of request.resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) {
        for (const rec of sl.logRecords ?? []) {
          if (!rec.timeUnixNano || !/^\d+$/.test(rec.timeUnixNano)) this.violations.push(`record without timeUnixNano (${via})`);
          if (this.refuse?.(rec)) {
            this.refused.add(rec);
            rejected++;
          }
        }
      }
    }
    return rejected > 0 ? { partialSuccess: { rejectedLogRecords: String(rejected), errorMessage: 'records refused by the test' } } : {};
  }

  private handleHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/logs') return void res.writeHead(404).end();
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      if (this.required && headers[this.required[0]] !== this.required[1]) return void res.writeHead(401).end('Unauthorized');
      if (this.failures > 0) {
        this.failures--;
        return void res.writeHead(503, { 'retry-after': '1' }).end();
      }
      let body = Buffer.concat(chunks);
      if (headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const json = headers['content-type'] === 'application/json';
      let request: ExportRequest;
      try {
        if (json) {
          const text = body.toString('utf8');
          // The OTLP/JSON mapping, read with protobufjs' JSON form of the same messages.
          request = REQUEST.toObject(REQUEST.fromObject(JSON.parse(text)), { longs: String, enums: Number }) as ExportRequest;
        } else if (headers['content-type'] === 'application/x-protobuf') {
          request = REQUEST.toObject(REQUEST.decode(body), { longs: String, enums: Number }) as ExportRequest;
        } else {
          this.violations.push(`Content-Type ${headers['content-type']}`);
          return void res.writeHead(415).end();
        }
      } catch (err) {
        this.violations.push(`undecodable body: ${(err as Error).message}`);
        return void res.writeHead(400).end();
      }
      if (this.isInvalid(request)) return void res.writeHead(400).end('malformed record');
      const response = this.take(json ? 'http/json' : 'http/protobuf', headers, request);
      if (json) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(RESPONSE.encode(RESPONSE.fromObject(response)).finish()));
    });
  }
}

/** An AnyValue as plain JSON, for assertions. */
export function plain(value: Record<string, unknown> | undefined): unknown {
  if (!value) return null;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return value.doubleValue;
  if ('arrayValue' in value) return ((value.arrayValue as { values?: Array<Record<string, unknown>> }).values ?? []).map(plain);
  if ('kvlistValue' in value) {
    return Object.fromEntries(((value.kvlistValue as { values?: Array<{ key: string; value: Record<string, unknown> }> }).values ?? []).map((kv) => [kv.key, plain(kv.value)]));
  }
  return null;
}
