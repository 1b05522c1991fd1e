// The metrics endpoint of the installed plugin: METRICS_ADDRESS set with `docker plugin set`,
// then /health answers and /metrics counts exactly the lines a container logged. The plugin
// is disabled and enabled around the setting, so its counters start from zero.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { pollUntil, removeContainers, runToExit, sh } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { enablePlugin } from './lib/plugin.ts';

const exec = promisify(execFile);
const ADDRESS = process.env.LOGSHIP_METRICS_ADDRESS ?? '127.0.0.1:9471';

async function setMetricsAddress(value: string): Promise<void> {
  await exec('docker', ['plugin', 'disable', PLUGIN]);
  try {
    await exec('docker', ['plugin', 'set', PLUGIN, `METRICS_ADDRESS=${value}`]);
  } finally {
    await enablePlugin();
  }
}

/** The value of a series, e.g. `logship_lines_stored_total` or `x{reason="corrupt"}`; 0 if absent. */
function series(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

async function scrape(path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://${ADDRESS}${path}`);
  return { status: res.status, text: await res.text() };
}

before(() => setMetricsAddress(ADDRESS));
after(async () => {
  await removeContainers();
  await setMetricsAddress('');
});

describe('metrics', () => {
  test('/health answers and /metrics counts the lines a container logged', async () => {
    const health = await scrape('/health');
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.text) as { status: string }).status, 'ok');

    const lines = 5000;
    await runToExit({ cmd: sh(`seq 1 ${lines}; echo oops >&2`), driver: PLUGIN });
    // The container's exit can be reported before the plugin has read the end of its FIFO.
    const text = await pollUntil('the stored count to reach the lines logged', async () => {
      const res = await scrape('/metrics');
      assert.equal(res.status, 200);
      return series(res.text, 'logship_lines_stored_total') >= lines + 1 ? res.text : undefined;
    });
    assert.equal(series(text, 'logship_lines_received_total'), lines + 1, 'received');
    assert.equal(series(text, 'logship_lines_stored_total'), lines + 1, 'stored');
    assert.equal(series(text, 'logship_lines_dropped_total{reason="corrupt"}'), 0, 'dropped');
    for (const name of ['logship_store_bytes', 'logship_open_containers', 'logship_event_loop_delay_seconds{stat="max"}']) {
      assert.ok(text.includes(`\n${name} `), `${name} is exported`);
    }
  });
});
