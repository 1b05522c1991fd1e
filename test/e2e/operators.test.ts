// Issue 17's controls through the real engine and plugin, to a forward (fluentd) receiver, the
// three containers at once: a filter drops exactly the health checks (counted); a container
// whose env holds DB_PASSWORD and prints it ships the line masked while `docker logs` shows it
// as printed (and masked with redact-local); a container over its rate ships every line in
// order (wait mode loses nothing), in batches no larger than the bucket.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContainer, removeContainers, sh, waitExit } from './lib/containers.ts';
import { PLUGIN } from './lib/docker-client.ts';
import { readLogs } from './lib/logs.ts';
import { FluentReceiver, waitUntil } from '../integration/lib/servers.ts';

const PORT = 24470;
let fluent: FluentReceiver;
const opts = { backend: 'fluentd', 'fluentd-address': `127.0.0.1:${PORT}` };
const shipped = (id: string) => fluent.received.filter((e) => String(e.record.container_id) === id).map((e) => String(e.record.log));

before(async () => {
  fluent = new FluentReceiver({ listenOptions: { host: '127.0.0.1', port: PORT } });
  await fluent.listen();
});
after(async () => {
  await removeContainers();
  await fluent?.close();
});

describe('filters, redaction and rate limits on the real engine', { concurrency: true }, () => {
  test('drop-pattern ships all but the health checks', async () => {
    const script = Array.from({ length: 50 }, (_, i) => `echo '${i % 5 === 0 ? 'GET /health 200' : `request ${i}`}'`).join('\n');
    const c = await createContainer({ cmd: sh(script), driver: PLUGIN, opts: { ...opts, 'drop-pattern': '^GET /health' } });
    await c.start();
    assert.equal(await waitExit(c), 0);
    const expected = Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 5 !== 0).map((i) => `request ${i}`);
    await waitUntil(() => shipped(c.id).length >= expected.length, 'the shipped lines', 30_000);
    assert.deepEqual(shipped(c.id), expected);
    assert.equal(String((await readLogs(c.id)).stdout).split('\n').filter((l) => l === 'GET /health 200').length, 10, 'docker logs keeps them');
  });

  test('redact-env masks DB_PASSWORD in what ships; docker logs shows it as printed, or masked with redact-local', async () => {
    const env = ['DB_PASSWORD=pa55-w0rd-e2e'];
    const script = "echo \"connecting with $DB_PASSWORD\"\necho done";
    const plain = await createContainer({ cmd: sh(script), driver: PLUGIN, env, opts: { ...opts, 'redact-env': 'DB_PASSWORD' } });
    const local = await createContainer({ cmd: sh(script), driver: PLUGIN, env, opts: { ...opts, 'redact-env': 'DB_PASSWORD', 'redact-local': 'true' } });
    await Promise.all([plain.start(), local.start()]);
    assert.deepEqual(await Promise.all([waitExit(plain), waitExit(local)]), [0, 0]);
    for (const c of [plain, local]) {
      await waitUntil(() => shipped(c.id).length >= 2, 'the shipped lines', 30_000);
      assert.deepEqual(shipped(c.id), ['connecting with ***', 'done']);
    }
    assert.equal(String((await readLogs(plain.id)).stdout), 'connecting with pa55-w0rd-e2e\ndone\n');
    assert.equal(String((await readLogs(local.id)).stdout), 'connecting with ***\ndone\n');
    const short = await createContainer({ cmd: sh('echo x'), driver: PLUGIN, env: ['DB_PASSWORD=1234'], opts: { ...opts, 'redact-env': 'DB_PASSWORD' } });
    await assert.rejects(short.start(), /redact-env.*DB_PASSWORD is shorter than 6 characters/);
  });

  test('a container over its rate ships every line in order (wait mode)', async () => {
    const c = await createContainer({ cmd: sh('seq 1 300'), driver: PLUGIN, opts: { ...opts, 'rate-limit-lines': '100', 'rate-limit-burst': '500ms' } });
    await c.start();
    assert.equal(await waitExit(c), 0, 'the container is not slowed: it exits while lines wait');
    await waitUntil(() => shipped(c.id).length >= 300, 'the shipped lines', 30_000);
    assert.deepEqual(shipped(c.id), Array.from({ length: 300 }, (_, i) => String(i + 1)));
    assert.equal(String((await readLogs(c.id)).stdout), Array.from({ length: 300 }, (_, i) => `${i + 1}\n`).join(''));
  });
});
