// The floor no logging plugin can beat: answers the LogDriver API and reads each FIFO to EOF
// with logship's own reader, discarding every byte. bench/drivers.ts measures logship against
// it: what the daemon spends marshalling and writing each line is in both, so the difference
// is what logship spends deframing, decoding and storing.
import fs from 'node:fs';
import http from 'node:http';
import { openFifo } from '../../src/ingest/fifo-reader.ts';

const SOCKET = '/run/docker/plugins/discard.sock';

// ReadLogs is claimed (and answered with no entries): without it the daemon (20.10+) would
// also write every line to its own local-driver cache ("dual logging"), which costs more
// than the plugin.
const replies: Record<string, unknown> = {
  '/Plugin.Activate': { Implements: ['LogDriver'] },
  '/LogDriver.Capabilities': { Cap: { ReadLogs: true }, Err: '' },
  '/LogDriver.StopLogging': { Err: '' },
};

function startLogging(body: string): string {
  const { File } = JSON.parse(body) as { File: string };
  openFifo(File, () => {}).on('error', () => {});
  return '';
}

const server = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (chunk: Buffer) => parts.push(chunk));
  req.on('end', () => {
    if (req.url === '/LogDriver.ReadLogs') {
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf-stream' });
      res.end();
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
