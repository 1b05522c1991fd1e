// Real receivers for the backend tests, each started by the test and stopped by PID:
// rsyslog (udp, tcp, tls, unix stream and datagram), systemd-journald in its own namespace,
// and the fluent org's forward-protocol server. Ports and paths are this suite's own.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FluentServer, type FluentServerOptions } from '@fluent-org/logger';

export const SYSLOG_PORT = 15514;
export const SYSLOG_TLS_PORT = 16514;
export const FLUENTD_PORT = 24324;

export function scratchDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bk-${name}-`));
}

export async function waitUntil<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export interface TlsMaterial {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate it signed, for localhost and 127.0.0.1 (backends.md §2.1). */
export function makeTlsMaterial(dir: string): TlsMaterial {
  fs.mkdirSync(dir, { recursive: true });
  const f = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=logship-test-ca');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return { ca: f('ca.pem'), caKey: f('ca.key'), cert: f('server.pem'), key: f('server.key') };
}

/** Starts a daemon with its output in a file; stop() ends it by PID. */
export class Daemon {
  readonly child: ChildProcess;
  readonly logFile: string;
  private readonly exited: Promise<void>;

  constructor(command: string, args: string[], logFile: string) {
    this.logFile = logFile;
    const out = fs.openSync(logFile, 'a');
    this.child = spawn(command, args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const killed = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!killed) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

function canConnect(options: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(options);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface RsyslogMessage {
  msg: string;
  rawmsg: string;
  hostname: string;
  'app-name': string;
  procid: string;
  msgid: string;
  syslogfacility: string;
  syslogseverity: string;
  programname: string;
  syslogtag: string;
  [key: string]: string;
}

/** rsyslog with the backends.md §2.1 configuration on this suite's ports. */
export class Rsyslog {
  readonly dir: string;
  readonly streamSocket: string;
  readonly dgramSocket: string;
  private daemon: Daemon | null = null;
  private readonly conf: string;

  constructor(dir: string, tls: TlsMaterial) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true });
    this.streamSocket = path.join(dir, 'stream.sock');
    this.dgramSocket = path.join(dir, 'dgram.sock');
    this.conf = path.join(dir, 'rsyslog.conf');
    fs.writeFileSync(
      this.conf,
      `global(workDirectory="${dir}" maxMessageSize="256k"
       DefaultNetstreamDriverCAFile="${tls.ca}"
       DefaultNetstreamDriverCertFile="${tls.cert}"
       DefaultNetstreamDriverKeyFile="${tls.key}")
# Shut down only once the queue is written out: a receiver stopped by a test loses nothing it took.
main_queue(queue.timeoutShutdown="20000" queue.timeoutActionCompletion="20000")
module(load="imudp")
module(load="imtcp" MaxSessions="100")
module(load="imptcp")
module(load="imuxsock" SysSock.Use="off")
template(name="raw"  type="string" string="%rawmsg%\\n")
template(name="json" type="string" string="%jsonmesg%\\n")
ruleset(name="out") {
  action(type="omfile" file="${dir}/raw.log"  template="raw")
  action(type="omfile" file="${dir}/parsed.jsonl" template="json")
}
input(type="imudp"  port="${SYSLOG_PORT}" address="127.0.0.1" ruleset="out")
input(type="imtcp"  port="${SYSLOG_PORT}" address="127.0.0.1" ruleset="out")
input(type="imtcp"  port="${SYSLOG_TLS_PORT}" address="127.0.0.1" ruleset="out"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imptcp" path="${this.streamSocket}" unlink="on" ruleset="out")
input(type="imuxsock" Socket="${this.dgramSocket}" ruleset="out" CreatePath="on" UseSpecialParser="off" ParseHostname="on")
`,
    );
  }

  async start(): Promise<void> {
    this.daemon = new Daemon('rsyslogd', ['-n', '-f', this.conf, '-i', path.join(this.dir, 'rsyslogd.pid')], path.join(this.dir, 'rsyslogd.out'));
    await waitUntil(
      async () => {
        if (!this.daemon?.running) throw new Error(`rsyslogd exited: ${fs.readFileSync(this.daemon!.logFile, 'utf8')}`);
        return (
          fs.existsSync(this.dgramSocket) &&
          (await canConnect({ path: this.streamSocket })) &&
          (await canConnect({ host: '127.0.0.1', port: SYSLOG_PORT })) &&
          (await canConnect({ host: '127.0.0.1', port: SYSLOG_TLS_PORT }))
        );
      },
      'rsyslogd to listen',
    );
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    this.daemon = null;
  }

  /** Every message received so far, as rsyslog parsed it (its %jsonmesg%). */
  parsed(): RsyslogMessage[] {
    const file = path.join(this.dir, 'parsed.jsonl');
    if (!fs.existsSync(file)) return [];
    const text = fs.readFileSync(file, 'utf8');
    // Only whole lines: rsyslog may be writing the last one.
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as RsyslogMessage);
  }

  /** The raw messages received so far (complete lines only). */
  rawLines(): string[] {
    const file = path.join(this.dir, 'raw.log');
    if (!fs.existsSync(file)) return [];
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').slice(0, -1);
  }

  /** Waits until `count` messages whose raw text contains `marker` arrived. */
  async waitFor(marker: string, count: number, timeoutMs = 15_000): Promise<RsyslogMessage[]> {
    return waitUntil(() => {
      const found = this.parsed().filter((m) => m.rawmsg.includes(marker));
      return found.length >= count ? found : undefined;
    }, `${count} syslog messages with '${marker}'`, timeoutMs);
  }
}

/** systemd-journald run by hand as namespace `name`: /run/systemd/journal.<name>/socket. */
export class Journald {
  readonly namespace: string;
  readonly runDir: string;
  readonly socket: string;
  private daemon: Daemon | null = null;
  private readonly logFile: string;

  constructor(namespace: string, logFile: string) {
    this.namespace = namespace;
    this.runDir = `/run/systemd/journal.${namespace}`;
    this.socket = path.join(this.runDir, 'socket');
    this.logFile = logFile;
  }

  async start(): Promise<void> {
    fs.rmSync(this.socket, { force: true }); // a stopped instance leaves it behind
    this.daemon = new Daemon('/lib/systemd/systemd-journald', [this.namespace], this.logFile);
    await waitUntil(() => {
      if (!this.daemon?.running) throw new Error(`systemd-journald exited: ${fs.readFileSync(this.logFile, 'utf8')}`);
      return fs.existsSync(this.socket);
    }, 'systemd-journald to create its socket');
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    this.daemon = null;
  }

  /** Entries with FIELD=value, as journalctl prints them in JSON (values may be byte arrays). */
  entries(match: string): Record<string, unknown>[] {
    const out = execFileSync('journalctl', [`--namespace=${this.namespace}`, '-o', 'json', '--no-pager', '--all', match], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    return out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** The MESSAGE of every entry with FIELD=value, in journal order. */
  messages(match: string): string[] {
    const out = execFileSync('journalctl', [`--namespace=${this.namespace}`, '-o', 'cat', '--no-pager', '--all', match], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    return out.split('\n').slice(0, -1);
  }

  /** Removes what the instance left under /run and /var/log. */
  removeState(): void {
    const machineId = fs.readFileSync('/etc/machine-id', 'utf8').trim();
    for (const dir of [this.runDir, `/run/log/journal/${machineId}.${this.namespace}`, `/var/log/journal/${machineId}.${this.namespace}`]) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

export interface FluentEntry {
  tag: string;
  time: number | { epoch: number; nano: number };
  record: Record<string, string>;
}

/** The fluent org's forward-protocol server; it acks chunks when asked to. */
export class FluentReceiver extends FluentServer {
  readonly received: FluentEntry[] = [];

  constructor(options: FluentServerOptions) {
    super(options);
  }

  protected override onEntry(tag: string, time: unknown, record: Record<string, unknown>): void {
    const t = time as number | { epoch: number; nano: number };
    this.received.push({
      tag,
      time: typeof t === 'number' ? t : { epoch: t.epoch, nano: t.nano },
      record: record as Record<string, string>,
    });
  }

  waitFor(marker: string, count: number, timeoutMs = 15_000): Promise<FluentEntry[]> {
    return waitUntil(() => {
      const found = this.received.filter((e) => String(e.record.log).includes(marker));
      return found.length >= count ? found : undefined;
    }, `${count} fluentd records with '${marker}'`, timeoutMs);
  }
}
