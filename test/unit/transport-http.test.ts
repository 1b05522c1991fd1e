import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { SendError, isTransient } from '../../src/delivery/backend.ts';
import { HttpClient, classifyResponse, retryAfterMs } from '../../src/transport/http.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

describe('transport/http: requests, answers and their outcomes', () => {
  const seen: Seen[] = [];
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('ok');
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      answer(req, res);
    });
  });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends a gzip body with its headers, and reuses the connection', async () => {
    answer = (_req, res) => res.end('{"ok":true}');
    const client = new HttpClient({ name: 'test' });
    const ports = new Set<number>();
    server.on('connection', (socket: net.Socket) => ports.add(socket.remotePort!));
    for (let i = 0; i < 3; i++) {
      const response = await client.send({ url: `${base}/bulk?x=1`, body: `line ${i}`, gzip: true, headers: { 'content-type': 'text/plain' } }, AbortSignal.timeout(5000));
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), '{"ok":true}');
    }
    const last = seen.at(-1)!;
    assert.equal(last.method, 'POST');
    assert.equal(last.url, '/bulk?x=1');
    assert.equal(last.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(last.body).toString(), 'line 2');
    assert.equal(ports.size, 1);
    await client.close();
  });

  it('classifies 429 and 503 as transient with Retry-After, 408 transient, 400 and 413 not', async () => {
    const client = new HttpClient({ name: 'test' });
    const outcome = async (status: number, headers: Record<string, string> = {}): Promise<SendError> => {
      answer = (_req, res) => {
        res.writeHead(status, headers);
        res.end('refused: because');
      };
      const err = await client.send({ url: `${base}/x`, body: 'b' }, AbortSignal.timeout(5000)).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof SendError, String(err));
      return err;
    };
    const throttled = await outcome(429, { 'retry-after': '7' });
    assert.equal(throttled.transient, true);
    assert.equal(throttled.retryAfterMs, 7000);
    assert.match(throttled.message, /^test: POST http:\/\/127\.0\.0\.1:\d+\/x answered 429: refused: because$/);
    assert.equal((await outcome(503)).transient, true);
    assert.equal((await outcome(408)).transient, true);
    const bad = await outcome(400);
    assert.equal(bad.transient, false);
    assert.equal(bad.rejectCode, 'invalid');
    assert.equal((await outcome(413)).rejectCode, 'too_large');
    const own = new HttpClient({ name: 'test', transientStatuses: [401] });
    answer = (_req, res) => {
      res.writeHead(401);
      res.end();
    };
    await assert.rejects(own.send({ url: `${base}/x` }, AbortSignal.timeout(5000)), (err: SendError) => err.transient);
    await client.close();
    await own.close();
  });

  it('a deadline, an abort and a refused connection are transient', async () => {
    answer = () => {}; // never answers
    const client = new HttpClient({ name: 'test', timeoutMs: 200 });
    await assert.rejects(client.send({ url: `${base}/slow` }, AbortSignal.timeout(5000)), (err: Error) => isTransient(err) && /timed out after 200 ms/.test(err.message));
    const controller = new AbortController();
    const pending = client.send({ url: `${base}/slow`, timeoutMs: 5000 }, controller.signal);
    setTimeout(() => controller.abort(new Error('shutting down')), 50);
    await assert.rejects(pending, (err: Error) => isTransient(err) && err.message === 'shutting down');
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(client.send({ url: `http://127.0.0.1:${port}/` }, AbortSignal.timeout(5000)), (err: Error) => isTransient(err) && /ECONNREFUSED/.test(err.message));
    await client.close();
  });

  it('goes through the proxy it is given, and straight to a NO_PROXY host', async () => {
    answer = (_req, res) => res.end('via');
    const tunnels: string[] = [];
    const proxy = http.createServer();
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
      tunnels.push(req.url!);
      const [host, port] = req.url!.split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const proxied = new HttpClient({ name: 'test', proxy: { httpProxy: proxyUrl, httpsProxy: '', noProxy: '' } });
    assert.equal((await proxied.send({ url: `${base}/p` }, AbortSignal.timeout(5000))).body.toString(), 'via');
    assert.deepEqual(tunnels, [base.slice('http://'.length)]);
    const direct = new HttpClient({ name: 'test', proxy: { httpProxy: proxyUrl, httpsProxy: '', noProxy: '127.0.0.1' } });
    await direct.send({ url: `${base}/d` }, AbortSignal.timeout(5000));
    assert.equal(tunnels.length, 1);
    await proxied.close();
    await direct.close();
    proxy.closeAllConnections();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });

  it('reads Retry-After as seconds or a date; a 2xx is no failure', () => {
    assert.equal(retryAfterMs('120'), 120_000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(classifyResponse({ status: 204, headers: {}, body: Buffer.alloc(0), where: 'POST x' }, { name: 't' }), null);
  });
});
