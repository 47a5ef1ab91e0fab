// Bytes of the files under a directory (a node's data directory: sled's log
// segments, blobs and snapshots), walked at most once per `maxAgeMs`: a
// scrape every few seconds must not walk thousands of blob files each time.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    // A file sled removed between the listing and the stat counts nothing.
    const s = await stat(join(entry.parentPath, entry.name)).catch(() => null);
    if (s) total += s.size;
  }
  return total;
}

/** `directoryBytes(dir)`, cached for maxAgeMs; concurrent callers share one walk. */
export function cachedDirectoryBytes(dir: string, maxAgeMs = 5_000): () => Promise<number> {
  let last: { atMs: number; bytes: number } | null = null;
  let walking: Promise<number> | null = null;
  return () => {
    if (last && Date.now() - last.atMs < maxAgeMs) return Promise.resolve(last.bytes);
    walking ??= directoryBytes(dir)
      .then((bytes) => {
        last = { atMs: Date.now(), bytes };
        return bytes;
      })
      .finally(() => {
        walking = null;
      });
    return walking;
  };
}
