// A receiver that closes with data it has not read (a restart) resets the connection, and
// what the kernel had taken for it is gone though the write succeeded. A stream with a
// replay window writes those batches again on the next connection.
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ReplayWindow, StreamConnection } from '../../src/transport/stream.ts';

/**
 * A receiver whose first connection is never read and then reset, as a receiver that stops
 * with a backlog does; every later connection is read to its end.
 */
async function receiver(): Promise<{ port: number; first: Promise<void>; reset(): void; received(): string; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const chunks: Buffer[] = [];
  let accepted!: () => void;
  const first = new Promise<void>((resolve) => (accepted = resolve));
  const server = net.createServer((socket) => {
    sockets.push(socket);
    if (sockets.length === 1) {
      socket.pause();
      accepted();
    } else socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    first,
    reset: () => sockets[0]!.resetAndDestroy(),
    received: () => Buffer.concat(chunks).toString(),
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function loseFirstConnection(
  replay: ReplayWindow | undefined,
  pauseMs = 0,
  batches: Buffer[][] = [[Buffer.from('one\n'), Buffer.from('two\n')]],
): Promise<string> {
  const server = await receiver();
  const connection = new StreamConnection({ kind: 'tcp', host: '127.0.0.1', port: server.port }, undefined, replay);
  const signal = new AbortController().signal;
  try {
    for (const batch of batches) await connection.write(batch, signal);
    await server.first;
    await sleep(pauseMs);
    server.reset();
    // The reset reaches the client's socket before the next batch is written.
    await sleep(50);
    await connection.write([Buffer.from('three\n')], signal);
    await sleep(100);
    return server.received();
  } finally {
    connection.close();
    await server.close();
  }
}

describe('a stream connection lost after a write', () => {
  it('without a replay window, the batch the kernel took is gone', async () => {
    assert.equal(await loseFirstConnection(undefined), 'three\n');
  });

  it('with one, the batches written just before the loss go again first, in order', async () => {
    assert.equal(await loseFirstConnection({ ms: 1000, maxBytes: 1 << 20 }), 'one\ntwo\nthree\n');
  });

  it('batches written longer ago than the window are not sent again', async () => {
    assert.equal(await loseFirstConnection({ ms: 100, maxBytes: 1 << 20 }, 300), 'three\n');
  });

  it('at most maxBytes of them, the newest kept', async () => {
    assert.equal(await loseFirstConnection({ ms: 1000, maxBytes: 4 }, 0, [[Buffer.from('one\n')], [Buffer.from('two\n')]]), 'two\nthree\n');
  });
});
