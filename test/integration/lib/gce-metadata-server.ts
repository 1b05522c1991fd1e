// A GCE metadata server for the gcplogs tests (backends.md §8.4): project id, zone, instance
// name and id, and an access token, each with the `Metadata-Flavor: Google` header the
// clients check; anything else is 404. It records the paths asked for.
import http from 'node:http';

export const METADATA = {
  project: 'meta-project',
  zone: 'projects/123456/zones/europe-west1-b',
  name: 'fake-vm',
  id: '4520031799277581759',
  token: 'fake-metadata-token',
};

export class GceMetadataServer {
  readonly port: number;
  readonly requests: string[] = [];
  private server: http.Server | null = null;

  constructor(port: number) {
    this.port = port;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const values: Record<string, string> = {
      // What the clients probe to tell they are on GCE.
      '/computeMetadata/v1/instance': '',
      '/computeMetadata/v1/project/project-id': METADATA.project,
      '/computeMetadata/v1/instance/zone': METADATA.zone,
      '/computeMetadata/v1/instance/name': METADATA.name,
      '/computeMetadata/v1/instance/id': METADATA.id,
      '/computeMetadata/v1/instance/service-accounts/default/token': JSON.stringify({
        access_token: METADATA.token,
        expires_in: 3600,
        token_type: 'Bearer',
      }),
    };
    this.server = http.createServer((req, res) => {
      this.requests.push(req.url ?? '');
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      const value = values[pathname.replace(/\/$/, '')];
      res.setHeader('Metadata-Flavor', 'Google');
      if (value === undefined) {
        res.statusCode = 404;
        return res.end('not found');
      }
      res.setHeader('Content-Type', value.startsWith('{') ? 'application/json' : 'application/text');
      res.end(value);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
