// Every log-opt a Docker engine accepts for a driver logship stands in for is accepted by logship,
// per engine version from 20.10 to the newest read (test/fixtures/engine-log-opts.ts): moving a
// container from that driver to logship never fails on an option the engine took.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { BACKENDS } from '../../src/backends/index.ts';
import { parseLogOptions } from '../../src/lifecycle/options.ts';
import { ENGINE_VERSIONS, logOptsFor, sampleConfig, type Driver } from '../fixtures/engine-log-opts.ts';

/** The drivers whose options logship takes with `backend=<driver>`; the rest need no backend. */
const SHIPPING: Driver[] = ['syslog', 'fluentd', 'journald', 'awslogs', 'gcplogs'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logship-engine-options-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
// The files are read at StartLogging, not parsed: any content does.
const pem = path.join(dir, 'client.pem');
fs.writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');

describe('the options of the engines logship runs on', () => {
  for (const version of ENGINE_VERSIONS) {
    const table = logOptsFor(version);
    it(`Docker ${version}: ${Object.entries(table).map(([d, keys]) => `${d} ${keys.length}`).join(', ')}`, () => {
      const refused: string[] = [];
      for (const [driver, keys] of Object.entries(table) as [Driver, string[]][]) {
        for (const key of keys) {
          const config = sampleConfig(driver, key, pem);
          if (SHIPPING.includes(driver)) config.backend = driver;
          try {
            parseLogOptions(config, BACKENDS);
          } catch (err) {
            refused.push(`${driver} ${key}=${config[key]}: ${(err as Error).message}`);
          }
        }
      }
      assert.deepEqual(refused, [], `logship refuses options Docker ${version} accepts`);
    });
  }

  it('lists what changed since 20.10 as the engines did', () => {
    const added = (from: string, to: string, driver: Driver) => logOptsFor(to)[driver].filter((k) => !logOptsFor(from)[driver].includes(k));
    assert.deepEqual(added('20.10', '29.7', 'fluentd'), ['fluentd-async-reconnect-interval', 'fluentd-read-timeout', 'fluentd-write-timeout']);
    assert.deepEqual(added('20.10', '29.7', 'awslogs'), ['awslogs-create-stream', 'awslogs-format']);
    assert.deepEqual(added('29.0', '29.5', 'local'), ['env', 'env-regex', 'labels', 'labels-regex', 'tag']);
    assert.ok(logOptsFor('27.5').fluentd.includes('fluentd-async-connect'));
    assert.ok(!logOptsFor('28.5').fluentd.includes('fluentd-async-connect'));
    assert.ok(!logOptsFor('28.5').fluentd.includes('fluentd-read-timeout'));
    assert.ok(logOptsFor('28.5').fluentd.includes('fluentd-write-timeout'));
  });
});
