import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { JournalEncoder, MAX_MESSAGE_BYTES, journalKey } from '../../src/backends/journald.ts';
import { context, line } from './backend-context.ts';

/** Parses one native-protocol datagram into its fields (both the text and the binary form). */
function parseDatagram(datagram: Buffer): Map<string, Buffer> {
  const fields = new Map<string, Buffer>();
  for (let pos = 0; pos < datagram.length; ) {
    const eol = datagram.indexOf(0x0a, pos);
    const eq = datagram.indexOf(0x3d, pos);
    if (eq !== -1 && eq < eol) {
      fields.set(datagram.toString('latin1', pos, eq), datagram.subarray(eq + 1, eol));
      pos = eol + 1;
    } else {
      const size = Number(datagram.readBigUInt64LE(eol + 1));
      fields.set(datagram.toString('latin1', pos, eol), datagram.subarray(eol + 9, eol + 9 + size));
      pos = eol + 9 + size + 1;
    }
  }
  return fields;
}

/** The client-sent fields of each entry of Docker's journald driver, from `journalctl -o export`. */
function capturedEntries(): Map<string, string>[] {
  const text = fs.readFileSync(new URL('../fixtures/docker-captures/docker-journald.export', import.meta.url), 'utf8');
  return text
    .split('\n\n')
    .filter((entry) => entry.trim() !== '')
    .map((entry) => new Map(entry.split('\n').filter((l) => l !== '' && !l.startsWith('_')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
}

describe('journald entries match Docker', () => {
  const entries = capturedEntries();
  const ctx = context({
    id: entries[0]!.get('CONTAINER_ID_FULL')!,
    name: 'bkres-jd',
    tag: 'bkres-jd',
    imageName: 'bb:local',
    attributes: [['foo', 'bar'], ['E1', 'xyz']],
  });
  const encoder = new JournalEncoder(ctx);

  for (const [index, source] of [[0, 'stdout'], [1, 'stderr']] as const) {
    it(`has every field Docker sends (${source})`, () => {
      const expected = entries[index]!;
      const [datagram, ...more] = encoder.encode(line(expected.get('MESSAGE')!, source, '2026-11-21T23:08:09.717Z', 764_123));
      assert.equal(more.length, 0);
      const fields = parseDatagram(datagram!);
      for (const [key, value] of expected) {
        if (key.startsWith('__')) continue;
        assert.equal(fields.get(key)?.toString(), value, key);
      }
      assert.equal(fields.get('SYSLOG_TIMESTAMP')?.toString(), '2026-11-21T23:08:09.717764123Z');
      const docker = new Set([...expected.keys()].filter((k) => !k.startsWith('__')));
      assert.deepEqual([...fields.keys()].filter((k) => !docker.has(k)), ['SYSLOG_TIMESTAMP']);
    });
  }

  it('marks a fragment with the CONTAINER_PARTIAL_* fields', () => {
    const expected = entries[2]!;
    const id = expected.get('CONTAINER_PARTIAL_ID')!;
    const fragment = { ...line('partial', 'stdout', '2026-11-21T23:08:09Z'), partial: { id, ordinal: 1, last: false } };
    const fields = parseDatagram(encoder.encode(fragment)[0]!);
    for (const key of ['CONTAINER_PARTIAL_ID', 'CONTAINER_PARTIAL_ORDINAL', 'CONTAINER_PARTIAL_LAST', 'CONTAINER_PARTIAL_MESSAGE', 'MESSAGE']) {
      assert.equal(fields.get(key)?.toString(), expected.get(key), key);
    }
  });

  it('sends a value with a newline in the length-prefixed form', () => {
    const fields = parseDatagram(encoder.encode(line('a\nb', 'stdout', '2026-11-21T23:08:09Z'))[0]!);
    assert.equal(fields.get('MESSAGE')?.toString(), 'a\nb');
    assert.equal(fields.get('PRIORITY')?.toString(), '6');
  });

  it('splits a line longer than one entry into partial entries, losing nothing', () => {
    const long = Buffer.alloc(MAX_MESSAGE_BYTES * 2 + 10, 'z');
    const datagrams = encoder.encode(line(long, 'stderr', '2026-11-21T23:08:09Z')).map(parseDatagram);
    assert.equal(datagrams.length, 3);
    assert.deepEqual(Buffer.concat(datagrams.map((d) => d.get('MESSAGE')!)), long);
    assert.deepEqual(datagrams.map((d) => d.get('CONTAINER_PARTIAL_ORDINAL')?.toString()), ['1', '2', '3']);
    assert.deepEqual(datagrams.map((d) => d.get('CONTAINER_PARTIAL_LAST')?.toString()), ['false', 'false', 'true']);
    assert.equal(new Set(datagrams.map((d) => d.get('CONTAINER_PARTIAL_ID')?.toString())).size, 1);
    assert.equal(datagrams[2]!.has('CONTAINER_PARTIAL_MESSAGE'), false);
  });

  it('sanitises attribute keys as Docker does', () => {
    assert.equal(journalKey('com.example.team'), 'COM_EXAMPLE_TEAM');
    assert.equal(journalKey('__private-key'), 'PRIVATE_KEY');
    assert.equal(journalKey('E1'), 'E1');
  });
});

describe('journald entries with parse-json fields', () => {
  it('add top-level keys as fields named as attributes are, nested values as compact JSON, never over the driver\'s fields', () => {
    const ctx = context({ attributes: [['team', 'core']] });
    const raw = '{"level":"warn","http.status":503,"ok":false,"none":null,"req":{"id":"r1","path":"/a"},"tags":["x"],"multi":"a\\nb","message":"m","priority":"0","Team":"other","_pid":"1","9lives":"x","container_name":"evil"}';
    const [datagram, ...rest] = new JournalEncoder(ctx).encode({ ...line(raw, 'stderr', '2026-11-21T23:06:40Z'), fields: JSON.parse(raw) as Record<string, unknown> });
    assert.equal(rest.length, 0);
    const fields = parseDatagram(datagram!);
    const text = (name: string) => fields.get(name)?.toString();
    assert.equal(text('MESSAGE'), raw);
    assert.equal(text('PRIORITY'), '3');
    assert.equal(text('TEAM'), 'core');
    assert.equal(text('CONTAINER_NAME'), ctx.name);
    assert.equal(text('LEVEL'), 'warn');
    assert.equal(text('HTTP_STATUS'), '503');
    assert.equal(text('OK'), 'false');
    assert.equal(text('NONE'), 'null');
    assert.equal(text('REQ'), '{"id":"r1","path":"/a"}');
    assert.equal(text('TAGS'), '["x"]');
    assert.equal(text('MULTI'), 'a\nb');
    assert.equal(text('PID'), '1', 'a leading _ is dropped, as for attributes: a client cannot set trusted fields');
    assert.equal(fields.has('9LIVES'), false, 'journald refuses a name starting with a digit');
    // One value each: the JSON's message, priority, team and container_name added none.
    const names = [...datagram!.toString('latin1').matchAll(/^([A-Z0-9_]+)[=\n]/gm)].map((m) => m[1]);
    for (const name of ['MESSAGE', 'PRIORITY', 'TEAM', 'CONTAINER_NAME']) assert.equal(names.filter((n) => n === name).length, 1, name);
  });

  it('leaves the fields off a line split into several entries', () => {
    const raw = JSON.stringify({ blob: 'x'.repeat(MAX_MESSAGE_BYTES) });
    const datagrams = new JournalEncoder(context()).encode({ ...line(raw, 'stdout', '2026-11-21T23:06:40Z'), fields: JSON.parse(raw) as Record<string, unknown> });
    assert.equal(datagrams.length, 2);
    for (const d of datagrams) assert.equal(parseDatagram(d).has('BLOB'), false);
  });
});
