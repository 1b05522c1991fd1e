import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { FileBudget, openFiles, readFileLimit } from '../../src/observability/file-limit.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('open-file limit', () => {
  it('reads RLIMIT_NOFILE from /proc/self/limits', () => {
    assert.deepEqual(readFileLimit(LIMITS), { soft: 1024, hard: 524288 });
    assert.deepEqual(readFileLimit(LIMITS.replace('1024                 524288', 'unlimited            unlimited')), { soft: Infinity, hard: Infinity });
    assert.equal(readFileLimit('nothing here'), undefined);
    const own = readFileLimit();
    assert.ok(own && own.soft >= 1 && own.soft <= own.hard, JSON.stringify(own));
    // Node raised the soft limit to the hard one when it started (an unlimited hard one: as far as the kernel allows).
    if (Number.isFinite(own.hard)) assert.equal(own.soft, own.hard);
    assert.ok(openFiles() >= 3);
  });

  it('is raised by Node itself from a soft limit of 1024 (what systemd gives containerd 2) to the hard one', () => {
    const hard = readFileLimit()!.hard;
    if (!Number.isFinite(hard) || hard <= 1024) return;
    const child = execFileSync('sh', ['-c', 'ulimit -S -n 1024 && exec "$0" -p "require(\'fs\').readFileSync(\'/proc/self/limits\', \'utf8\')"', process.execPath], {
      encoding: 'utf8',
    });
    assert.deepEqual(readFileLimit(child), { soft: hard, hard });
  });

  it('warns, with the numbers, when the files in use pass 80% of the limit, once until they fall below 70%', () => {
    const warnings: Record<string, number>[] = [];
    const budget = new FileBudget(20, (_msg, fields) => warnings.push(fields));
    const limit = { soft: 1024, hard: 1024 };
    budget.check(100, 320, limit); // 3 files a container: room for 334
    assert.equal(warnings.length, 0);
    budget.check(270, 830, limit);
    assert.equal(warnings.length, 1);
    assert.deepEqual(warnings[0], { openFiles: 830, limit: 1024, hardLimit: 1024, containers: 270, filesPerContainer: 3, roomForContainers: 334 });
    budget.check(280, 860, limit);
    assert.equal(warnings.length, 1, 'once');
    budget.check(200, 620, limit);
    budget.check(275, 845, limit);
    assert.equal(warnings.length, 2, 'again after falling below 70%');
  });

  it('counts what a container costs from the files in use beyond those of an empty plugin', () => {
    const warnings: Record<string, number>[] = [];
    // Several backends and readers: 10 files a container, so the limit holds 100.
    new FileBudget(20, (_msg, fields) => warnings.push(fields)).check(81, 830, { soft: 1024, hard: 4096 });
    assert.deepEqual(warnings, [{ openFiles: 830, limit: 1024, hardLimit: 4096, containers: 81, filesPerContainer: 10, roomForContainers: 100 }]);
  });

  it('never warns under an unlimited limit', () => {
    const warnings: unknown[] = [];
    new FileBudget(20, () => warnings.push(1)).check(100_000, 300_000, { soft: Infinity, hard: Infinity });
    assert.equal(warnings.length, 0);
  });
});
