// The LogDriver HTTP API on the plugin's unix socket. Handlers only parse, call the
// registry and answer; every reply is 200 with JSON carrying `Err`, except ReadLogs,
// whose 200 body is a stream of frames (an error before streaming is a non-200 `{Err}`).
import fs from 'node:fs';
import type http from 'node:http';
import { once } from 'node:events';
import express, { type Request, type Response } from 'express';
import { BACKENDS } from '../backends/index.ts';
import { parseLogOptions } from '../lifecycle/options.ts';
import { LoggingError, type Registry } from '../lifecycle/registry.ts';
import { log } from '../observability/log.ts';
import { encodeReadLogsBatch } from './read-logs-stream.ts';
import { BadRequestError, parseReadLogs, parseStartLogging, parseStopLogging } from './wire.ts';
import { InvalidOptionError } from '../options/values.ts';

/** The daemon sends no Content-Type, and an empty body for Capabilities. */
function body(req: Request): unknown {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BadRequestError('request body is not JSON');
  }
}

function isClientError(err: unknown): boolean {
  return err instanceof BadRequestError || err instanceof InvalidOptionError || err instanceof LoggingError;
}

export function createApp(registry: Registry): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.raw({ type: () => true, limit: '4mb' }));

  app.post('/Plugin.Activate', (_req, res) => {
    res.json({ Implements: ['LogDriver'] });
  });

  app.post('/LogDriver.Capabilities', (_req, res) => {
    res.json({ Cap: { ReadLogs: true }, Err: '' });
  });

  app.post('/LogDriver.StartLogging', (req, res) => {
    try {
      const { file, info } = parseStartLogging(body(req));
      const options = registry.start(file, info);
      log.info('logging started', { container: info.id.slice(0, 12), name: info.name, backends: options.backends.map((b) => b.name).join(',') });
      res.json({ Err: '' });
    } catch (err) {
      if (!isClientError(err)) log.error('StartLogging failed', { error: String(err) });
      res.json({ Err: (err as Error).message });
    }
  });

  // Always success: an error here makes the daemon leak the FIFO and its plugin reference.
  app.post('/LogDriver.StopLogging', (req, res) => {
    try {
      registry.stop(parseStopLogging(body(req)));
    } catch (err) {
      log.warn('StopLogging with a bad request', { error: String(err) });
    }
    res.json({ Err: '' });
  });

  app.post('/LogDriver.ReadLogs', async (req: Request, res: Response) => {
    let request;
    try {
      request = parseReadLogs(body(req));
    } catch (err) {
      res.status(400).json({ Err: (err as Error).message });
      return;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    res.status(200).setHeader('Content-Type', 'application/x-protobuf-stream');
    res.flushHeaders();
    try {
      for await (const batch of registry.read(request.info.id, request.read, abort.signal)) {
        if (!res.write(encodeReadLogsBatch(batch))) {
          await once(res, 'drain', { signal: abort.signal });
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) {
        log.error('ReadLogs failed', { container: request.info.id.slice(0, 12), error: String(err) });
        // Cut the stream short, so the daemon tells the user the output is incomplete
        // instead of presenting a clean end.
        res.destroy(err as Error);
        return;
      }
    }
    res.end();
  });

  return app;
}

export async function listen(app: express.Express, socketPath: string): Promise<http.Server> {
  fs.rmSync(socketPath, { force: true }); // a socket file left by a previous process
  const server = app.listen(socketPath);
  await once(server, 'listening');
  // The daemon keeps idle connections for 30 s; closing them first races its reuse.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0; // ReadLogs with follow streams for as long as the container runs
  return server;
}
