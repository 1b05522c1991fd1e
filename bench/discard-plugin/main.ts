// The floors no logging plugin can beat, for bench/drivers.ts:
// - writes: answers the LogDriver API and reads each FIFO to EOF with logship's own reader,
//   discarding every byte. What the daemon spends marshalling and writing each line is in
//   both, so the difference is what logship spends deframing, decoding and storing.
// - reads: ReadLogs answers, for any container, `seq 1 READ_LINES` as frames prepared in memory
//   when the plugin starts, in one write: the bytes logship sends for those lines (source,
//   time_nano, the line with its '\n'), with no store to read, nothing to decode and no
//   backpressure to wait on. What is left is the daemon's: the HTTP read, decoding each
//   frame, and writing each line to the client. Tail, since, until and follow are ignored.
import fs from 'node:fs';
import http from 'node:http';
import { openFifo, readFifo } from '../../src/ingest/fifo-reader.ts';

const SOCKET = '/run/docker/plugins/discard.sock';
const READ_LINES = Number(process.env.READ_LINES ?? 0);

/** `seq 1 lines` as ReadLogs frames ([uint32 BE n][LogEntry]), 1 µs apart from now. */
function seqFrames(lines: number): Buffer {
  const out = Buffer.allocUnsafe(lines * 40 + 64);
  const t0 = BigInt(Date.now()) * 1_000_000n;
  let pos = 0;
  for (let i = 1; i <= lines; i++) {
    const start = pos;
    pos += 4;
    out[pos++] = 0x0a; // source: "stdout"
    pos += out.write('\x06stdout', pos, 'latin1');
    out[pos++] = 0x10; // time_nano, a varint
    for (let t = t0 + BigInt(i) * 1000n; ; t >>= 7n) {
      if (t < 0x80n) {
        out[pos++] = Number(t);
        break;
      }
      out[pos++] = Number(t & 0x7fn) | 0x80;
    }
    const line = `${i}\n`;
    out[pos++] = 0x1a; // line, shorter than 128 bytes: a one-byte length
    out[pos++] = line.length;
    pos += out.write(line, pos, 'latin1');
    out.writeUInt32BE(pos - start - 4, start);
  }
  return out.subarray(0, pos);
}

const prepared = seqFrames(READ_LINES);

// ReadLogs is claimed: without it the daemon (20.10+) would also write every line to its own
// local-driver cache ("dual logging"), which costs more than the plugin.
const replies: Record<string, unknown> = {
  '/Plugin.Activate': { Implements: ['LogDriver'] },
  '/LogDriver.Capabilities': { Cap: { ReadLogs: true }, Err: '' },
  '/LogDriver.StopLogging': { Err: '' },
};

function startLogging(body: string): string {
  const { File } = JSON.parse(body) as { File: string };
  readFifo(openFifo(File), () => {}).on('error', () => {});
  return '';
}

const server = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (chunk: Buffer) => parts.push(chunk));
  req.on('end', () => {
    if (req.url === '/LogDriver.ReadLogs') {
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf-stream' });
      res.end(prepared);
      return;
    }
    let reply = replies[req.url ?? ''];
    if (req.url === '/LogDriver.StartLogging') {
      try {
        reply = { Err: startLogging(Buffer.concat(parts).toString('utf8')) };
      } catch (err) {
        reply = { Err: (err as Error).message };
      }
    }
    res.writeHead(reply ? 200 : 404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(reply ?? { Err: `unknown call ${req.url}` }));
  });
});
fs.rmSync(SOCKET, { force: true });
server.listen(SOCKET);
process.on('SIGTERM', () => process.exit(0));
