// Pages cut short: replicas that scan 7 objects per request and pages that
// end after 50 ms, on a cluster whose buckets interleave on disk. Pages then
// end after objects of other buckets (the last one a replica scanned), and
// their cursors must still lead on: every key once, no 400.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { converged, listAllKeys, start, writeAll } from './helpers.js';

const dir = tempDir('ringkv-listing-small-');
const nodes: RunningServer[] = [];
// 4 partitions: a replica's 7 objects end inside a partition, after any bucket's object.
const small = { partitionBits: 2, listing: { replicaScanBudget: 7, pageTimeMs: 50 } };
const KEYS = Array.from({ length: 300 }, (_, i) => `k${i}`);

beforeAll(async () => {
  nodes.push(await start('n1', `${dir.path}/n1`, [], 0, small));
  for (const id of ['n2', 'n3']) nodes.push(await start(id, `${dir.path}/${id}`, [nodes[0]!.address], 0, small));
  await converged(nodes, 3);
  await writeAll(nodes[0]!.address, ['a', 'b', 'c'].flatMap((bucket) => KEYS.map((key) => ({ bucket, key, value: bucket }))));
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close(500)));
  dir.remove();
});

describe('listing with short pages', () => {
  it('lists every key once through cursors that stop after other buckets\' objects', async () => {
    for (const [i, bucket] of ['a', 'b'].entries()) {
      const keys = await listAllKeys(nodes[i]!.address, bucket, 1_000);
      expect(keys.length, bucket).toBe(KEYS.length);
      expect(keys.sort()).toEqual([...KEYS].sort());
    }
  }, 90_000);
});
