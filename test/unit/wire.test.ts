import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestError, parseGoTime, parseReadLogs, parseStartLogging } from '../../src/protocol/wire.ts';

const ID = 'a'.repeat(64);

describe('wire', () => {
  it('reads Go times to the nanosecond, in any offset', () => {
    assert.equal(parseGoTime('2026-11-21T22:51:58.687098323Z', 'Since'), 1_795_301_518_687_098_323n);
    assert.equal(parseGoTime('2026-11-21T23:51:58.687098323+01:00', 'Since'), 1_795_301_518_687_098_323n);
    assert.equal(parseGoTime('2026-11-21T22:51:58Z', 'Since'), 1_795_301_518_000_000_000n);
    assert.equal(parseGoTime('2026-11-21T22:51:58.5Z', 'Since'), 1_795_301_518_500_000_000n);
    assert.equal(parseGoTime('0001-01-01T00:00:00Z', 'Since'), null);
    assert.throws(() => parseGoTime('yesterday', 'Since'), BadRequestError);
  });

  it('parses ReadLogs with the key the daemon sends', () => {
    const r = parseReadLogs({ Info: { ContainerID: ID }, Config: { Since: '0001-01-01T00:00:00Z', Until: '0001-01-01T00:00:00Z', Tail: 2, Follow: true } });
    assert.deepEqual(r.read, { sinceNano: null, untilNano: null, tail: 2, follow: true });
  });

  it('rejects container ids that could escape the data folder', () => {
    for (const id of ['../../etc', `${'a'.repeat(63)}/`, 'A'.repeat(64), '']) {
      assert.throws(() => parseStartLogging({ File: '/run/docker/logging/x', Info: { ContainerID: id } }), BadRequestError);
    }
  });

  it('treats null Config and null fields as empty', () => {
    const r = parseStartLogging({ File: '/f', Info: { ContainerID: ID, Config: null, ContainerLabels: null, ContainerEnv: null } });
    assert.deepEqual(r.info.config, {});
  });
});
