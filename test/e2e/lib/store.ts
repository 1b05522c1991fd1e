// Looking at a container's store on the host, under the plugin's data mount, from outside the
// plugin: the only assumption is that the store is a directory named after the container's full id.
import fs from 'node:fs';
import path from 'node:path';
import { DATA_DIR } from './docker-client.ts';

export function findStoreDir(containerId: string, root = DATA_DIR, depth = 4): string | undefined {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const p = path.join(root, e.name);
    if (e.name === containerId) return p;
    if (depth > 1) {
      const found = findStoreDir(containerId, p, depth - 1);
      if (found) return found;
    }
  }
  return undefined;
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
