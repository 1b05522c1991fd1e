// Containers run to exit on the local engine, as the benches time them: `make bench`'s runs
// (bench/drivers.ts) and the write rate bench/delivery-backends.ts compares shipping with.
import type Docker from 'dockerode';
import { docker } from '../test/e2e/lib/docker-client.ts';
import { ensureTestImage } from '../test/e2e/lib/image.ts';

const NAME_PREFIX = process.env.NAME_PREFIX ?? 'logship-bench-';
/** Every container made here, for the caller to remove. */
export const created: Docker.Container[] = [];
let named = 0;
export const containerName = (): string => `${NAME_PREFIX}${process.pid}-${++named}`;

/** Seconds from create to exit of `cmd` logging to `driver`. */
export async function runOnce(
  image: string,
  driver: string,
  cmd: string[],
  config: Record<string, string> = {},
): Promise<{ container: Docker.Container; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const container = await docker.createContainer({
    name: containerName(),
    Image: image,
    Cmd: cmd,
    Labels: { 'logship-bench': 'true' },
    HostConfig: { LogConfig: { Type: driver, Config: config }, NetworkMode: 'none' },
  });
  created.push(container);
  await container.start();
  const result = (await container.wait()) as { StatusCode: number };
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (result.StatusCode !== 0) throw new Error(`${driver}: ${cmd.join(' ')} exited with ${result.StatusCode}`);
  return { container, seconds };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

/**
 * The rate Docker writes `seq 1 lines` through `driver`, as `make bench` runs it (after a
 * warm-up run of 1,000 lines): the median of `rounds` runs, lines/s; the containers are removed.
 */
export async function seqWriteRate(driver: string, lines: number, rounds: number): Promise<{ rate: number; seconds: number[] }> {
  const image = await ensureTestImage();
  try {
    await runOnce(image, driver, ['seq', '1', '1000']);
    const seconds: number[] = [];
    for (let i = 0; i < rounds; i++) seconds.push((await runOnce(image, driver, ['seq', '1', String(lines)])).seconds);
    return { rate: lines / median(seconds), seconds };
  } finally {
    await Promise.all(created.splice(0).map((c) => c.remove({ force: true, v: true }).catch(() => {})));
  }
}
