// A CloudWatch Logs endpoint for the awslogs tests: the service's JSON 1.1 protocol
// (`POST /`, `X-Amz-Target: Logs_20140328.<Operation>`, errors as 400 `{"__type", "message"}`,
// backends.md §3), groups, streams and their events kept in memory. It enforces every
// PutLogEvents limit and records each breach in `violations`, which a test asserts empty;
// it can check sequence tokens strictly, refuse the next puts with ThrottlingException,
// ServiceUnavailableException (503) or DataAlreadyAcceptedException, refuse credentials it
// does not know (UnrecognizedClientException), and go down entirely (stop listening) and
// come back on the same port with its state.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';

export const CLOUDWATCH_PORT = 14566;
export const MAX_EVENTS = 10_000;
export const MAX_BATCH_BYTES = 1_048_576;
export const EVENT_OVERHEAD = 26;
export const MAX_EVENT_BYTES = 262_144;
export const MAX_SPAN_MS = 24 * 3_600_000;
/** Events older than this, or newer than TOO_NEW_MS ahead of now, are rejected (not stored), as the service does. */
export const TOO_OLD_MS = 14 * 24 * 3_600_000;
export const TOO_NEW_MS = 2 * 3_600_000;

export interface StoredEvent {
  timestamp: number;
  message: string;
  ingestionTime: number;
}

interface Stream {
  creationTime: number;
  events: StoredEvent[];
  token: string | null;
}

type Injected = 'ThrottlingException' | 'ServiceUnavailableException' | 'DataAlreadyAcceptedException';

export interface EndpointRequest {
  operation: string;
  status: number;
  /** The x-amzn-logs-format header, if sent. */
  logsFormat: string | undefined;
  /** Events in a PutLogEvents request. */
  events: number;
  /** From the SigV4 credential scope. */
  accessKeyId: string;
  region: string;
}

class ServiceError extends Error {
  readonly type: string;
  readonly status: number;
  readonly extra: Record<string, unknown>;

  constructor(type: string, message: string, status = 400, extra: Record<string, unknown> = {}) {
    super(message);
    this.type = type;
    this.status = status;
    this.extra = extra;
  }
}

export class CloudWatchEndpoint {
  readonly groups = new Map<string, Map<string, Stream>>();
  /** Every breach of the service's rules by a client; a test fails unless it stays empty. */
  readonly violations: string[] = [];
  readonly requests: EndpointRequest[] = [];
  strictTokens = false;
  /** When set, a request signed with another access key is refused as the service refuses unknown credentials. */
  requiredAccessKeyId: string | null = null;
  private readonly port: number;
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly injected: Injected[] = [];
  private injectAfter = 0;

  constructor(options: { port?: number; strictTokens?: boolean } = {}) {
    this.port = options.port ?? CLOUDWATCH_PORT;
    this.strictTokens = options.strictTokens ?? false;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Stops listening and cuts open connections: an outage. State stays for start(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** The next `count` PutLogEvents calls, after `after` that go through, fail with this error (and store nothing). */
  inject(error: Injected, count = 1, after = 0): void {
    this.injectAfter = after;
    for (let i = 0; i < count; i++) this.injected.push(error);
  }

  /** Injected errors not met yet. */
  get pendingInjections(): number {
    return this.injected.length;
  }

  events(group: string, stream: string): StoredEvent[] {
    return this.groups.get(group)?.get(stream)?.events ?? [];
  }

  createGroup(name: string): void {
    if (!this.groups.has(name)) this.groups.set(name, new Map());
  }

  deleteStream(group: string, stream: string): void {
    this.groups.get(group)?.delete(stream);
  }

  private violation(text: string): void {
    this.violations.push(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('Logs_20140328.') ? target.slice('Logs_20140328.'.length) : target;
      const logsFormat = req.headers['x-amzn-logs-format'] as string | undefined;
      let status = 200;
      let body: unknown;
      let events = 0;
      const scope = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/logs\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.exec(
        String(req.headers.authorization ?? ''),
      );
      try {
        if (req.method !== 'POST') throw new ServiceError('UnknownOperationException', `${req.method} is not supported`);
        if (!scope || !req.headers['x-amz-date']) {
          this.violation(`${operation}: no SigV4 Authorization header`);
          throw new ServiceError('MissingAuthenticationTokenException', 'Missing Authentication Token');
        }
        if (this.requiredAccessKeyId !== null && scope[1] !== this.requiredAccessKeyId) {
          throw new ServiceError('UnrecognizedClientException', 'The security token included in the request is invalid.');
        }
        if (req.headers['content-type'] !== 'application/x-amz-json-1.1') this.violation(`${operation}: content-type ${req.headers['content-type']}`);
        const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        if (operation === 'PutLogEvents') events = Array.isArray(input.logEvents) ? input.logEvents.length : 0;
        body = this.operation(operation, input);
      } catch (err) {
        if (!(err instanceof ServiceError)) throw err;
        status = err.status;
        body = { __type: err.type, message: err.message, ...err.extra };
      }
      this.requests.push({ operation, status, logsFormat, events, accessKeyId: scope?.[1] ?? '', region: scope?.[2] ?? '' });
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': Buffer.byteLength(text),
        'x-amzn-requestid': randomUUID(),
      });
      res.end(text);
    });
  }

  private operation(operation: string, input: Record<string, unknown>): unknown {
    const group = String(input.logGroupName ?? '');
    switch (operation) {
      case 'CreateLogGroup':
        if (this.groups.has(group)) throw new ServiceError('ResourceAlreadyExistsException', 'The specified log group already exists');
        this.groups.set(group, new Map());
        return {};
      case 'CreateLogStream': {
        const streams = this.group(group);
        const name = String(input.logStreamName ?? '');
        if (streams.has(name)) throw new ServiceError('ResourceAlreadyExistsException', 'The specified log stream already exists');
        streams.set(name, { creationTime: Date.now(), events: [], token: null });
        return {};
      }
      case 'PutLogEvents':
        return this.putLogEvents(group, input);
      case 'DescribeLogStreams': {
        const prefix = String(input.logStreamNamePrefix ?? '');
        const logStreams = [...this.group(group)]
          .filter(([name]) => name.startsWith(prefix))
          .map(([logStreamName, s]) => ({ logStreamName, creationTime: s.creationTime, storedBytes: 0, ...(s.token ? { uploadSequenceToken: s.token } : {}) }));
        return { logStreams };
      }
      case 'GetLogEvents': {
        const events = this.stream(group, String(input.logStreamName ?? '')).events;
        return { events, nextForwardToken: `f/${events.length}`, nextBackwardToken: 'b/0' };
      }
      default:
        throw new ServiceError('UnknownOperationException', `unknown operation ${operation}`);
    }
  }

  private group(name: string): Map<string, Stream> {
    const streams = this.groups.get(name);
    if (!streams) throw new ServiceError('ResourceNotFoundException', 'The specified log group does not exist.');
    return streams;
  }

  private stream(group: string, name: string): Stream {
    const stream = this.group(group).get(name);
    if (!stream) throw new ServiceError('ResourceNotFoundException', 'The specified log stream does not exist.');
    return stream;
  }

  private putLogEvents(group: string, input: Record<string, unknown>): unknown {
    const events = (Array.isArray(input.logEvents) ? input.logEvents : []) as { timestamp?: unknown; message?: unknown }[];
    const invalid = (why: string): never => {
      this.violation(`PutLogEvents: ${why}`);
      throw new ServiceError('InvalidParameterException', why);
    };
    // The limits first, as the service validates the request before anything else.
    if (events.length === 0) invalid('logEvents is empty');
    if (events.length > MAX_EVENTS) invalid(`${events.length} events in one request (at most ${MAX_EVENTS})`);
    let bytes = 0;
    for (const [i, e] of events.entries()) {
      if (typeof e.message !== 'string' || e.message === '') invalid(`event ${i} has no message`);
      if (!Number.isSafeInteger(e.timestamp)) invalid(`event ${i} has timestamp ${String(e.timestamp)}`);
      const size = Buffer.byteLength(e.message as string) + EVENT_OVERHEAD;
      if (size > MAX_EVENT_BYTES) invalid(`event ${i} is ${size} bytes with its overhead (at most ${MAX_EVENT_BYTES})`);
      bytes += size;
      if (i > 0 && (e.timestamp as number) < (events[i - 1]!.timestamp as number)) {
        invalid('Log events in a single PutLogEvents request must be in chronological order.');
      }
    }
    if (bytes > MAX_BATCH_BYTES) invalid(`the batch is ${bytes} bytes (at most ${MAX_BATCH_BYTES})`);
    const first = events[0]!.timestamp as number;
    const last = events.at(-1)!.timestamp as number;
    if (last - first > MAX_SPAN_MS) invalid(`the batch spans ${last - first} ms (at most 24 hours)`);

    const stream = this.stream(group, String(input.logStreamName ?? ''));
    const injected = this.injected.length > 0 && this.injectAfter-- <= 0 ? this.injected.shift() : undefined;
    if (injected === 'ThrottlingException') throw new ServiceError('ThrottlingException', 'Rate exceeded');
    if (injected === 'ServiceUnavailableException') throw new ServiceError('ServiceUnavailableException', 'The service cannot complete the request.', 503);
    if (injected === 'DataAlreadyAcceptedException') {
      throw new ServiceError('DataAlreadyAcceptedException', `The given batch of log events has already been accepted. The next batch can be sent with sequenceToken: ${stream.token}`, 400, {
        expectedSequenceToken: stream.token,
      });
    }
    const given = typeof input.sequenceToken === 'string' ? input.sequenceToken : null;
    if (this.strictTokens && given !== stream.token) {
      throw new ServiceError('InvalidSequenceTokenException', `The given sequenceToken is invalid. The next expected sequenceToken is: ${stream.token}`, 400, {
        expectedSequenceToken: stream.token,
      });
    }

    const now = Date.now();
    let tooOldEnd = 0;
    while (tooOldEnd < events.length && (events[tooOldEnd]!.timestamp as number) < now - TOO_OLD_MS) tooOldEnd++;
    let tooNewStart = events.length;
    while (tooNewStart > tooOldEnd && (events[tooNewStart - 1]!.timestamp as number) > now + TOO_NEW_MS) tooNewStart--;
    for (const e of events.slice(tooOldEnd, tooNewStart)) {
      stream.events.push({ timestamp: e.timestamp as number, message: e.message as string, ingestionTime: now });
    }
    stream.token = randomUUID().replaceAll('-', '');
    const rejected: Record<string, number> = {};
    if (tooOldEnd > 0) rejected.tooOldLogEventEndIndex = tooOldEnd;
    if (tooNewStart < events.length) rejected.tooNewLogEventStartIndex = tooNewStart;
    return { nextSequenceToken: stream.token, ...(Object.keys(rejected).length > 0 ? { rejectedLogEventsInfo: rejected } : {}) };
  }
}
