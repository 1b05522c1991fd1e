// The daemon's request bodies (logdriver-protocol.md §3), parsed defensively: Go's JSON
// has no tags, so keys are Go field names; any field but ContainerID may be null.
import type { StartLoggingBodies, StartLoggingRequest } from '../lifecycle/attachments.ts';
import type { ContainerInfo } from '../shaping/container.ts';
import type { ReadRequest } from '../store/log-reader.ts';

export class BadRequestError extends Error {}

export interface ReadLogsRequest {
  info: ContainerInfo;
  read: ReadRequest;
}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadRequestError(`${what} is not an object`);
  return value as Json;
}

function string(body: Json, key: string): string {
  const value = body[key];
  if (typeof value !== 'string') throw new BadRequestError(`${key} is not a string`);
  return value;
}

const CONTAINER_ID = /^[0-9a-f]{64}$/;

function parseInfo(value: unknown): ContainerInfo {
  const info = object(value, 'Info');
  const id = string(info, 'ContainerID');
  if (!CONTAINER_ID.test(id)) throw new BadRequestError('Info.ContainerID is not a 64-character hex id');
  const config: Record<string, string> = {};
  if (info.Config !== null && info.Config !== undefined) {
    for (const [key, v] of Object.entries(object(info.Config, 'Info.Config'))) {
      if (typeof v !== 'string') throw new BadRequestError(`log opt '${key}' is not a string`);
      config[key] = v;
    }
  }
  return {
    id,
    name: optionalString(info.ContainerName),
    config,
    imageId: optionalString(info.ContainerImageID),
    imageName: optionalString(info.ContainerImageName),
    created: optionalString(info.ContainerCreated),
    entrypoint: optionalString(info.ContainerEntrypoint),
    args: stringList(info.ContainerArgs),
    env: stringList(info.ContainerEnv),
    labels: stringMap(info.ContainerLabels),
    daemonName: optionalString(info.DaemonName),
  };
}

// Beyond ContainerID the daemon promises nothing: null, absent or odd values mean empty.
function optionalString(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function parseStartLogging(body: unknown): StartLoggingRequest {
  const req = object(body, 'request');
  return { file: string(req, 'File'), info: parseInfo(req.Info) };
}

/** The StartLogging body the daemon would send for this request: parseStartLogging's inverse. */
export function startLoggingBody(req: StartLoggingRequest): Json {
  const { file, info } = req;
  return {
    File: file,
    Info: {
      ContainerID: info.id,
      ContainerName: info.name,
      Config: info.config,
      ContainerImageID: info.imageId,
      ContainerImageName: info.imageName,
      ContainerCreated: info.created,
      ContainerEntrypoint: info.entrypoint,
      ContainerArgs: info.args,
      ContainerEnv: info.env,
      ContainerLabels: info.labels,
      DaemonName: info.daemonName,
    },
  };
}

export function parseStopLogging(body: unknown): string {
  return string(object(body, 'request'), 'File');
}

export function parseReadLogs(body: unknown): ReadLogsRequest {
  const req = object(body, 'request');
  // The daemon sends `Config`; the docs call it `ReadConfig`.
  const cfg = object(req.Config ?? req.ReadConfig ?? {}, 'Config');
  const tail = cfg.Tail ?? -1;
  if (typeof tail !== 'number' || !Number.isInteger(tail)) throw new BadRequestError('Config.Tail is not an integer');
  return {
    info: parseInfo(req.Info),
    read: {
      sinceNano: parseGoTime(cfg.Since, 'Since'),
      untilNano: parseGoTime(cfg.Until, 'Until'),
      tail,
      follow: cfg.Follow === true,
    },
  };
}

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/**
 * A Go time.Time in JSON (RFC 3339 with up to 9 fraction digits, any offset) as Unix
 * nanoseconds; Go's zero time (year 1) and absence mean "no bound".
 */
export function parseGoTime(value: unknown, key: string): bigint | null {
  if (value === undefined || value === null || value === '') return null;
  const m = typeof value === 'string' ? RFC3339.exec(value) : null;
  if (!m) throw new BadRequestError(`Config.${key} is not an RFC 3339 time`);
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  if (Number(y) <= 1) return null;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const sign = zone!.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6)));
  }
  return (BigInt(ms) - BigInt(offsetMinutes) * 60_000n) * 1_000_000n + BigInt(frac.padEnd(9, '0'));
}

/** The StartLogging body both ways, for the registry's attachments. */
export const START_LOGGING: StartLoggingBodies = { parse: parseStartLogging, body: startLoggingBody };
