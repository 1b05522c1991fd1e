// A private registry on 127.0.0.1 with TLS from a throwaway CA: Debian's `docker-registry`
// (distribution 2.8), certificates made with openssl, and the CA given to the engine through
// /etc/docker/certs.d/<host:port>/ca.crt (read per request, so no daemon restart).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Registry {
  host: string;
  port: number;
  /** host:port, the reference prefix. */
  address: string;
  caPath: string;
  logPath: string;
  pid: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.message}`);
  }
}

/** Makes ca.crt/ca.key and a server certificate for 127.0.0.1 (IP SAN) signed by it, in dir. */
export async function makeCertificates(dir: string, ip = '127.0.0.1'): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=logship e2e test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${ip}`], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'),
    `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt',
    '-days', '2', '-extfile', 'server.ext'], dir);
}

function probe(port: number, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/v2/', ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

/**
 * Starts `docker-registry serve` on 127.0.0.1:<free port> with TLS, its output going to a file,
 * installs the CA for the engine, and waits until /v2/ answers over TLS with that CA.
 */
export async function startRegistry(dir: string): Promise<Registry> {
  const binary = ['/usr/bin/docker-registry', '/usr/local/bin/docker-registry'].find((p) => fs.existsSync(p));
  if (!binary) throw new Error('docker-registry not found: install the Debian package docker-registry');
  await makeCertificates(dir);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${address}`,
    '  tls:',
    `    certificate: ${path.join(dir, 'server.crt')}`,
    `    key: ${path.join(dir, 'server.key')}`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'config.yml'), config);

  const certsDir = path.join('/etc/docker/certs.d', address);
  fs.mkdirSync(certsDir, { recursive: true });
  const caPath = path.join(certsDir, 'ca.crt');
  fs.copyFileSync(path.join(dir, 'ca.crt'), caPath);

  const logPath = path.join(dir, 'registry.log');
  const logFd = fs.openSync(logPath, 'a');
  const child = spawn(binary, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', logFd, logFd], detached: false });
  fs.closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${binary}`);

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000);
      await exited(child);
      clearTimeout(timer);
    }
    fs.rmSync(certsDir, { recursive: true, force: true });
  };

  const ca = fs.readFileSync(path.join(dir, 'ca.crt'));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}):\n${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
    }
    try {
      const status = await probe(port, ca);
      if (status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on https://${address}/v2/ within 15 s:\n${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: '127.0.0.1', port, address, caPath, logPath, pid, stop };
}
