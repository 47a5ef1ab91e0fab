// The server side of the peer handshake (src/transport/peer-endpoint.ts),
// step by step: what each phase accepts and how it refuses the rest (the
// close code and the counted reason). The real sockets run it in
// peer-auth.test.ts and peer-fuzz.test.ts; this pins each refusal.
import { describe, expect, it } from 'vitest';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, expectedVersionOf, type Frame } from '../../src/transport/frames.js';
import { makeProof, newNonce, type Transcript } from '../../src/transport/peer-auth.js';
import { clientAuthStep, clientHelloStep, type HandshakeRefusal } from '../../src/transport/peer-endpoint.js';
import { randomSecret } from '../helpers/secret.js';

const CLUSTER = 'c1';
const hello = (over: Partial<Extract<Frame, { kind: 'hello' }>> = {}): Frame => ({ kind: 'hello', version: PROTOCOL_VERSION, nodeId: 'a', cluster: CLUSTER, nonce: newNonce(), ...over });

describe('clientHelloStep', () => {
  it.each<[string, Frame[], number, string]>([
    ['a request before the hello', [{ kind: 'req', id: 1, type: 'ping', body: {} }], 1002, 'malformed'],
    ['a hello with company', [hello(), { kind: 'note', type: 'x', body: null }], 1002, 'malformed'],
    ['a protocol version older than this node still speaks', [hello({ version: MIN_PROTOCOL_VERSION - 1 })], 1002, 'version'],
    ['a newer protocol version', [hello({ version: PROTOCOL_VERSION + 1 })], 1002, 'version'],
    ['another cluster', [hello({ cluster: 'c2' })], 1008, 'wrong-cluster'],
    ['no nonce', [hello({ nonce: undefined })], 1002, 'malformed'],
    ["a server's proofs", [hello({ proofs: [Buffer.alloc(32)] })], 1002, 'malformed'],
  ])('refuses %s', (_what, frames, code, reason) => {
    const step = clientHelloStep(frames, CLUSTER);
    expect(step).toMatchObject({ refuse: { code, reason } });
  });

  it('accepts the hello of an older version it still speaks (a rolling upgrade); a node playing an older one refuses the newer, naming its own', () => {
    const old = hello({ version: MIN_PROTOCOL_VERSION });
    expect(clientHelloStep([old], CLUSTER)).toEqual({ hello: old });
    const refusal = clientHelloStep([hello()], CLUSTER, MIN_PROTOCOL_VERSION);
    expect(refusal).toMatchObject({ refuse: { code: 1002, reason: 'version' } });
    // What a client reads from the close to offer the older version next.
    expect(expectedVersionOf((refusal as HandshakeRefusal).refuse.message)).toBe(MIN_PROTOCOL_VERSION);
  });

  it('accepts a lone hello of this version and cluster with a nonce', () => {
    const f = hello();
    expect(clientHelloStep([f], CLUSTER)).toEqual({ hello: f });
  });

  it('says which version it expected', () => {
    const step = clientHelloStep([hello({ version: 3 })], CLUSTER);
    expect('refuse' in step && step.refuse.message).toBe(`protocol version 3, expected ${PROTOCOL_VERSION}`);
  });
});

describe('clientAuthStep', () => {
  const transcript: Transcript = { version: PROTOCOL_VERSION, cluster: CLUSTER, clientId: 'a', serverId: 'b', clientNonce: newNonce(), serverNonce: newNonce() };
  const [held, previous, foreign] = [randomSecret(), randomSecret(), randomSecret()];

  it('accepts a proof under any secret held (either side of a rotation) and names that secret', () => {
    expect(clientAuthStep([{ kind: 'auth', proof: makeProof(previous, 'client', transcript) }], [held, previous], transcript)).toEqual({ secret: previous });
  });

  it.each<[string, () => Frame[], number, string]>([
    ['a proof under a secret not held', () => [{ kind: 'auth', proof: makeProof(foreign, 'client', transcript) }], 1008, 'bad-proof'],
    ["the server's own proof sent back", () => [{ kind: 'auth', proof: makeProof(held, 'server', transcript) }], 1008, 'bad-proof'],
    ['a proof of another handshake', () => [{ kind: 'auth', proof: makeProof(held, 'client', { ...transcript, serverNonce: newNonce() }) }], 1008, 'bad-proof'],
    ['a request instead of the proof', () => [{ kind: 'req', id: 1, type: 'ping', body: {} }], 1002, 'malformed'],
    ['a proof with company', () => [{ kind: 'auth', proof: makeProof(held, 'client', transcript) }, { kind: 'note', type: 'x', body: null }], 1002, 'malformed'],
  ])('refuses %s', (_what, frames, code, reason) => {
    expect(clientAuthStep(frames(), [held, previous], transcript)).toMatchObject({ refuse: { code, reason } });
  });
});
