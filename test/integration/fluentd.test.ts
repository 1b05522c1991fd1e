// The fluentd backend against the fluent org's forward-protocol server: tcp, unix and tls,
// Docker's record fields, EventTime, ack mode, and a receiver that never acks.
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Backend } from '../../src/delivery/backend.ts';
import { fluentdFactory } from '../../src/backends/fluentd.ts';
import { context, line } from '../unit/backend-context.ts';
import { FLUENTD_PORT, FluentReceiver, makeTlsMaterial, scratchDir, type TlsMaterial } from './lib/servers.ts';
import type { ContainerContext } from '../../src/shaping/container.ts';
import type { OutgoingLine } from '../../src/shaping/line.ts';

const signal = new AbortController().signal;
let dir: string;
let tls: TlsMaterial;

before(() => {
  dir = scratchDir('fluentd');
  tls = makeTlsMaterial(path.join(dir, 'tls'));
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function withReceiver(listen: net.ListenOptions, tlsOn: boolean, run: (receiver: FluentReceiver) => Promise<void>): Promise<void> {
  const receiver = new FluentReceiver({
    listenOptions: listen,
    ...(tlsOn ? { tlsOptions: { cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) } } : {}),
  });
  await receiver.listen();
  try {
    await run(receiver);
  } finally {
    await receiver.close();
  }
}

async function send(opts: Record<string, string>, ctx: ContainerContext, lines: OutgoingLine[]): Promise<void> {
  const backend = fluentdFactory.create(configureBackend(fluentdFactory, opts), ctx);
  try {
    await backend.send(lines, signal);
  } finally {
    await backend.close();
  }
}

const now = (): string => new Date().toISOString();

describe('fluentd backend → FluentServer', () => {
  const transports: [string, () => net.ListenOptions, boolean, () => Record<string, string>][] = [
    ['tcp', () => ({ host: '127.0.0.1', port: FLUENTD_PORT }), false, () => ({ 'fluentd-address': `127.0.0.1:${FLUENTD_PORT}` })],
    ['unix', () => ({ path: path.join(dir, 'fluent.sock') }), false, () => ({ 'fluentd-address': `unix://${path.join(dir, 'fluent.sock')}` })],
    ['tls', () => ({ host: '127.0.0.1', port: FLUENTD_PORT }), true, () => ({ 'fluentd-address': `tls://localhost:${FLUENTD_PORT}`, 'fluentd-tls-ca-cert': tls.ca })],
  ];
  for (const [name, listen, tlsOn, opts] of transports) {
    for (const ack of [false, true]) {
      it(`${name}${ack ? ', request-ack' : ''}: Docker's record fields arrive`, async () => {
        await withReceiver(listen(), tlsOn, async (receiver) => {
          const marker = `bk-fl-${name}-${ack}-${Date.now()}`;
          const ctx = context({ tag: 'docker.bk-test', attributes: [['foo', 'bar'], ['E1', 'xyz']] });
          const fragment = { ...line(`${marker} partial`, 'stdout', now()), partial: { id: 'f'.repeat(64), ordinal: 1, last: false } };
          await send({ ...opts(), 'fluentd-request-ack': String(ack), 'fluentd-sub-second-precision': 'true' }, ctx, [
            line(`${marker} out`, 'stdout', '2026-11-21T23:06:40.123Z', 456_789),
            line(`${marker} err`, 'stderr', now()),
            fragment,
          ]);
          const [out, err, partial] = await receiver.waitFor(marker, 3);
          assert.equal(out!.tag, 'docker.bk-test');
          assert.deepEqual(out!.time, { epoch: Date.parse('2026-11-21T23:06:40Z') / 1000, nano: 123_456_789 });
          assert.deepEqual(out!.record, {
            container_id: ctx.id,
            container_name: '/bk-test',
            source: 'stdout',
            log: `${marker} out`,
            foo: 'bar',
            E1: 'xyz',
          });
          assert.equal(err!.record.source, 'stderr');
          assert.equal(partial!.record.partial_message, 'true');
          assert.equal(partial!.record.partial_ordinal, '1');
          assert.equal(partial!.record.partial_last, 'false');
        });
      });
    }
  }

  it('integer seconds without sub-second precision', async () => {
    await withReceiver({ host: '127.0.0.1', port: FLUENTD_PORT }, false, async (receiver) => {
      await send({ 'fluentd-address': `127.0.0.1:${FLUENTD_PORT}` }, context(), [line('bk-fl-int', 'stdout', '2026-11-21T23:06:40.9Z')]);
      const [entry] = await receiver.waitFor('bk-fl-int', 1);
      assert.equal(entry!.time, Date.parse('2026-11-21T23:06:40Z') / 1000);
    });
  });

  it('request-ack: a receiver that never acks fails the batch (the engine retries it)', async () => {
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(FLUENTD_PORT, '127.0.0.1', resolve));
    try {
      const backend = fluentdFactory.create(
        configureBackend(fluentdFactory, { 'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`, 'fluentd-request-ack': 'true', 'fluentd-read-timeout': '300ms' }),
        context(),
      );
      await assert.rejects(backend.send([line('never acked', 'stdout', now())], signal), /no ack/);
      await backend.close();
    } finally {
      silent.close();
    }
  });

  it('request-ack: a batch fails while the receiver is down, then goes through on the same backend', async () => {
    const opts = { 'fluentd-address': `127.0.0.1:${FLUENTD_PORT}`, 'fluentd-request-ack': 'true' };
    const backend: Backend = fluentdFactory.create(configureBackend(fluentdFactory, opts), context());
    try {
      await withReceiver({ host: '127.0.0.1', port: FLUENTD_PORT }, false, async (receiver) => {
        await backend.send([line('bk-fl-before', 'stdout', now())], signal);
        await receiver.waitFor('bk-fl-before', 1);
      });
      await assert.rejects(backend.send([line('bk-fl-after', 'stdout', now())], signal));
      await withReceiver({ host: '127.0.0.1', port: FLUENTD_PORT }, false, async (receiver) => {
        await backend.send([line('bk-fl-after', 'stdout', now())], signal);
        assert.equal((await receiver.waitFor('bk-fl-after', 1)).length, 1);
      });
    } finally {
      await backend.close();
    }
  });
});
