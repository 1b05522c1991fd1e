// Builds daemon frames with the real schema, the way the daemon's encoder lays them out.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { FrameBatch } from '../../src/ingest/frame-batch.ts';

const LogEntry = protobuf
  .loadSync(fileURLToPath(new URL('../../proto/entry.proto', import.meta.url)))
  .lookupType('logdriver.LogEntry');

export interface EntryFields {
  source?: string;
  timeNano?: bigint;
  line?: string | Buffer;
  partial?: boolean;
  partialLogMetadata?: { id: string; ordinal: number; last: boolean };
}

export const T0 = 1_795_000_000_123_456_789n; // > 2^53: a Number would lose the last digits

/** Like the daemon's gogo encoder, zero values (empty line, partial=false) are left out. */
export function payload(fields: EntryFields): Buffer {
  const line = typeof fields.line === 'string' ? Buffer.from(fields.line) : fields.line;
  const msg: Record<string, unknown> = { source: fields.source ?? 'stdout', timeNano: (fields.timeNano ?? T0).toString() };
  if (line && line.length > 0) msg.line = line;
  if (fields.partial) msg.partial = true;
  if (fields.partialLogMetadata) msg.partialLogMetadata = fields.partialLogMetadata;
  return Buffer.from(LogEntry.encode(msg).finish());
}

export function frame(fields: EntryFields): Buffer {
  const p = payload(fields);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(p.length);
  return Buffer.concat([header, p]);
}

/** n ordinary stdout lines "line 1".."line n", 1 µs apart from `start`. */
export function lines(n: number, start = T0, from = 1): EntryFields[] {
  return Array.from({ length: n }, (_, i) => ({ line: `line ${from + i}`, timeNano: start + BigInt(i) * 1000n }));
}

/** The entries as the FIFO reader hands them to a store: one batch, as from one read. */
export function batch(entries: EntryFields[]): FrameBatch {
  const frames = entries.map(frame);
  const b = new FrameBatch(Buffer.concat(frames));
  let pos = 0;
  for (const [i, f] of frames.entries()) {
    const t = BigInt.asUintN(64, entries[i]!.timeNano ?? T0);
    b.add(pos, pos + f.length, Number(t >> 32n), Number(t & 0xffffffffn));
    pos += f.length;
  }
  return b;
}
