// `docker logs` through the Engine API: the raw multiplexed stream, demultiplexed into stdout,
// stderr and the daemon's in-band error stream (stdcopy stream 3, "Error grabbing logs: ...").
import type { IncomingMessage } from 'node:http';
import { docker } from './docker-client.ts';

export interface LogQuery {
  /** Number of lines, or 'all' (the default). */
  tail?: number | 'all';
  /** Lower bound, in the API's form: Unix seconds with an optional 9-digit fraction. */
  since?: string;
  /** Upper bound, same form. */
  until?: string;
  timestamps?: boolean;
  /** --details: attributes before each line (for a plugin, just a space). */
  details?: boolean;
  follow?: boolean;
  signal?: AbortSignal;
}

export interface Logs {
  stdout: Buffer;
  stderr: Buffer;
  /** What the daemon reported in-band (stream 3); empty when all went well. */
  system: Buffer;
}

/** Opens GET /containers/{id}/logs and resolves to the raw response stream. */
export function openLogStream(id: string, q: LogQuery = {}): Promise<IncomingMessage> {
  const options: Record<string, string | number | boolean> = { stdout: true, stderr: true };
  if (q.follow !== undefined) options.follow = q.follow;
  if (q.tail !== undefined) options.tail = q.tail;
  if (q.since !== undefined) options.since = q.since;
  if (q.until !== undefined) options.until = q.until;
  if (q.timestamps !== undefined) options.timestamps = q.timestamps;
  if (q.details !== undefined) options.details = q.details;
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${id}/logs?`,
        method: 'GET',
        isStream: true,
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error', 501: 'not implemented' },
        options,
        ...(q.signal ? { abortSignal: q.signal } : {}),
      },
      (err, res) => (err ? reject(err) : resolve(res as IncomingMessage)),
    );
  });
}

export type FrameHandler = (stream: number, payload: Buffer) => void;

/** Splits a stdcopy stream (8-byte header: stream type, 3 zero bytes, uint32 BE length) into frames. */
export function demux(res: NodeJS.ReadableStream, onFrame: FrameHandler): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    res.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 8) {
        const type = pending[offset] ?? 0;
        const size = pending.readUInt32BE(offset + 4);
        if (pending.length - offset - 8 < size) break;
        onFrame(type, pending.subarray(offset + 8, offset + 8 + size));
        offset += 8 + size;
      }
      pending = offset === pending.length ? Buffer.alloc(0) : pending.subarray(offset);
    });
    res.on('error', reject);
    res.on('end', () => {
      if (pending.length > 0) reject(new Error(`log stream ended inside a frame (${pending.length} bytes left over)`));
      else resolve();
    });
  });
}

/** Reads a whole log stream into buffers. */
export async function collect(res: NodeJS.ReadableStream): Promise<Logs> {
  const parts: Record<number, Buffer[]> = { 1: [], 2: [], 3: [] };
  await demux(res, (type, payload) => {
    (parts[type] ??= []).push(Buffer.from(payload));
  });
  return {
    stdout: Buffer.concat(parts[1] ?? []),
    stderr: Buffer.concat(parts[2] ?? []),
    system: Buffer.concat(parts[3] ?? []),
  };
}

/** `docker logs` with the given options (follow: until the stream ends). */
export async function readLogs(id: string, q: LogQuery = {}): Promise<Logs> {
  return collect(await openLogStream(id, q));
}

export interface TimedLine {
  /** The timestamp as the daemon printed it (RFC 3339, 9 fraction digits). */
  ts: string;
  /** The same instant in the API's since/until form. */
  api: string;
  line: string;
}

const TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})(Z|[+-]\d\d:\d\d) /;

/** Splits `timestamps: true` output into lines with their timestamps. */
export function parseTimestamped(text: Buffer | string): TimedLine[] {
  const s = typeof text === 'string' ? text : text.toString('utf8');
  const lines = s.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((l) => {
    const m = TS.exec(l);
    if (!m) throw new Error(`not a timestamped log line: ${JSON.stringify(l.slice(0, 80))}`);
    const [whole, base, frac, zone] = m as unknown as [string, string, string, string];
    const seconds = Date.parse(`${base}${zone}`) / 1000;
    if (!Number.isInteger(seconds)) throw new Error(`bad timestamp in ${JSON.stringify(l.slice(0, 80))}`);
    return { ts: whole.trimEnd(), api: `${seconds}.${frac}`, line: l.slice(whole.length) };
  });
}

/** The text `seq FROM TO` prints. */
export function seqText(from: number, to: number): string {
  let s = '';
  for (let i = from; i <= to; i++) s += `${i}\n`;
  return s;
}

/** Counts '\n' bytes. */
export function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/** A short description of where two buffers first differ, for assertion messages. */
export function firstDifference(a: Buffer, b: Buffer): string {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  if (i === n && a.length === b.length) return 'identical';
  const around = (x: Buffer) => JSON.stringify(x.subarray(Math.max(0, i - 40), i + 40).toString('latin1'));
  return `lengths ${a.length} and ${b.length}, first difference at byte ${i}: ${around(a)} vs ${around(b)}`;
}
