// Store entries → the ReadLogs reply: the FIFO's framing, [uint32 BE length][LogEntry].
// The daemon writes each line verbatim, so complete lines get back the '\n' the daemon
// stripped (json-file stores it); a chunk of a longer line does not.
import { type LogEntry, encodeLogEntry } from '../fifo/log-entry.ts';

const NEWLINE = Buffer.from('\n');

export function encodeReadLogsBatch(entries: readonly LogEntry[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const complete = !e.partial || e.partialMetadata?.last === true;
    const payload = encodeLogEntry(e.source, e.timeNano, complete ? Buffer.concat([e.line, NEWLINE]) : e.line);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(payload.length, 0);
    parts.push(header, payload);
  }
  return Buffer.concat(parts);
}
