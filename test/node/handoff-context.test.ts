// Hinted handoff on its narrow context (HandoffContext, not RingkvNode): a
// stub context over a real pure engine. What it sends is exactly what the
// receiving node's boundary accepts (decodePeerRequest), and a hint is
// deleted only once its target acknowledged it.
import { afterEach, describe, expect, it } from 'vitest';
import { createCluster, addMember, bucketProps } from '../../src/core/membership.js';
import { preferenceList } from '../../src/core/ring.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { type HandoffContext, HandoffService, HintStore } from '../../src/node/handoff.js';
import { decodePeerRequest } from '../../src/node/messages.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { TransportError } from '../../src/transport/index.js';

const B = Buffer.from('b');

describe('HandoffService on a stub context', () => {
  let engine: PureEngine | null = null;
  afterEach(async () => {
    await engine?.close();
    engine = null;
  });

  it('delivers a target\'s hints in one kv.mergebatch the receiver decodes, and deletes them only after the ack', async () => {
    engine = await PureEngine.open({ nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
    let state = createCluster({ id: 'n1', address: 'n1' }, 4, 'c');
    state = addMember(state, { id: 'n2', address: 'n2' });
    const sent: Array<{ node: string; type: string; body: unknown }> = [];
    let refuse = true;
    const ctx: HandoffContext = {
      id: 'n1',
      metrics: new NodeMetrics('n1'),
      engine,
      clock: { now: () => 0, setTimer: () => ({ cancel() {} }) } as unknown as HandoffContext['clock'],
      clusterState: state,
      hasJoined: true,
      bucketProps: (bucket) => bucketProps(state, bucket),
      preferenceListOf: (partition, n) => preferenceList(state.ring, partition, n),
      isSuspected: () => false,
      peerRequest: async (node, type, body) => {
        sent.push({ node, type, body });
        if (refuse) throw new TransportError('UNREACHABLE', 'down', node);
        return { durable: true, merged: 1 };
      },
    };
    const hints = new HintStore(engine);
    await hints.load();
    const rec = await engine.coordinate({ bucket: B, key: Buffer.from('k'), context: null, value: Buffer.from('v'), now: 1, mode: 'siblings', durable: false });
    await hints.put('n2', B, Buffer.from('k'), rec);
    const handoff = new HandoffService(ctx, hints, { handoffIntervalMs: 1_000, handoffBatch: 10, requestTimeoutMs: 100 });

    // Target unreachable: the hint stays.
    expect(await handoff.runRound()).toMatchObject({ delivered: 0, failed: ['n2'] });
    expect(hints.pending()).toBe(1);
    refuse = false;
    expect(await handoff.runRound()).toMatchObject({ delivered: 1, failed: [] });
    expect(hints.pending()).toBe(0);
    expect(sent.map((s) => `${s.node} ${s.type}`)).toEqual(['n2 kv.mergebatch', 'n2 kv.mergebatch']);
    const req = decodePeerRequest('kv.mergebatch', sent[1]!.body);
    expect(req.durable).toBe(true);
    expect(req.items.map((i) => [i.k.toString(), i.record.equals(rec)])).toEqual([['k', true]]);
  });
});
