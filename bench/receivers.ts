// The local receivers bench/delivery-backends.ts ships to: the integration tests' own
// (test/integration/lib), each started on loopback and described by where it listens.
//
// Run as a program it starts one of them in this process, for a bench that wants its receiver
// in a process of its own (its CPU not the shipper's): it prints one JSON line, the
// receiver's address, on stdout, and stops the receiver and exits when its stdin closes.
//   node bench/receivers.ts NAME DIR
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CloudLoggingEndpoint } from '../test/integration/lib/cloud-logging-endpoint.ts';
import { CloudWatchEndpoint } from '../test/integration/lib/cloudwatch-endpoint.ts';
import { ElasticsearchEndpoint } from '../test/integration/lib/elasticsearch-endpoint.ts';
import { GelfServer } from '../test/integration/lib/gelf-server.ts';
import { HecServer } from '../test/integration/lib/hec-server.ts';
import { LokiEndpoint } from '../test/integration/lib/loki-endpoint.ts';
import { OtlpReceiver } from '../test/integration/lib/otlp-receiver.ts';
import { FluentReceiver, Journald, Rsyslog, SYSLOG_PORT, makeTlsMaterial } from '../test/integration/lib/servers.ts';

/** Where a receiver listens: a TCP port on 127.0.0.1, or a unix socket (journald). */
export interface ReceiverAddress {
  port: number;
  socket?: string;
}

export interface RunningReceiver {
  address: ReceiverAddress;
  stop(): Promise<void>;
}

export const SPLUNK_TOKEN = 'bench-token';

const portOf = (url: string): number => Number(new URL(url).port);

/** Each backend's receiver; `dir` is a scratch folder of its own. */
export const RECEIVERS: Record<string, (dir: string) => Promise<RunningReceiver>> = {
  fluentd: async () => {
    const r = new FluentReceiver({ listenOptions: { port: 24334, host: '127.0.0.1' } });
    await r.listen();
    return { address: { port: 24334 }, stop: () => r.close() };
  },
  syslog: async (dir) => {
    const r = new Rsyslog(path.join(dir, 'rsyslog'), makeTlsMaterial(path.join(dir, 'tls')));
    await r.start();
    return { address: { port: SYSLOG_PORT }, stop: () => r.stop() };
  },
  journald: async (dir) => {
    const r = new Journald('logship-bench', path.join(dir, 'journald.out'));
    r.removeState();
    await r.start();
    return { address: { port: 0, socket: r.socket }, stop: () => r.stop() };
  },
  elasticsearch: async () => {
    const r = new ElasticsearchEndpoint({ mode: 'elasticsearch' });
    await r.listen();
    return { address: { port: portOf(r.url) }, stop: () => r.close() };
  },
  awslogs: async () => {
    const r = new CloudWatchEndpoint();
    await r.start();
    return { address: { port: portOf(r.url) }, stop: () => r.stop() };
  },
  gcplogs: async () => {
    const r = new CloudLoggingEndpoint(18095);
    await r.start();
    return { address: { port: 18095 }, stop: async () => r.stop() };
  },
  gelf: async () => {
    const r = new GelfServer(12202);
    await r.start();
    return { address: { port: 12202 }, stop: () => r.stop() };
  },
  splunk: async () => {
    const r = new HecServer({ port: 0, token: SPLUNK_TOKEN, indexes: ['main'] });
    await r.listen();
    return { address: { port: portOf(r.url) }, stop: () => r.close() };
  },
  loki: async () => {
    const r = new LokiEndpoint();
    await r.listen();
    return { address: { port: portOf(r.url) }, stop: () => r.close() };
  },
  otlp: async () => {
    const r = new OtlpReceiver();
    await r.start();
    return { address: { port: portOf(r.httpUrl) }, stop: () => r.stop() };
  },
};

const SELF = fileURLToPath(import.meta.url);

/**
 * Starts receiver `name` in a child process (its output in DIR/NAME.out); stop() closes the
 * child's stdin and waits for it to exit.
 */
export async function startInChild(name: string, dir: string): Promise<RunningReceiver> {
  const out = fs.openSync(path.join(dir, `${name}.out`), 'a');
  const child = spawn(process.execPath, [SELF, name, dir], { stdio: ['pipe', 'pipe', out] });
  fs.closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve(line));
    child.once('exit', (code) => reject(new Error(`receiver ${name} exited (${code}) before listening: see ${path.join(dir, `${name}.out`)}`)));
  });
  return {
    address: JSON.parse(first) as ReceiverAddress,
    async stop() {
      child.stdin!.end();
      await exited;
    },
  };
}

if (process.argv[1] === SELF) {
  const [name, dir] = process.argv.slice(2);
  const start = RECEIVERS[name ?? ''];
  if (!start || !dir) {
    console.error(`usage: node bench/receivers.ts ${Object.keys(RECEIVERS).join('|')} DIR`);
    process.exit(2);
  }
  const receiver = await start(dir);
  process.stdout.write(JSON.stringify(receiver.address) + '\n');
  process.stdin.resume();
  process.stdin.once('end', () => void receiver.stop().then(() => process.exit(0)));
}
