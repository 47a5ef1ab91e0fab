// The listing promise while the cluster changes (docs/listing.md "What a
// listing promises"): a key acknowledged before the listing started and not
// deleted is listed exactly once, when a node stops between pages and when
// a 4th node joins (and is still receiving its partitions) during it.
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { converged, keysPage, listAllKeys, names, start, writeAll } from './helpers.js';

const KEYS = 3_000;
let nodes: RunningServer[] = [];
let dir = tempDir('ringkv-listing-faults-');

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close(500)));
  nodes = [];
  dir.remove();
  dir = tempDir('ringkv-listing-faults-');
});

const expected = Array.from({ length: KEYS }, (_, i) => `k${i}`).sort();

async function threeNodes(extra = {}): Promise<void> {
  nodes.push(await start('n1', `${dir.path}/n1`, [], 0, extra));
  nodes.push(await start('n2', `${dir.path}/n2`, [nodes[0]!.address], 0, extra));
  nodes.push(await start('n3', `${dir.path}/n3`, [nodes[0]!.address], 0, extra));
  await converged(nodes, 3);
  await writeAll(nodes[0]!.address, expected.map((key) => ({ bucket: 'f', key, value: `v-${key}` })));
}

describe('listing while the cluster changes', () => {
  it('a node stopped mid-listing: every key once, its partitions re-planned on the other replicas', async () => {
    await threeNodes();
    const seen: string[] = [];
    const first = await keysPage(nodes[0]!.address, 'f', null, 500);
    seen.push(...names(first));
    // n3 goes away between pages (its requests fail at once: connection refused).
    await nodes[2]!.close(500);
    const stopped = nodes.splice(2, 1);
    expect(stopped.length).toBe(1);
    let cursor = first.cursor;
    for (let i = 0; cursor !== null && i < 200; i++) {
      const doc = await keysPage(nodes[i % 2]!.address, 'f', cursor, 500);
      seen.push(...names(doc));
      cursor = doc.cursor;
    }
    expect(cursor).toBeNull();
    expect(seen.length).toBe(KEYS);
    expect(seen.sort()).toEqual(expected);
  }, 60_000);

  it('a 4th node joining mid-listing (still receiving its partitions): every key once, through old nodes and the joiner', async () => {
    // Slow transfers keep the joiner receiving for the whole listing.
    const slow = { transfers: { intervalMs: 500, batch: 5, catchUpAfterMs: 10_000, receiveCheckMs: 1_000 }, antiEntropy: { intervalMs: 1e9 } };
    await threeNodes(slow);
    const seen: string[] = [];
    const first = await keysPage(nodes[0]!.address, 'f', null, 300, '&r=1');
    seen.push(...names(first));
    const n4 = await start('n4', `${dir.path}/n4`, [nodes[0]!.address], 0, slow);
    nodes.push(n4);
    await waitFor(() => nodes.every((s) => new Set(s.node.clusterState.ring.owners).size === 4) && n4.transfers.receiving().length > 0, 20_000, 'n4 an owner, receiving');
    let cursor = first.cursor;
    let pagesWhileReceiving = 0;
    for (let i = 0; cursor !== null && i < 200; i++) {
      // r=1: each partition from one replica, so a joiner's partial copy would lose keys if it were read.
      const doc = await keysPage(nodes[(i % 2) * 3]!.address, 'f', cursor, 300, '&r=1');
      if (n4.transfers.receiving().length > 0) pagesWhileReceiving++;
      seen.push(...names(doc));
      cursor = doc.cursor;
    }
    expect(cursor).toBeNull();
    expect(pagesWhileReceiving, 'pages listed while n4 still received').toBeGreaterThan(3);
    expect(seen.length).toBe(KEYS);
    expect(seen.sort()).toEqual(expected);
  }, 90_000);

  it('a delete one replica missed: the merged copies say deleted (r=2), while that replica alone (r=1) still lists the key', async () => {
    const quietRepair = { antiEntropy: { intervalMs: 1e9 } };
    nodes.push(await start('n1', `${dir.path}/n1`, [], 0, quietRepair));
    nodes.push(await start('n2', `${dir.path}/n2`, [nodes[0]!.address], 0, quietRepair));
    nodes.push(await startOnStablePort((port) => start('n3', `${dir.path}/n3`, [nodes[0]!.address], port, quietRepair)));
    await converged(nodes, 3);
    // Partition transfers of the cluster's forming done: n3's restart then receives nothing (a transfer would bring it the delete).
    await waitFor(() => nodes.every((n) => n.transfers.receiving().length === 0 && n.transfers.status().length === 0), 60_000, 'transfers done');
    await writeAll(nodes[0]!.address, ['gone', 'kept'].map((key) => ({ bucket: 'd', key, value: 'v' })));
    // n3 misses the delete (it is down; N = 3 on 3 nodes: no fallback takes a hint).
    const port = nodes[2]!.port;
    await nodes[2]!.close(500);
    nodes.pop();
    await writeAll(nodes[0]!.address, [{ bucket: 'd', key: 'gone', value: null }]);
    // The delete's coordinator keeps trying n3 until the write's deadline (requestTimeoutMs, 5 s): restart after it.
    await new Promise((r) => setTimeout(r, 6_000));
    nodes.push(await start('n3', `${dir.path}/n3`, [nodes[0]!.address], port, quietRepair));
    await converged(nodes, 3);
    const n3 = nodes[2]!;
    expect(n3.transfers.receiving()).toEqual([]);
    const stale = await n3.engine.get(Buffer.from('d'), Buffer.from('gone'));
    expect(stale, 'n3 still holds the value').not.toBeNull();
    // r=1 through n3 reads n3 alone (itself first): the documented limit of one replica.
    expect((await listAllKeys(n3.address, 'd', 100, '&r=1')).sort()).toEqual(['gone', 'kept']);
    // r=2 merges n3's copy with another's, whose tombstone covers it.
    expect(await n3.engine.get(Buffer.from('d'), Buffer.from('gone')), 'n3 still holds the value').toEqual(stale);
    expect(await listAllKeys(n3.address, 'd', 100)).toEqual(['kept']);
  }, 90_000);
});
