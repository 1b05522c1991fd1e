// Looking at a container's store on the host, under the plugin's data mount, from outside the
// plugin: README's layout, <data>/containers/<full container id>/.
import fs from 'node:fs';
import path from 'node:path';
import { DATA_DIR } from './docker-client.ts';

export function findStoreDir(containerId: string, root = DATA_DIR): string | undefined {
  const dir = path.join(root, 'containers', containerId);
  return fs.existsSync(dir) ? dir : undefined;
}

export interface StoreFile {
  name: string;
  size: number;
}

export function listFiles(dir: string): StoreFile[] {
  const out: StoreFile[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.push({ name: path.relative(dir, p), size: fs.statSync(p).size });
  }
  return out;
}
