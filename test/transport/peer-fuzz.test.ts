// The peer protocol no frame can crash (issue 11, item 5), at a real
// 3-node cluster of `ringkv start` processes: seeded, bounded fuzz of the
// /peer endpoint (test/transport/peer-fuzz.ts), the frame that once killed a
// node, and the frame and message limits (docs/cluster.md "Peer protocol
// limits"). Long runs: `npm run fuzz:peer -- --frames 1000000`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEER_MESSAGE_TYPES } from '../../src/node/messages.js';
import { checkCanaries, fuzz, issue11Frame, openPeer, prepare, startFuzzCluster, type Canaries, type FuzzCluster, type Material } from './peer-fuzz.js';

const FRAMES = 20_000;
const SEED = Number(process.env.RINGKV_FUZZ_SEED ?? 11);

describe('the peer endpoint under hostile frames (3 node processes)', () => {
  let cluster: FuzzCluster;
  let canaries: Canaries;
  let material: Material;
  beforeAll(async () => {
    cluster = await startFuzzCluster(3);
    ({ canaries, material } = await prepare(cluster, 30));
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  }, 30_000);

  const alive = async () => {
    expect(cluster.dead(), cluster.nodes.map((n) => n.output()).join('\n')).toEqual([]);
    for (const n of cluster.nodes) {
      const res = await fetch(`http://${n.address}/ping`, { signal: AbortSignal.timeout(5_000) });
      expect(res.status, n.id).toBe(200);
    }
  };

  it('regression (issue 11): the mergebatch frame that exited a node is a BAD_REQUEST, and the node serves on', async () => {
    for (const n of cluster.nodes) {
      const conn = await openPeer(n.address);
      const id = conn.takeId();
      const reply = conn.expect(id);
      conn.sendSealed(issue11Frame(id));
      expect(await reply).toMatchObject({ error: { code: 'REMOTE', remoteCode: 'BAD_REQUEST', message: expect.stringContaining('items.1.b') } });
      expect(await conn.call('ping', {})).toEqual({ ok: {} });
      conn.close();
    }
    await alive();
  });

  it('a message of more frames than a peer ever coalesces (1024) closes the connection; 1024 are served', async () => {
    const node = cluster.nodes[0]!;
    const conn = await openPeer(node.address);
    const frames = Array.from({ length: 1024 }, () => conn.request('ping', {}));
    conn.sendSealed(Buffer.concat(frames.map((f) => f.frame)));
    expect((await Promise.all(frames.map((f) => f.reply))).every((r) => 'ok' in r)).toBe(true);
    const over = Array.from({ length: 1025 }, () => conn.request('ping', {}));
    conn.sendSealed(Buffer.concat(over.map((f) => f.frame)));
    await conn.closed();
    expect(conn.closedWith).toMatch(/^1008 message of 1025 frames, limit 1024/);
    expect((await over[0]!.reply).error?.code).toBe('CLOSED');
    await alive();
  });

  it(`${FRAMES} fuzzed frames (random bytes, random msgpack, every message type mutated): every reply typed, nodes alive, canaries intact on every replica`, async () => {
    const report = await fuzz(cluster, material, { seed: SEED, frames: FRAMES });
    const summary = JSON.stringify({ ...report, untyped: report.untyped.slice(0, 10) }, null, 1);
    expect(report.frames, summary).toBeGreaterThanOrEqual(FRAMES);
    expect(report.faults, summary).toEqual([]);
    expect(report.untyped, summary).toEqual([]);
    expect(report.replies['NO_REPLY'] ?? 0, summary).toBe(0);
    // Every type was tried, and the decoder, not luck, answered most of them.
    for (const type of PEER_MESSAGE_TYPES) expect(report.byType[type] ?? 0, `${type} tried`).toBeGreaterThan(100);
    expect(report.replies['BAD_REQUEST'] ?? 0, summary).toBeGreaterThan(report.requests / 4);
    expect(report.replies['ok'] ?? 0, summary).toBeGreaterThan(0);
    await alive();
    expect(await checkCanaries(cluster, canaries)).toEqual([]);
  }, 300_000);
});
