// The operator's tools against real servers: Debian's prometheus scrapes the plugin's /metrics
// (the registry, a FIFO and the syslog backend over TCP, in this process), promtool checks the
// rules, every query of the Grafana dashboard is evaluated through Prometheus' HTTP API (each
// must parse and return series), and the lag alert fires while the receiver is down and clears
// once it is back; meanwhile Debian's chromium (playwright-core, no browser download) shows the
// status page: the container, its backend's lag, then the backend's error. Run it in a sandbox
// (scripts/isolate.sh): it binds loopback ports and starts prometheus.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { BACKENDS } from '../../src/backends/index.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { Registry } from '../../src/lifecycle/registry.ts';
import { serveMetrics } from '../../src/observability/metrics-server.ts';
import { setLiveSources } from '../../src/observability/metrics.ts';
import { START_LOGGING } from '../../src/protocol/wire.ts';
import type { ContainerInfo } from '../../src/shaping/container.ts';
import { frame } from '../unit/frames.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const output = path.join(repo, 'build', 'test', 'operators');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-operators-'));

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TCP syslog receiver that can be taken down (connections cut, port closed) and brought back. */
class Receiver {
  lines = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  readonly port: number;
  constructor(port: number) {
    this.port = port;
  }
  async up(): Promise<void> {
    this.server = net.createServer((s) => {
      this.sockets.add(s);
      s.on('data', (d) => (this.lines += d.toString().split('\n').length - 1));
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
    });
    this.server.listen(this.port, '127.0.0.1');
    await new Promise((r) => this.server!.once('listening', r));
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server!.close(r));
  }
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > end) assert.fail(`${what}: not within ${ms / 1000} s`);
    await sleep(250);
  }
}

let registry: Registry;
let prometheus: ReturnType<typeof spawn>;
let promUrl: string;
let metricsPort: number;
let receiver: Receiver;
let writer: NodeJS.Timeout;
let daemonEnd: number;
const metricsServer: { close?: () => void } = {};

before(async () => {
  fs.mkdirSync(output, { recursive: true });
  fs.mkdirSync(path.join(root, 'fifo'));
  receiver = new Receiver(await freePort());
  await receiver.up();
  registry = new Registry(path.join(root, 'data'), path.join(root, 'fifo'), { requests: START_LOGGING, backends: BACKENDS });
  setLiveSources(registry.liveSources());
  metricsPort = await freePort();
  const server = await serveMetrics({ host: '127.0.0.1', port: metricsPort }, () => ({}), registry.statusSource());
  metricsServer.close = () => server.close();

  const info: ContainerInfo = {
    id: 'a'.repeat(64), name: '/web', imageId: '', imageName: 'nginx', created: '', entrypoint: '', args: [], labels: {}, daemonName: 'docker',
    env: ['DB_PASSWORD=s3cret-value'],
    config: { backend: 'syslog', 'syslog-address': `tcp://127.0.0.1:${receiver.port}`, 'drop-pattern': 'health', 'redact-env': 'DB_PASSWORD' },
  };
  const fifo = path.join(root, 'fifo', 'web');
  execFileSync('mkfifo', [fifo]);
  daemonEnd = fs.openSync(fifo, fs.constants.O_RDWR);
  registry.start(fifo, info);
  let n = 0;
  // A line every 100 ms, every tenth a health check (filtered), as a container would print them.
  writer = setInterval(() => {
    n++;
    fs.writeSync(daemonEnd, frame({ line: n % 10 === 0 ? 'GET /health 200' : `request ${n} with s3cret-value`, timeNano: BigInt(Date.now()) * 1_000_000n }));
  }, 100);

  // The lag alert as shipped, its threshold and `for` lowered so the test need not wait 10 minutes.
  const rules = fs.readFileSync(path.join(repo, 'monitoring/prometheus-rules.yml'), 'utf8');
  const lowered = rules.replace('(logship_backend_lag_seconds) > 300\n        for: 5m', '(logship_backend_lag_seconds) > 3\n        for: 2s');
  assert.notEqual(lowered, rules, 'the lag rule is where the test expects it');
  fs.writeFileSync(path.join(root, 'rules.yml'), lowered);
  fs.writeFileSync(
    path.join(root, 'prometheus.yml'),
    `global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [${path.join(root, 'rules.yml')}]\n` +
      `scrape_configs: [{job_name: logship, static_configs: [{targets: ['127.0.0.1:${metricsPort}']}]}]\n`,
  );
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  prometheus = spawn('prometheus', [
    `--config.file=${path.join(root, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(root, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ], { stdio: ['ignore', 'ignore', fs.openSync(path.join(output, 'prometheus.log'), 'w')] });
});

after(async () => {
  clearInterval(writer);
  // The container's end of its FIFO: the daemon closes it when the container stops.
  fs.closeSync(daemonEnd);
  prometheus?.kill();
  metricsServer.close?.();
  // Bounded: a failed assertion must not leave the run waiting on a loop mid-retry.
  await Promise.race([registry?.shutdown(), sleep(5000)]);
  await receiver.down();
  fs.rmSync(root, { recursive: true, force: true });
});

async function query(expr: string): Promise<unknown[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: unknown[] } };
  assert.equal(body.status, 'success', `${expr}: ${body.error}`);
  return body.data.result;
}

/** LogshipBackendLag's state and the backend it names; null when it is neither pending nor firing. */
async function lagAlert(): Promise<{ state: string; backend: string } | null> {
  const res = await fetch(`${promUrl}/api/v1/alerts`);
  const body = (await res.json()) as { data: { alerts: { labels: { alertname: string; backend: string }; state: string }[] } };
  const alert = body.data.alerts.find((a) => a.labels.alertname === 'LogshipBackendLag');
  return alert ? { state: alert.state, backend: alert.labels.backend } : null;
}

describe('status page, dashboard and alerts', () => {
  it('promtool accepts the rules', () => {
    const out = execFileSync('promtool', ['check', 'rules', path.join(repo, 'monitoring/prometheus-rules.yml')], { encoding: 'utf8' });
    assert.match(out, /SUCCESS: 5 rules found/);
  });

  it('every dashboard query returns series; the lag alert fires with the backend down and clears; the page shows it', async (t) => {
    await until('prometheus scrapes the plugin', async () => (await query('up{job="logship"} == 1')).length > 0);
    await until('lines shipped', async () => receiver.lines > 20);
    await sleep(3000); // rate()s need two scrapes with lines in between
    const dashboard = JSON.parse(fs.readFileSync(path.join(repo, 'monitoring/grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) assert.ok((await query(expr)).length > 0, `${panel.title}: ${expr} returned no series`);
    }

    // A new empty profile (playwright passes it as --user-data-dir).
    const browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(root, 'chromium-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${metricsPort}/`);
      const row = page.locator('tr[data-container="aaaaaaaaaaaa"][data-backend="syslog"]');
      await row.waitFor({ timeout: 10_000 });
      assert.match(await page.locator('tr.container[data-container="aaaaaaaaaaaa"]').innerText(), /web \(aaaaaaaaaaaa\)\s+running/);
      assert.match(await row.locator('.lag-seconds').innerText(), /^\d+\.\d$/);
      assert.match(await row.innerText(), /filtered \d+/);

      // The alert below must be the outage's doing: with the backend keeping up it is quiet.
      assert.equal(await lagAlert(), null, 'LogshipBackendLag quiet while the backend keeps up');
      assert.equal(await row.locator('.error').innerText(), '', 'no error shown while the backend keeps up');

      await receiver.down();
      const downAt = Date.now();
      // "Within a few seconds": the page polls every 2 s, and the next line's send fails at once.
      const error = await until('the page shows the backend failing with its error', async () => {
        const text = await row.locator('.error').innerText();
        return text.length > 0 && /s ago: /.test(text) ? text : null;
      }, 8_000);
      t.diagnostic(`error shown ${((Date.now() - downAt) / 1000).toFixed(1)} s after the receiver went down: ${error}`);
      assert.match(error, /127\.0\.0\.1|ECONNREFUSED|closed|connect/i, 'the error says what failed');
      assert.equal(await row.locator('td.bad').innerText(), 'failing');
      const down = path.join(output, 'status-backend-down.png');
      fs.rmSync(down, { force: true });
      await page.screenshot({ path: down, fullPage: true });
      assert.ok(fs.statSync(down).size > 0, `the screenshot is in ${output}`);
      const firing = await until('LogshipBackendLag fires', async () => {
        const alert = await lagAlert();
        return alert?.state === 'firing' ? alert : null;
      });
      assert.equal(firing.backend, 'syslog', 'the alert names the backend that is down');
      assert.ok(!(await page.content()).includes('s3cret-value'), 'no secret on the page');

      await receiver.up();
      await until('LogshipBackendLag clears', async () => (await lagAlert()) === null);
      await until('the page shows the backend ok again', async () => (await row.locator('td.ok').count()) === 1);
      const back = path.join(output, 'status-backend-back.png');
      fs.rmSync(back, { force: true });
      await page.screenshot({ path: back, fullPage: true });
      assert.ok(fs.statSync(back).size > 0, `the screenshot is in ${output}`);
    } finally {
      await browser.close();
    }
  });
});
