// Rotation: with max-size and max-file, `docker logs` returns a contiguous suffix of the output,
// ending in its last line, of a size the limits allow; rotated files are gzipped when compress=true.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { assertNoDaemonError, runPair } from './lib/compare.ts';
import { pollUntil, removeContainers, sh } from './lib/containers.ts';
import { DATA_DIR } from './lib/docker-client.ts';
import { readLogs } from './lib/logs.ts';
import { findStoreDir, listFiles } from './lib/store.ts';

after(removeContainers);

const LAST = 200_000;
const MAX_SIZE = 100_000; // 100k, decimal like json-file
const MAX_FILE = 3;

/** Checks that text is `seq FIRST LAST` for some FIRST; returns the line count. */
function assertSeqSuffix(text: string, what: string): number {
  assert.ok(text.endsWith(`\n${LAST}\n`) || text === `${LAST}\n`, `${what}: does not end with the last line ${LAST}: ${JSON.stringify(text.slice(-30))}`);
  const lines = text.slice(0, -1).split('\n');
  const first = Number(lines[0]);
  assert.ok(Number.isInteger(first) && first >= 1, `${what}: first line ${JSON.stringify(lines[0])} is not a number`);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== String(first + i)) {
      assert.fail(`${what}: not contiguous: line ${i} is ${JSON.stringify(lines[i])}, expected ${first + i}`);
    }
  }
  return lines.length;
}

describe('rotation with max-size=100k max-file=3', () => {
  for (const compress of [false, true]) {
    test(`compress=${compress}: a contiguous suffix within the limits`, async () => {
      const opts = { 'max-size': '100k', 'max-file': String(MAX_FILE), compress: String(compress) };
      const pair = await runPair(sh(`seq 1 ${LAST}`), { logshipOpts: opts, referenceOpts: opts });

      const theirs = await readLogs(pair.reference.id);
      assertNoDaemonError(theirs, 'json-file');
      const theirCount = assertSeqSuffix(theirs.stdout.toString('latin1'), 'json-file (test setup)');
      assert.ok(theirCount < LAST, 'json-file rotated (test setup)');

      const ours = await readLogs(pair.logship.id);
      assertNoDaemonError(ours, 'logship');
      const text = ours.stdout.toString('latin1');
      const count = assertSeqSuffix(text, 'logship');
      // Plausible size: rotation happened, no more text than the files can hold (a stored record is
      // never smaller than its line), and at least one file's worth at <= 100 bytes per record.
      assert.ok(count < LAST, `logship kept all ${count} lines: no rotation`);
      assert.ok(ours.stdout.length <= MAX_SIZE * MAX_FILE, `logship returned ${ours.stdout.length} bytes, more than max-size x max-file`);
      assert.ok(count >= MAX_SIZE / 100, `logship kept only ${count} lines`);
      // Reading again gives the same thing.
      const again = await readLogs(pair.logship.id);
      assert.ok(again.stdout.equals(ours.stdout), 'a second read differs');
      // --tail reaches into the rotated files the same way.
      const tail = await readLogs(pair.logship.id, { tail: count - 1 });
      assert.equal(tail.stdout.toString('latin1'), text.slice(text.indexOf('\n') + 1), '--tail (kept lines - 1)');

      // On disk: at most max-file files' worth of bytes, and gzip only with compress=true.
      const dir = findStoreDir(pair.logship.id);
      assert.ok(dir, `no directory named after the container under ${DATA_DIR}`);
      if (compress) {
        await pollUntil('a gzipped rotated file', () => (listFiles(dir).some((f) => f.name.endsWith('.gz')) ? true : undefined));
      } else {
        const gz = listFiles(dir).filter((f) => f.name.endsWith('.gz'));
        assert.deepEqual(gz, [], 'gzipped files with compress=false');
      }
      const files = listFiles(dir);
      const total = files.reduce((sum, f) => sum + f.size, 0);
      assert.ok(total <= MAX_SIZE * MAX_FILE + 65_536, `the store holds ${total} bytes: ${JSON.stringify(files)}`);
    });
  }
});
