// Peer messages decoded at the boundary (src/node/messages.ts): what a peer
// sends is checked once, and a malformed body is a typed BAD_REQUEST, both
// in the decoder (no network) and through a running node (a real pure engine
// on the simulated network), which keeps serving afterwards.
import { afterEach, describe, expect, it } from 'vitest';
import { PureEngine } from '../../src/engine/pure/index.js';
import { EngineError } from '../../src/engine/types.js';
import { NodeError, nodeErrorFrom, peerErrorFrom } from '../../src/node/errors.js';
import {
  MAX_AAE_GET_ITEMS,
  MAX_MERGE_BATCH,
  MAX_SET_OPS,
  MAX_LIST_PAGE,
  MAX_TRANSFER_BATCH,
  MAX_WRITE_ID_LENGTH,
  PEER_MESSAGE_TYPES,
  decodePeerReply,
  decodePeerRequest,
  type PeerMessageType,
} from '../../src/node/messages.js';
import { RingkvNode } from '../../src/node/node.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';

const b = Buffer.from('bucket');
const k = Buffer.from('key');
const rec = Buffer.from([1, 2, 3]);

type Row = [name: string, type: PeerMessageType, body: unknown, expected: 'ok' | RegExp];
const ROWS: Row[] = [
  ['kv.get: valid', 'kv.get', { b, k, ring: 3, hints: true }, 'ok'],
  ['kv.get: a Uint8Array (msgpack) is as good as a Buffer', 'kv.get', { b: new Uint8Array(b), k: new Uint8Array(k) }, 'ok'],
  ['kv.get: missing key', 'kv.get', { b }, /malformed 'kv.get' request: k: expected binary/],
  ['kv.get: key as a string', 'kv.get', { b, k: 'key' }, /k: expected binary/],
  ['kv.get: ring as a string', 'kv.get', { b, k, ring: '3' }, /ring:/],
  ['kv.get: no body at all', 'kv.get', null, /malformed 'kv.get' request: body:/],
  ['kv.merge: valid hint', 'kv.merge', { b, k, record: rec, lww: false, durable: true, hint: 'n2' }, 'ok'],
  ['kv.merge: durable as a number', 'kv.merge', { b, k, record: rec, durable: 1 }, /durable:/],
  ['kv.merge: hint as a number', 'kv.merge', { b, k, record: rec, hint: 7 }, /hint:/],
  ['kv.merge: hint not a node id', 'kv.merge', { b, k, record: rec, hint: 'a b' }, /hint: not a node id/],
  ['kv.mergebatch: valid', 'kv.mergebatch', { items: [{ b, k, record: rec, lww: true }], durable: true }, 'ok'],
  ['kv.mergebatch: an item without its record', 'kv.mergebatch', { items: [{ b, k }] }, /items\.0\.record: expected binary/],
  ['kv.mergebatch: items not an array', 'kv.mergebatch', { items: {} }, /items:/],
  ['kv.mergebatch: oversize batch', 'kv.mergebatch', { items: Array.from({ length: MAX_MERGE_BATCH + 1 }, () => ({ b, k, record: rec })) }, /items:.*1000/],
  ['kv.reapcheck: valid', 'kv.reapcheck', { b, k }, 'ok'],
  ['kv.reapcheck: bucket as a number', 'kv.reapcheck', { b: 1, k }, /b: expected binary/],
  ['kv.reap: valid', 'kv.reap', { b, k, record: rec }, 'ok'],
  ['kv.reap: missing record', 'kv.reap', { b, k }, /record: expected binary/],
  ['kv.put: valid delete (no value, no context)', 'kv.put', { b, k, context: null, value: null, n: 3, w: 2, dw: 0, pw: 0, timeoutMs: 100, wid: 'n1:5:0' }, 'ok'],
  ['kv.put: w as a string', 'kv.put', { b, k, w: '2' }, /w:/],
  ['kv.put: oversize write id', 'kv.put', { b, k, wid: 'x'.repeat(MAX_WRITE_ID_LENGTH + 1) }, /wid:/],
  ['kv.put: empty write id', 'kv.put', { b, k, wid: '' }, /wid:/],
  ['gossip: valid (the state itself is checked by unpackState)', 'gossip', { state: { any: 1 } }, 'ok'],
  ['gossip: missing state', 'gossip', {}, /state:/],
  ['gossip: not an object', 'gossip', 'state', /malformed 'gossip' request/],
  ['join: valid', 'join', { cluster: 'c', member: { id: 'n4', address: '127.0.0.1:1', zone: 'z' } }, 'ok'],
  ['join: member without an address', 'join', { cluster: 'c', member: { id: 'n4' } }, /member\.address:/],
  ['join: member missing', 'join', { cluster: 'c' }, /member:/],
  // Anti-entropy.
  ['aae.roots: valid', 'aae.roots', { q: Buffer.alloc(8), g: [12, 5, 5] }, 'ok'],
  ['aae.roots: geometry of two numbers', 'aae.roots', { q: Buffer.alloc(8), g: [12, 5] }, /g:/],
  ['aae.roots: index list as an array', 'aae.roots', { q: [1, 2], g: [12, 5, 5] }, /q: expected binary/],
  ['aae.root: valid', 'aae.root', { p: 3, g: [12, 5, 5] }, 'ok'],
  ['aae.root: negative partition', 'aae.root', { p: -1, g: [12, 5, 5] }, /p:/],
  ['aae.root: fractional partition', 'aae.root', { p: 1.5, g: [12, 5, 5] }, /p:/],
  ['aae.branches: valid', 'aae.branches', { p: 0 }, 'ok'],
  ['aae.branches: partition as a string', 'aae.branches', { p: '0' }, /p:/],
  ['aae.segments: valid', 'aae.segments', { p: 0, q: Buffer.alloc(2) }, 'ok'],
  ['aae.segments: no branch list', 'aae.segments', { p: 0 }, /q: expected binary/],
  ['aae.keys: valid', 'aae.keys', { p: 0, q: Buffer.alloc(4) }, 'ok'],
  ['aae.keys: list as a number', 'aae.keys', { p: 0, q: 4 }, /q:/],
  ['aae.get: valid', 'aae.get', { items: [{ b, k }] }, 'ok'],
  ['aae.get: an item without its key', 'aae.get', { items: [{ b }] }, /items\.0\.k: expected binary/],
  ['aae.get: oversize', 'aae.get', { items: Array.from({ length: MAX_AAE_GET_ITEMS + 1 }, () => ({ b, k })) }, /items:/],
  // Partition transfer.
  ['xfer.batch: valid', 'xfer.batch', { partition: 2, items: [{ b, k, record: rec }] }, 'ok'],
  ['xfer.batch: the frame of issue 11 (a second item of numbers)', 'xfer.batch', { items: [{ b, k, record: rec }, { b: 1, k: 1, record: 1 }] }, /items\.1\.b: expected binary/],
  ['xfer.batch: oversize', 'xfer.batch', { items: Array.from({ length: MAX_TRANSFER_BATCH + 1 }, () => ({ b, k, record: rec })) }, /items:/],
  ['xfer.finish: valid (a list)', 'xfer.finish', { partitions: [1, 2], ring: 4 }, 'ok'],
  ['xfer.finish: valid (one, from an older giver)', 'xfer.finish', { partition: 1, ring: 4 }, 'ok'],
  ['xfer.finish: neither list nor partition', 'xfer.finish', { ring: 4 }, /partitions or partition required/],
  ['xfer.finish: ring as a string', 'xfer.finish', { partitions: [1], ring: 'v4' }, /ring:/],
  ['xfer.finish: a partition as a string', 'xfer.finish', { partitions: ['1'], ring: 4 }, /partitions\.0:/],
  ['xfer.status: valid', 'xfer.status', { partition: 9 }, 'ok'],
  ['xfer.status: no partition', 'xfer.status', {}, /partition:/],
  // Sets.
  ['list.page: valid', 'list.page', { p: 3, after: null, b, limit: 100, values: false, ring: 2 }, 'ok'],
  ['list.page: a limit over the most a reply carries', 'list.page', { p: 3, after: null, b, limit: MAX_LIST_PAGE + 1, ring: 2 }, /limit:/],
  ['list.page: a negative partition', 'list.page', { p: -1, b, limit: 1, ring: 2 }, /p:/],
  ['sets.update: valid', 'sets.update', { b, k, add: [Buffer.from('x')], remove: null, context: null, w: 2 }, 'ok'],
  ['sets.update: an element as a string', 'sets.update', { b, k, add: ['x'] }, /add\.0: expected binary/],
  ['sets.update: adds not a list', 'sets.update', { b, k, add: Buffer.from('x') }, /add:/],
  ['sets.update: too many elements', 'sets.update', { b, k, add: Array.from({ length: MAX_SET_OPS + 1 }, () => Buffer.from('x')) }, /add:/],
  ['sets.update: r as a string', 'sets.update', { b, k, add: [Buffer.from('x')], r: 'one' }, /r:/],
];

describe('the message table', () => {
  it('has a row of good and bad bodies for every message type (a new type cannot go untested)', () => {
    for (const type of PEER_MESSAGE_TYPES) {
      if (type === 'ping') continue; // any body
      const rows = ROWS.filter((r) => r[1] === type);
      expect(rows.some((r) => r[3] === 'ok'), `${type}: a good body`).toBe(true);
      expect(rows.some((r) => r[3] !== 'ok'), `${type}: a bad body`).toBe(true);
    }
  });
});

describe('decodePeerRequest', () => {
  it.each(ROWS)('%s', (_name, type, body, expected) => {
    if (expected === 'ok') {
      expect(() => decodePeerRequest(type, body)).not.toThrow();
      return;
    }
    let caught: unknown;
    try {
      decodePeerRequest(type, body);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NodeError);
    expect(caught).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(expected) });
  });

  it('hands handlers Buffers, whatever binary type arrived, and keeps absent optional fields absent', () => {
    const req = decodePeerRequest('kv.put', { b: new Uint8Array([98]), k: new Uint8Array([107]) });
    expect(Buffer.isBuffer(req.b) && Buffer.isBuffer(req.k)).toBe(true);
    expect(req).toMatchObject({ context: null, value: null });
    expect(req.wid).toBeUndefined();
  });
});

describe('peerErrorFrom', () => {
  it('makes an engine refusal of what a peer sent BAD_REQUEST, keeps typed errors, and says where a mapped error came from', () => {
    expect(peerErrorFrom(new EngineError('CORRUPT_RECORD', 'corrupt record: truncated'))).toMatchObject({ code: 'BAD_REQUEST', sourceCode: 'CORRUPT_RECORD' });
    expect(peerErrorFrom(nodeErrorFrom('CORRUPT_RECORD', 'truncated'))).toMatchObject({ code: 'BAD_REQUEST', message: 'truncated' });
    expect(peerErrorFrom(new EngineError('INVALID_ARGUMENT', 'key is empty'))).toMatchObject({ code: 'BAD_REQUEST' });
    const typed = new NodeError('UNAVAILABLE', 'not joined yet');
    expect(peerErrorFrom(typed)).toBe(typed);
    const io = new EngineError('IO', 'disk full');
    expect(peerErrorFrom(io)).toBe(io);
  });
});

describe('decodePeerReply', () => {
  it('accepts the replies the handlers make and refuses malformed ones as INTERNAL (the peer is wrong, not the caller)', () => {
    expect(decodePeerReply('kv.get', { record: null, reaped: null })).toEqual({ record: null, reaped: null });
    expect(decodePeerReply('kv.get', { record: new Uint8Array([1]), pending: ['n2'] }).record).toEqual(Buffer.from([1]));
    expect(decodePeerReply('kv.reapcheck', { record: null, hinted: false, ringVersion: 2, claimant: 'n1' }).ringVersion).toBe(2);
    expect(() => decodePeerReply('kv.put', { record: 'x', acks: 1 })).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(() => decodePeerReply('kv.merge', {})).toThrow(/malformed 'kv.merge' reply: durable/);
    expect(() => decodePeerReply('kv.get', { record: null, pending: Array.from({ length: 65 }, () => 'n') })).toThrow(/pending/);
    // The services' replies are checked the same way.
    expect(decodePeerReply('aae.roots', { hashes: new Uint8Array(8), skip: [0] }).hashes).toEqual(Buffer.alloc(8));
    expect(() => decodePeerReply('aae.get', { records: [7] })).toThrow(/malformed 'aae.get' reply: records\.0/);
    expect(() => decodePeerReply('xfer.status', { ring: 1, sending: 'yes' })).toThrow(/sending/);
    expect(() => decodePeerReply('xfer.batch', {})).toThrow(/merged/);
    expect(() => decodePeerReply('sets.update', { state: null })).toThrow(/state/);
  });
});

describe('a running node and malformed peer requests', () => {
  let stop: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await stop?.();
    stop = null;
  });

  it('answers each with a typed BAD_REQUEST (not an untyped TypeError from inside a handler) and keeps serving', async () => {
    const net = new SimNetwork({ random: () => 0.5, minDelayMs: 1, maxDelayMs: 1 });
    const engine = await PureEngine.open({ nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
    const node = await RingkvNode.start({
      id: 'n1', address: 'n1', clusterName: 'c', partitionBits: 4, seeds: [], engine,
      transport: net.transport('n1'), clock: net.clock('n1'), random: () => 0.5,
    });
    stop = async () => {
      await node.stop();
      await engine.close();
    };
    const peer = net.transport('x');
    const ask = async (type: string, body: unknown) => {
      const p = peer.request({ id: 'n1', address: 'n1' }, type, body, 1_000).then(
        (ok) => ({ ok }),
        (err: { code?: string; remoteCode?: string; message?: string }) => ({ code: err.code, remoteCode: err.remoteCode, message: err.message }),
      );
      await net.runFor(50);
      return p;
    };
    const bad: Array<[string, unknown]> = [
      ['kv.get', null],
      ['kv.merge', { b, k }],
      ['kv.mergebatch', { items: [null] }],
      ['kv.reap', 7],
      ['kv.put', { b, k, n: 'three' }],
      ['join', { cluster: 'c' }],
      // The services' messages are decoded at the same boundary (the node built every service).
      ['aae.roots', { q: 'all', g: [4, 5, 5] }],
      ['aae.root', { p: -1, g: [4, 5, 5] }],
      ['aae.get', { items: [{ b }] }],
      ['xfer.batch', { items: [{ b, k, record: rec }, { b: 1, k: 1, record: 1 }] }],
      ['xfer.finish', { ring: 1 }],
      ['xfer.status', { partition: 'p' }],
      ['sets.update', { b, k, add: 'x' }],
      ['list.page', { p: 0, after: null, b, limit: 0, ring: 0 }],
    ];
    for (const [type, body] of bad) {
      expect(await ask(type, body), type).toMatchObject({ code: 'REMOTE', remoteCode: 'BAD_REQUEST', message: expect.stringContaining(`malformed '${type}'`) });
    }
    // A request type no one defines, and an engine's refusal of a request's contents, are typed too.
    expect(await ask('kv.nope', {})).toMatchObject({ remoteCode: 'BAD_REQUEST', message: expect.stringContaining("unknown peer request type 'kv.nope'") });
    expect(await ask('kv.merge', { b, k, record: Buffer.from([1, 0, 0, 0, 1]) })).toMatchObject({ remoteCode: 'BAD_REQUEST' });
    expect(await ask('kv.get', { b: Buffer.alloc(0), k })).toMatchObject({ remoteCode: 'BAD_REQUEST', message: expect.stringContaining('bucket') });
    // Nothing was written, and the node still serves a well-formed request and its client.
    expect(await ask('kv.get', { b, k })).toEqual({ ok: { record: null, reaped: null } });
    const put = node.put(b, k, null, Buffer.from('v'));
    await net.runFor(50);
    await put;
    const got = node.get(b, k);
    await net.runFor(50);
    expect((await got).decoded?.siblings.map((s) => s.value?.toString())).toEqual(['v']);
  });
});
