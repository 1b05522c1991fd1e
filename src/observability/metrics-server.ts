// /metrics (Prometheus text format), /health, /status (JSON) and / (the status page) on the
// address of the METRICS_ADDRESS setting. The plugin runs in the host's network namespace, so
// this is a host port: whoever reaches it sees container names and backend errors.
import http from 'node:http';
import { once } from 'node:events';
import { metricsRegistry } from './metrics.ts';
import { STATUS_PAGE, type StatusSource, statusDocument } from './status.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `host:port`, `:port` (every interface) or `[v6]:port`; throws on anything else. */
export function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    throw new Error(`invalid METRICS_ADDRESS '${value}': expected host:port or :port, such as 127.0.0.1:9464`);
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

const NO_STATUS: StatusSource = { containers: () => [] };

export async function serveMetrics(
  address: ListenAddress,
  health: () => Record<string, unknown>,
  status: StatusSource = NO_STATUS,
): Promise<http.Server> {
  const startedAt = Date.now();
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (url === '/metrics') {
      metricsRegistry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metricsRegistry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(err)),
      );
    } else if (url === '/health') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'ok', ...health() }));
    } else if (url === '/status') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(statusDocument(status, startedAt)));
    } else if (url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(STATUS_PAGE);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /, /status, /metrics or /health\n');
    }
  });
  server.listen(address.port, address.host);
  await once(server, 'listening');
  return server;
}
