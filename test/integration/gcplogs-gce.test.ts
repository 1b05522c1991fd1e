// The gcplogs backend as on a GCE VM: a fake metadata server (GCE_METADATA_HOST) gives the
// project, the instance and an access token, and the endpoint speaks gRPC over TLS, as
// Cloud Logging does, so the client sends `authorization: Bearer <token>`. Its own file: the
// metadata server's presence is looked up once per process, as Docker does.
import { configureBackend, NO_ENVIRONMENT } from '../../src/lifecycle/options.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { context, line } from '../unit/backend-context.ts';
import { GceMetadataServer, METADATA } from './lib/gce-metadata-server.ts';
import { makeTlsMaterial, scratchDir } from './lib/servers.ts';

const dir = scratchDir('gcplogs-gce');
const tls = makeTlsMaterial(path.join(dir, 'tls'));
const metadata = new GceMetadataServer(15013);
// The test CA stands in for the system CAs: grpc-js reads this when it loads, hence gRPC,
// the endpoint and the backend are imported after it is set.
process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = tls.ca;
process.env.GCE_METADATA_HOST = metadata.host;
const grpc = await import('@grpc/grpc-js');
const { CloudLoggingEndpoint } = await import('./lib/cloud-logging-endpoint.ts');
const { gcplogsFactory, } = await import('../../src/backends/gcplogs.ts');
const endpoint = new CloudLoggingEndpoint(15012);

before(async () => {
  await metadata.start();
  await endpoint.start(
    grpc.ServerCredentials.createSsl(null, [{ private_key: fs.readFileSync(tls.key), cert_chain: fs.readFileSync(tls.cert) }]),
  );
});

after(async () => {
  endpoint.stop();
  await metadata.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('gcplogs backend on GCE (metadata server, TLS endpoint)', () => {
  it("discovers the project and the instance, and authenticates with the metadata server's token", async () => {
    const backend = gcplogsFactory.create(configureBackend(gcplogsFactory, { 'gcp-endpoint': `localhost:${endpoint.port}`, 'gcp-meta-zone': 'ignored-on-gce' }), context());
    try {
      await backend.send([line('on-gce', 'stdout', '2026-11-21T23:06:40Z')], new AbortController().signal);
    } finally {
      await backend.close();
    }
    const [request] = endpoint.accepted;
    assert.equal(request!.authorization, `Bearer ${METADATA.token}`);
    assert.equal(request!.logName, `projects/${METADATA.project}/logs/gcplogs-docker-driver`);
    assert.deepEqual(request!.resource, { type: 'gce_instance', labels: { instance_id: METADATA.id, zone: 'europe-west1-b' } });
    assert.deepEqual(request!.entries[0]!.jsonPayload.instance, { zone: 'europe-west1-b', name: METADATA.name, id: METADATA.id });
    assert.ok(metadata.requests.some((r) => r.startsWith('/computeMetadata/v1/instance/service-accounts/default/token')));
    assert.deepEqual(endpoint.violations, []);
  });
});
