import { describe, expect, it } from 'vitest';
import { GetCoordinator, type GetEffect } from '../../src/core/get-coordinator.js';
import { PutCoordinator } from '../../src/core/put-coordinator.js';

// Records are stand-ins here: a "record" is a set of letters and reconcile is union.
const rec = (s: string) => Buffer.from([...new Set(s)].sort().join(''));
const union = (rs: readonly Uint8Array[]) => rec(rs.map((r) => Buffer.from(r).toString()).join(''));
const equal = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const text = (e: GetEffect[]) => e.map((x) => (x.kind === 'repair' ? `repair ${x.node} ${Buffer.from(x.record)}` : x.kind));

describe('GetCoordinator', () => {
  it('answers with the reconciliation of the first R replies', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal);
    expect(g.onReply('a', rec('x'))).toEqual([]);
    const [reply] = g.onReply('b', rec('y'));
    expect(reply).toMatchObject({ kind: 'reply', ok: true, answered: 2 });
    expect(Buffer.from((reply as { record: Uint8Array }).record).toString()).toBe('xy');
  });

  it('repairs stale and missing replicas once everyone answered', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal);
    g.onReply('a', rec('xy'));
    g.onReply('b', rec('xy'));
    expect(text(g.onReply('c', null))).toEqual(['repair c xy', 'done']);
  });

  it('repairs with late replies only when the window ends', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 1, union, equal);
    expect(text(g.onReply('a', rec('x')))).toEqual(['reply']);
    g.onReply('b', rec('y'));
    expect(text(g.onLateWindowEnd())).toEqual(['repair a xy', 'repair b xy', 'done']);
    expect(g.onReply('c', rec('z'))).toEqual([]);
  });

  it('fails fast when R answers can no longer come', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal);
    g.onFailure('a', 'UNREACHABLE');
    expect(g.onFailure('b', 'TIMEOUT')[0]).toMatchObject({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', needed: 2 });
  });

  it('answers not-found when R replicas have nothing', () => {
    const g = new GetCoordinator(['a', 'b'], 2, union, equal);
    g.onReply('a', null);
    expect(g.onReply('b', null)).toEqual([{ kind: 'reply', ok: true, record: null, answered: 2 }, { kind: 'done' }]);
  });

  it('times out once and ignores duplicate or unknown replies', () => {
    const g = new GetCoordinator(['a', 'b'], 2, union, equal);
    g.onReply('a', rec('x'));
    expect(g.onReply('a', rec('y'))).toEqual([]);
    expect(g.onReply('zz', rec('y'))).toEqual([]);
    expect(g.onDeadline()).toEqual([{ kind: 'reply', ok: false, code: 'TIMEOUT', answered: 1, needed: 2 }]);
    expect(g.onDeadline()).toEqual([]);
  });
});

describe('PutCoordinator', () => {
  it('counts the local write and answers at W', () => {
    const p = new PutCoordinator(['b', 'c'], 2, 0, false);
    expect(p.start()).toEqual([{ kind: 'send', node: 'b' }, { kind: 'send', node: 'c' }]);
    expect(p.onAck('c', false)).toEqual([{ kind: 'reply', ok: true, acks: 2, durableAcks: 0 }]);
    expect(p.onAck('b', false)).toEqual([{ kind: 'done' }]);
  });

  it('with W=1 answers before any replica acks', () => {
    const p = new PutCoordinator(['b', 'c'], 1, 0, false);
    expect(p.start().at(-1)).toMatchObject({ kind: 'reply', ok: true, acks: 1 });
  });

  it('waits for DW durable acks', () => {
    const p = new PutCoordinator(['b', 'c'], 2, 2, true);
    p.start();
    expect(p.onAck('b', false)).toEqual([]);
    expect(p.onAck('c', true)[0]).toMatchObject({ kind: 'reply', ok: true, acks: 3, durableAcks: 2 });
  });

  it('fails when too many replicas failed', () => {
    const p = new PutCoordinator(['b', 'c'], 3, 0, false);
    p.start();
    expect(p.onFailure('b')[0]).toMatchObject({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', acks: 1, needed: 3 });
  });

  it('rejects a quorum it can never meet', () => {
    expect(() => new PutCoordinator(['b'], 2, 3, false)).toThrow(/bad quorum/);
  });
});
