import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { ALL_SETTINGS, InvalidSettingError, dropEmptySettings, parseQuota, parseRetention, settingsFromEnv } from '../../src/settings.ts';

describe('settings', () => {
  it('take an empty setting for unset (docker plugin set cannot unset one)', () => {
    const env: NodeJS.ProcessEnv = { AWS_REGION: '', AWS_ACCESS_KEY_ID: 'AKID', AWS_SHARED_CREDENTIALS_FILE: '', LOG_LEVEL: '' };
    dropEmptySettings(env);
    assert.deepEqual(env, { AWS_ACCESS_KEY_ID: 'AKID' });
    assert.equal(settingsFromEnv(env).logLevel, 'info');
  });

  it('defaults: retention of a week, no quota', () => {
    const s = settingsFromEnv({});
    assert.equal(s.retentionMs, 7 * 86_400_000);
    assert.equal(s.diskQuotaBytes, 0);
  });

  it('reads retention durations, and 0 for forever', () => {
    const cases: [string, number][] = [['0', 0], ['7d', 604_800_000], ['168h', 604_800_000], ['1d12h', 129_600_000], ['90m', 5_400_000], ['30s', 30_000], ['1.5h', 5_400_000]];
    for (const [text, ms] of cases) assert.equal(parseRetention(text), ms, text);
  });

  it('rejects other retentions with a message naming the setting and the form', () => {
    for (const bad of ['', '7', 'forever', '-1d', '7 d', '0s', '500ms', '1w']) {
      assert.throws(() => parseRetention(bad), (err: Error) => err instanceof InvalidSettingError && /RETENTION.*7d/.test(err.message), bad);
    }
  });

  it('reads quotas in max-size units, and 0 for none', () => {
    assert.equal(parseQuota('0'), 0);
    assert.equal(parseQuota('10g'), 10_000_000_000);
    assert.equal(parseQuota('500m'), 500_000_000);
    for (const bad of ['lots', '-1g', '10x']) {
      assert.throws(() => parseQuota(bad), (err: Error) => err instanceof InvalidSettingError && /DISK_QUOTA.*10g/.test(err.message), bad);
    }
  });

  it('takes them from the environment', () => {
    const s = settingsFromEnv({ RETENTION: '2h', DISK_QUOTA: '1g' });
    assert.equal(s.retentionMs, 7_200_000);
    assert.equal(s.diskQuotaBytes, 1_000_000_000);
    assert.throws(() => settingsFromEnv({ DISK_QUOTA: 'big' }), /DISK_QUOTA/);
  });

  it("config.json's settable env is the settings' schemas: the same names, each with its default", () => {
    const config = JSON.parse(fs.readFileSync(new URL('../../config.json', import.meta.url), 'utf8')) as { env: { name: string; value: string; settable?: string[] }[] };
    const settable = config.env.filter((e) => e.settable?.includes('value'));
    assert.deepEqual(settable.map((e) => e.name).sort(), ALL_SETTINGS.map((s) => s.key).sort());
    for (const e of settable) assert.equal(e.value, ALL_SETTINGS.find((s) => s.key === e.name)!.default ?? '', e.name);
    // The rest is fixed for the plugin's process, never a setting.
    assert.deepEqual(config.env.filter((e) => !e.settable).map((e) => e.name), ['GLIBC_TUNABLES']);
  });
});
