import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchParts } from '../../src/backends/batch-parts.ts';
import { line } from './backend-context.ts';

describe('BatchParts', () => {
  it('a retry of the same batch starts at the part that failed; another batch starts at its first', async () => {
    const parts = new BatchParts();
    const batch = [line('a', 'stdout', '2026-11-21T23:06:40Z')];
    const sent: string[] = [];
    let failOn: string | null = 'p2';
    const sendPart = async (part: string): Promise<void> => {
      if (part === failOn) {
        failOn = null;
        throw new Error(`${part} refused`);
      }
      sent.push(part);
    };
    await assert.rejects(parts.send(batch, ['p1', 'p2', 'p3'], sendPart), /p2 refused/);
    assert.deepEqual(sent, ['p1']);
    await parts.send(batch, ['p1', 'p2', 'p3'], sendPart);
    assert.deepEqual(sent, ['p1', 'p2', 'p3']);
    // Done: the same array sent again (a new batch never is) goes whole.
    await parts.send(batch, ['p1'], sendPart);
    failOn = 'q2';
    await assert.rejects(parts.send(batch, ['q1', 'q2'], sendPart));
    await parts.send([...batch], ['q1', 'q2'], sendPart);
    assert.deepEqual(sent, ['p1', 'p2', 'p3', 'p1', 'q1', 'q1', 'q2']);
  });
});
