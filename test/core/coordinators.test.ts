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

  it('finding 4: with `awaited`, the answer waits for that replica besides R, or goes on without it once it failed', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { awaited: 'a' });
    expect(g.onReply('b', rec('x'))).toEqual([]);
    expect(g.onReply('c', rec('x'))).toEqual([]);
    const [reply] = g.onReply('a', rec('xy'));
    expect(reply).toMatchObject({ kind: 'reply', ok: true, answered: 3 });
    expect(Buffer.from((reply as { record: Uint8Array }).record).toString()).toBe('xy');
    const h = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { awaited: 'a' });
    h.onReply('b', rec('x'));
    expect(h.onFailure('a', 'TIMEOUT')).toEqual([]);
    expect(h.onReply('c', rec('x'))[0]).toMatchObject({ kind: 'reply', ok: true, answered: 2 });
    expect(() => new GetCoordinator(['a', 'b'], 1, union, equal, { awaited: 'z' })).toThrow();
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
    expect(g.onDeadline()).toEqual([{ kind: 'reply', ok: false, code: 'TIMEOUT', answered: 1, needed: 2, primaryAnswered: 1, primaryNeeded: 0 }]);
    expect(g.onDeadline()).toEqual([]);
  });
});

describe('GetCoordinator: a replica still receiving the partition', () => {
  it('answers through its giver: the merged copy counts toward R and PR, and the replica is repaired against its own copy', () => {
    // d is new in the list and still receiving; its giver (the node it replaces) has x, d itself has only y.
    const g = new GetCoordinator(['a', 'b', 'd'], 3, union, equal, { pr: 3 });
    g.onReply('a', rec('xy'));
    g.onReply('b', rec('xy'));
    const effects = g.onStandInReply('d', rec('y'), rec('xy'));
    expect(effects[0]).toMatchObject({ kind: 'reply', ok: true, answered: 3 });
    expect(Buffer.from((effects[0] as { record: Uint8Array }).record).toString()).toBe('xy');
    expect(text(effects.slice(1))).toEqual(['repair d xy', 'done']);
  });
});

describe('GetCoordinator with fallbacks (sloppy quorum) and pr', () => {
  it('counts a fallback answer toward R but never read-repairs a fallback', () => {
    // Primaries a, b, c; c is suspected and replaced by fallback d.
    const g = new GetCoordinator(['a', 'b', 'd'], 2, union, equal, { primaries: ['a', 'b', 'c'] });
    expect(g.onReply('d', rec('xy'))).toEqual([]);
    const [reply] = g.onReply('a', rec('x'));
    expect(reply).toMatchObject({ kind: 'reply', ok: true, answered: 2 });
    expect(Buffer.from((reply as { record: Uint8Array }).record).toString()).toBe('xy');
    // b is stale, a is stale, d (the fallback) differs too but is not repaired.
    expect(text(g.onReply('b', rec('y')))).toEqual(['repair a xy', 'repair b xy', 'done']);
  });

  it('with pr waits for primary answers even when R answers are in', () => {
    const g = new GetCoordinator(['a', 'b', 'd'], 1, union, equal, { primaries: ['a', 'b', 'c'], pr: 2 });
    expect(g.onReply('d', rec('x'))).toEqual([]);
    expect(g.onReply('a', rec('x'))).toEqual([]);
    expect(g.onReply('b', rec('x'))[0]).toMatchObject({ kind: 'reply', ok: true, answered: 3 });
  });

  it('with pr fails as soon as too few primaries can answer', () => {
    const g = new GetCoordinator(['a', 'b', 'd'], 1, union, equal, { primaries: ['a', 'b', 'c'], pr: 2 });
    g.onReply('d', rec('x'));
    expect(g.onFailure('a', 'TIMEOUT')[0]).toMatchObject({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', primaryAnswered: 0, primaryNeeded: 2 });
  });

  it('pr = 0 (default) is satisfied by fallbacks alone', () => {
    const g = new GetCoordinator(['d', 'e'], 2, union, equal, { primaries: ['a', 'b'] });
    g.onReply('d', null);
    expect(g.onReply('e', rec('q'))[0]).toMatchObject({ kind: 'reply', ok: true, answered: 2 });
  });
});

describe('GetCoordinator with fan-out quorum (ask = R)', () => {
  const asks = (e: GetEffect[]) => e.filter((x) => x.kind === 'ask').map((x) => (x as { node: string }).node);
  const why = (e: GetEffect[]) => e.filter((x) => x.kind === 'ask').map((x) => (x as { why: string }).why);
  const reply = (e: GetEffect[]) => e.find((x) => x.kind === 'reply') as { ok: boolean; record: Uint8Array | null; answered: number } | undefined;

  it('all R agree: replies and finishes, the third replica is never asked', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { ask: 2, awaited: 'a' });
    const first = g.start();
    expect(asks(first)).toEqual(['a', 'b']);
    expect(why(first)).toEqual(['first', 'first']);
    expect(g.onReply('a', rec('x'))).toEqual([]);
    const e = g.onReply('b', rec('x'));
    expect(text(e)).toEqual(['reply', 'done']);
    expect(reply(e)).toMatchObject({ ok: true, answered: 2 });
    expect(g.askedReplicas).toEqual(['a', 'b']);
    // A reply from the replica never asked is not taken.
    expect(g.onReply('c', rec('y'))).toEqual([]);
    expect(g.onSlow()).toEqual([]);
  });

  it('one answer differs: asks the rest, replies with the R answers reconciled, then repairs every stale replica read', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { ask: 2 });
    g.start();
    expect(g.onReply('a', rec('xy'))).toEqual([]);
    // b is stale: the reply goes out (R answers, reconciled) and c is asked at once.
    const e = g.onReply('b', rec('x'));
    expect(text(e)).toEqual(['ask', 'reply']);
    expect(asks(e)).toEqual(['c']);
    expect(why(e)).toEqual(['differ']);
    expect(Buffer.from(reply(e)!.record!).toString()).toBe('xy');
    // c has nothing: once it answers, b and c are repaired with the reconciled record, a is not.
    expect(text(g.onReply('c', null))).toEqual(['repair b xy', 'repair c xy', 'done']);
  });

  it('a difference before R answers: asks the rest at once, replies when R are in', () => {
    const g = new GetCoordinator(['a', 'b', 'c', 'd'], 3, union, equal, { ask: 3 });
    expect(asks(g.start())).toEqual(['a', 'b', 'c']);
    g.onReply('a', rec('xy'));
    expect(text(g.onReply('b', rec('x')))).toEqual(['ask']);
    expect(g.askedReplicas).toEqual(['a', 'b', 'c', 'd']);
    const e = g.onReply('c', rec('xy'));
    expect(reply(e)).toMatchObject({ ok: true, answered: 3 });
    expect(text(g.onReply('d', rec('xy')))).toEqual(['repair b xy', 'done']);
    // R must be asked at once.
    expect(() => new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { ask: 1 })).toThrow(/bad ask/);
  });

  it('one fails: asks the next; the reply has R answers', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { ask: 2 });
    expect(asks(g.start())).toEqual(['a', 'b']);
    expect(g.onReply('a', rec('x'))).toEqual([]);
    expect(why(g.onFailure('b', 'TIMEOUT'))).toEqual(['failed']);
    expect(g.askedReplicas).toEqual(['a', 'b', 'c']);
    const e = g.onReply('c', rec('x'));
    expect(reply(e)).toMatchObject({ ok: true, answered: 2 });
    expect(text(e)).toEqual(['reply', 'done']);
  });

  it('fails only when no replica is left to ask', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { ask: 2 });
    g.start();
    expect(asks(g.onFailure('a', 'UNREACHABLE'))).toEqual(['c']);
    expect(g.onFailure('b', 'UNREACHABLE')[0]).toMatchObject({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', answered: 0, needed: 2 });
  });

  it('slow (speculative retry): asks one more before the answer, none after it', () => {
    const g = new GetCoordinator(['a', 'b', 'c'], 2, union, equal, { ask: 2 });
    g.start();
    g.onReply('a', rec('x'));
    const slow = g.onSlow();
    expect(asks(slow)).toEqual(['c']);
    expect(why(slow)).toEqual(['slow']);
    // Every replica is asked now: nothing more.
    expect(g.onSlow()).toEqual([]);
    const e = g.onReply('c', rec('x'));
    expect(reply(e)).toMatchObject({ ok: true, answered: 2 });
    // b, still out, is waited for (and repaired) until the late window ends.
    expect(text(e)).toEqual(['reply']);
    expect(text(g.onReply('b', null))).toEqual(['repair b x', 'done']);
  });

  it('short of primaries (pr): asks the next primary, not a fallback', () => {
    // Primaries a, b, c; fallbacks d and e; pr = 1: after a fails, d would give an answer but no primary one.
    const g = new GetCoordinator(['a', 'd', 'b', 'e'], 1, union, equal, { primaries: ['a', 'b', 'c'], pr: 1, ask: 1 });
    expect(asks(g.start())).toEqual(['a']);
    expect(asks(g.onFailure('a', 'TIMEOUT'))).toEqual(['b']);
    expect(reply(g.onReply('b', rec('x')))).toMatchObject({ ok: true, answered: 1 });
  });

  it('a stand-in whose own copy differs from its merged one counts as a difference: asks the rest', () => {
    const g = new GetCoordinator(['a', 'd', 'b'], 2, union, equal, { ask: 2 });
    g.start();
    expect(asks(g.onStandInReply('d', rec('y'), rec('xy')))).toEqual(['b']);
  });
});

describe('PutCoordinator: sloppy quorum', () => {
  it('sends a hinted copy to a fallback for a suspected primary; the hinted ack counts toward W', () => {
    const p = new PutCoordinator(['b', { node: 'd', hintFor: 'c' }], 3, 0, false);
    expect(p.start()).toEqual([
      { kind: 'send', node: 'b', hintFor: null },
      { kind: 'send', node: 'd', hintFor: 'c' },
    ]);
    expect(p.onAck('d', false)).toEqual([]);
    expect(p.onAck('b', false)).toEqual([{ kind: 'reply', ok: true, acks: 3, durableAcks: 0, primaryAcks: 2 }, { kind: 'done' }]);
  });

  it('retries a failed copy on the next fallback with a hint for the primary', () => {
    const p = new PutCoordinator(['b', 'c'], 3, 0, false, { fallbacks: ['d', 'e'] });
    p.start();
    expect(p.onFailure('c')).toEqual([{ kind: 'send', node: 'd', hintFor: 'c' }]);
    expect(p.onFailure('c')).toEqual([]); // stale: the slot moved on
    expect(p.onFailure('d')).toEqual([{ kind: 'send', node: 'e', hintFor: 'c' }]);
    expect(p.onAck('b', false)).toEqual([]);
    expect(p.onAck('e', true)).toEqual([{ kind: 'reply', ok: true, acks: 3, durableAcks: 1, primaryAcks: 2 }, { kind: 'done' }]);
  });

  it('bounds retries per copy and fails once no fallback is left', () => {
    const p = new PutCoordinator(['b'], 2, 0, false, { fallbacks: ['d', 'e', 'f'], maxRetries: 1 });
    p.start();
    expect(p.onFailure('b')).toEqual([{ kind: 'send', node: 'd', hintFor: 'b' }]);
    const out = p.onFailure('d');
    expect(out[0]).toMatchObject({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', acks: 1, needed: 2 });
    expect(out.at(-1)).toEqual({ kind: 'done' });
  });

  it('uses each fallback once across copies', () => {
    const p = new PutCoordinator(['b', 'c'], 3, 0, false, { fallbacks: ['d'] });
    p.start();
    expect(p.onFailure('b')).toEqual([{ kind: 'send', node: 'd', hintFor: 'b' }]);
    expect(p.onFailure('c')[0]).toMatchObject({ kind: 'reply', ok: false, code: 'QUORUM_FAILED' });
  });

  it('does not retry after the deadline, but keeps placing copies after a successful reply', () => {
    const a = new PutCoordinator(['b', 'c'], 2, 0, false, { fallbacks: ['d'] });
    a.start();
    expect(a.onAck('b', false)[0]).toMatchObject({ kind: 'reply', ok: true });
    expect(a.onFailure('c')).toEqual([{ kind: 'send', node: 'd', hintFor: 'c' }]);
    expect(a.onAck('d', false)).toEqual([{ kind: 'done' }]);

    const b = new PutCoordinator(['b', 'c'], 3, 0, false, { fallbacks: ['d'] });
    b.start();
    expect(b.onDeadline()[0]).toMatchObject({ kind: 'reply', ok: false, code: 'TIMEOUT' });
    expect(b.onFailure('c')).toEqual([]);
    expect(b.onAck('b', false)).toEqual([{ kind: 'done' }]);
  });

  it('pw counts only acks from primaries (the coordinator is one)', () => {
    const p = new PutCoordinator(['b', { node: 'd', hintFor: 'c' }], 2, 0, false, { pw: 2 });
    p.start();
    expect(p.onAck('d', false)).toEqual([]); // W=2 met, but only 1 primary ack
    expect(p.onAck('b', false)[0]).toMatchObject({ kind: 'reply', ok: true, primaryAcks: 2 });
  });

  it('pw fails fast when the primaries that could still ack are too few', () => {
    const p = new PutCoordinator(['b', 'c'], 1, 0, false, { pw: 3, fallbacks: ['d'] });
    expect(p.start()).toHaveLength(2);
    // c fails: its copy goes to d as a hint, which can never be a primary ack.
    const out = p.onFailure('c');
    expect(out).toContainEqual({ kind: 'send', node: 'd', hintFor: 'c' });
    expect(out).toContainEqual(expect.objectContaining({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', primaryAcks: 1, primaryNeeded: 3 }));
  });

  it('durable hinted acks count toward DW', () => {
    const p = new PutCoordinator([{ node: 'd', hintFor: 'b' }], 2, 2, true);
    p.start();
    expect(p.onAck('d', true)[0]).toMatchObject({ kind: 'reply', ok: true, durableAcks: 2, primaryAcks: 1 });
  });
});

describe('PutCoordinator', () => {
  it('counts the local write and answers at W', () => {
    const p = new PutCoordinator(['b', 'c'], 2, 0, false);
    expect(p.start()).toEqual([{ kind: 'send', node: 'b', hintFor: null }, { kind: 'send', node: 'c', hintFor: null }]);
    expect(p.onAck('c', false)).toEqual([{ kind: 'reply', ok: true, acks: 2, durableAcks: 0, primaryAcks: 2 }]);
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
