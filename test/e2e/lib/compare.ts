// Running one command under logship and under a built-in driver, and comparing what
// `docker logs` returns, byte for byte.
import assert from 'node:assert/strict';
import { runToExit, type Finished } from './containers.ts';
import { PLUGIN } from './docker-client.ts';
import { firstDifference, readLogs, type LogQuery, type Logs } from './logs.ts';

export function assertSameBytes(actual: Buffer, expected: Buffer | string, what: string): void {
  const exp = typeof expected === 'string' ? Buffer.from(expected, 'utf8') : expected;
  if (!actual.equals(exp)) {
    assert.fail(`${what}: ${firstDifference(actual, exp)}`);
  }
}

export function assertNoDaemonError(logs: Logs, what: string): void {
  assert.equal(logs.system.toString('utf8'), '', `${what}: the daemon reported an error in the log stream`);
}

export interface Pair {
  logship: Finished;
  reference: Finished;
}

/** Runs the same command with logship and with the reference driver (json-file unless told), at once. */
export async function runPair(
  cmd: string[],
  options: { reference?: string; logshipOpts?: Record<string, string>; referenceOpts?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Pair> {
  const [logship, reference] = await Promise.all([
    runToExit({ cmd, driver: PLUGIN, opts: options.logshipOpts ?? {} }, options.timeoutMs),
    runToExit({ cmd, driver: options.reference ?? 'json-file', opts: options.referenceOpts ?? {} }, options.timeoutMs),
  ]);
  return { logship, reference };
}

/**
 * Reads `docker logs` of both containers with the same query and asserts that stdout and stderr are
 * byte-identical and that the daemon reported no error. Returns logship's logs.
 */
export async function assertSameLogs(pair: Pair, query: LogQuery = {}, label = 'docker logs'): Promise<Logs> {
  const [ours, theirs] = await Promise.all([readLogs(pair.logship.id, query), readLogs(pair.reference.id, query)]);
  assertNoDaemonError(theirs, `${label} (reference driver)`);
  assertNoDaemonError(ours, `${label} (logship)`);
  assertSameBytes(ours.stdout, theirs.stdout, `${label}: stdout of logship vs the reference driver`);
  assertSameBytes(ours.stderr, theirs.stderr, `${label}: stderr of logship vs the reference driver`);
  return ours;
}
