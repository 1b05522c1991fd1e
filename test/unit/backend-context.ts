// A ContainerContext and lines for backend tests, shaped like what the engine resolves.
import type { Source } from '../../src/codec/log-entry.ts';
import type { ContainerContext } from '../../src/shaping/container.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

export function context(overrides: Partial<ContainerContext> = {}): ContainerContext {
  const id = overrides.id ?? 'f81fcd13a82e' + '0'.repeat(52);
  return {
    id,
    name: 'bk-test',
    imageId: 'sha256:' + 'a'.repeat(64),
    imageName: 'bb:local',
    created: '2026-11-21T23:06:40.000000000Z',
    command: '/bin/sh -c echo hi',
    daemonName: 'docker',
    tag: id.slice(0, 12),
    tagSet: false,
    attributes: [],
    hostname: 'vm',
    ...overrides,
  };
}

/** A line at an RFC 3339 time with an optional nanosecond fraction. */
export function line(text: string | Buffer, source: Source, iso: string, nanos = 0): OutgoingLine {
  const timeNano = BigInt(Date.parse(iso)) * 1_000_000n + BigInt(nanos);
  return { source, timeNano, line: typeof text === 'string' ? Buffer.from(text) : text };
}
