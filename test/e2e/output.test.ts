// What `docker logs` returns for a finished container: logship against json-file (and against
// `local` where json-file does not keep the bytes), and against the bytes the command printed.
import { after, before, describe, test } from 'node:test';
import { assertNoDaemonError, assertSameBytes, assertSameLogs, runPair } from './lib/compare.ts';
import { removeContainers, runToExit, sh } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { ensureTestImage } from './lib/image.ts';
import { readLogs, seqText } from './lib/logs.ts';

const fill = (n: number, ch: string) => ch.repeat(n);

describe('docker logs output, logship vs json-file', () => {
  before(async () => {
    await ensureTestImage();
  });
  after(removeContainers);

  test('plain lines', async () => {
    const pair = await runPair(sh('seq 1 5000; echo done'));
    const logs = await assertSameLogs(pair);
    assertSameBytes(logs.stdout, seqText(1, 5000) + 'done\n', 'stdout');
    assertSameBytes(logs.stderr, '', 'stderr');
  });

  test('stdout and stderr kept apart', async () => {
    const pair = await runPair(sh('for i in $(seq 1 300); do echo "out $i"; echo "err $i" >&2; done'));
    const logs = await assertSameLogs(pair);
    let out = '';
    let err = '';
    for (let i = 1; i <= 300; i++) {
      out += `out ${i}\n`;
      err += `err ${i}\n`;
    }
    assertSameBytes(logs.stdout, out, 'stdout');
    assertSameBytes(logs.stderr, err, 'stderr');
  });

  test('long lines: 16 KiB exactly, 100 KB and 1 MB', async () => {
    const script = [
      "head -c 16384 /dev/zero | tr '\\0' c; echo",
      'echo short',
      "head -c 100000 /dev/zero | tr '\\0' a; echo",
      "head -c 40000 /dev/zero | tr '\\0' e >&2; echo >&2",
      "head -c 1000000 /dev/zero | tr '\\0' b; echo",
      'echo end',
    ].join('; ');
    const pair = await runPair(sh(script));
    const logs = await assertSameLogs(pair);
    assertSameBytes(logs.stdout, `${fill(16384, 'c')}\nshort\n${fill(100000, 'a')}\n${fill(1000000, 'b')}\nend\n`, 'stdout');
    assertSameBytes(logs.stderr, `${fill(40000, 'e')}\n`, 'stderr');
  });

  test('output with no trailing newline', async () => {
    const pair = await runPair(sh("printf 'first\\nsecond\\nno newline at the end'; printf 'err line\\nerr without newline' >&2"));
    const logs = await assertSameLogs(pair);
    assertSameBytes(logs.stdout, 'first\nsecond\nno newline at the end', 'stdout');
    assertSameBytes(logs.stderr, 'err line\nerr without newline', 'stderr');
  });

  test('a long line with no trailing newline', async () => {
    const pair = await runPair(sh("echo start; head -c 50000 /dev/zero | tr '\\0' z"));
    const logs = await assertSameLogs(pair);
    assertSameBytes(logs.stdout, `start\n${fill(50000, 'z')}`, 'stdout');
  });

  test('empty lines', async () => {
    const pair = await runPair(sh("printf '\\n\\nx\\n\\n\\ny\\n\\n'; printf '\\n\\n' >&2"));
    const logs = await assertSameLogs(pair);
    assertSameBytes(logs.stdout, '\n\nx\n\n\ny\n\n', 'stdout');
    assertSameBytes(logs.stderr, '\n\n', 'stderr');
  });

  test('UTF-8 text', async () => {
    const text = 'héllo wörld ✓ 日本語 🚀 Ωμέγα\n\ttab and a trailing space \nquote " backslash \\ <html>&amp;\n';
    const pair = await runPair(['printf', '%s', text]);
    const logs = await assertSameLogs(pair);
    assertSameBytes(logs.stdout, text, 'stdout');
  });
});

describe('docker logs output, logship vs local (raw bytes)', () => {
  after(removeContainers);

  test('bytes that are not UTF-8 come back unchanged', async () => {
    // json-file stores JSON strings and replaces invalid UTF-8; `local` keeps the bytes, as must logship.
    const script = ["printf '\\377\\376 raw \\200\\201\\n'", "printf 'latin1 caf\\351\\n'", "printf '\\300\\n' >&2"].join('; ');
    const pair = await runPair(sh(script), { reference: 'local' });
    const logs = await assertSameLogs(pair);
    const expected = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from(' raw '),
      Buffer.from([0x80, 0x81, 0x0a]),
      Buffer.from('latin1 caf'),
      Buffer.from([0xe9, 0x0a]),
    ]);
    assertSameBytes(logs.stdout, expected, 'stdout');
    assertSameBytes(logs.stderr, Buffer.from([0xc0, 0x0a]), 'stderr');
  });

  test('a 4-byte character split across 16 KiB chunks comes back whole', async () => {
    // The daemon cuts long lines every 16384 bytes, here inside the emoji. json-file turns each
    // half into U+FFFD and the 20.10 local driver drops the newline after a split line, so neither
    // is a byte-exact reference: compare with what the command printed.
    const run = await runToExit({
      cmd: sh("head -c 16382 /dev/zero | tr '\\0' a; printf '\\360\\237\\232\\200 split\\nnext\\n'"),
      driver: PLUGIN,
    });
    const expected = Buffer.concat([Buffer.from(fill(16382, 'a')), Buffer.from([0xf0, 0x9f, 0x9a, 0x80]), Buffer.from(' split\nnext\n')]);
    const ours = await readLogs(run.id);
    assertNoDaemonError(ours, 'logship');
    assertSameBytes(ours.stdout, expected, 'stdout of logship');
  });
});
