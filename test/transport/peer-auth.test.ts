// The peer handshake (src/transport/peer-auth.ts) between real WsTransports
// on 127.0.0.1: both sides prove the secret, every secret pairing of a
// rotation, proofs bound to the connection, the secret never shown; where a
// node's secret comes from and when a node refuses to start.
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer } from '../../src/server/index.js';
import { ensureSecretFile, isLoopbackHost, loadPeerSecrets, readSecretFile } from '../../src/server/peer-secrets.js';
import {
  INSECURE_LOOPBACK_SECRETS,
  PROTOCOL_VERSION,
  PeerSecret,
  TransportError,
  WsTransport,
  checkProofs,
  decodeFrames,
  encodeFrame,
  connectionTag,
  listenPeerServer,
  makeProof,
  newNonce,
  sealMessage,
  sessionTags,
} from '../../src/transport/index.js';
import type { PeerSecrets, PeerServer, Transcript, TransportEvent } from '../../src/transport/index.js';
import { randomSecret } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';

const CLUSTER = 'auth-test';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Node {
  t: WsTransport;
  srv: PeerServer;
  ref: { id: string; address: string };
  events: TransportEvent[];
}

async function node(id: string, secrets: PeerSecrets, cluster = CLUSTER): Promise<Node> {
  const events: TransportEvent[] = [];
  const t = new WsTransport({ nodeId: id, cluster, secrets, random: () => 0.5, backoffBaseMs: 1, backoffMaxMs: 5, onEvent: (e) => events.push(e) });
  t.onRequest((from, type) => ({ at: id, from, type }));
  const srv = await listenPeerServer(t);
  cleanups.push(async () => {
    await srv.close();
    await t.close();
  });
  return { t, srv, ref: { id, address: srv.address }, events };
}

async function result(p: Promise<unknown>): Promise<unknown> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof TransportError) return e.code;
    throw e;
  }
}

describe('peer handshake', () => {
  it('every pairing of a two-step rotation: a shared secret passes both ways, none refuses both ways', async () => {
    const [s0, s1, s2] = [randomSecret(), randomSecret(), randomSecret()];
    // Before, during (new + previous) and after the first step; the second step's new pair; an outsider.
    const sets: Record<string, PeerSecrets> = {
      old: { current: s0 },
      mid: { current: s1, previous: s0 },
      new: { current: s1 },
      next: { current: s2, previous: s1 },
      outsider: { current: randomSecret() },
    };
    const nodes = new Map<string, Node>();
    for (const [name, secrets] of Object.entries(sets)) nodes.set(name, await node(name, secrets));
    const shares = (a: PeerSecrets, b: PeerSecrets) => [a.current, a.previous].some((s) => s !== undefined && (s === b.current || s === b.previous));
    for (const [from, a] of nodes) {
      for (const [to, b] of nodes) {
        if (from === to) continue;
        const got = await result(a.t.request(b.ref, 'ping', null, 2_000));
        // No shared secret: the client finds the server's proofs bad, a refusal (REFUSED: it will be the same next time).
        const expected = shares(sets[from]!, sets[to]!) ? { at: to, from, type: 'ping' } : 'REFUSED';
        expect(got, `${from} -> ${to}`).toEqual(expected);
      }
    }
    // old and next share nothing: each refused the other, by reason.
    const old = nodes.get('old')!;
    expect(old.t.stats().authFailures.outbound['bad-proof']).toBeGreaterThanOrEqual(1);
    expect(old.events.some((e) => e.type === 'auth-failure' && e.reason === 'bad-proof')).toBe(true);
  });

  it('a server that does not hold the secret is found out by the client, which sends it nothing', async () => {
    const secret = randomSecret();
    const a = await node('a', { current: secret });
    let handled = 0;
    const impostor = await node('b', { current: randomSecret() });
    impostor.t.onRequest(() => {
      handled += 1;
      return 'stolen';
    });
    const e = await a.t.request(impostor.ref, 'kv.put', { secret: 'data' }, 2_000).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).message).toMatch(/'b' .* did not prove it holds the cluster secret/);
    expect(handled).toBe(0);
    expect(a.t.stats().authFailures.outbound['bad-proof']).toBe(1);
  });

  it('a proof is good for one connection only: replayed on a new connection (new nonces) it is refused', async () => {
    const secret = randomSecret();
    const b = await node('b', { current: secret });
    // A genuine client's handshake, recorded, then its auth replayed on a fresh connection.
    const first = await rawHello(b.ref.address, 'a');
    const transcript: Transcript = { version: PROTOCOL_VERSION, cluster: CLUSTER, clientId: 'a', serverId: 'b', clientNonce: first.nonce, serverNonce: first.serverNonce };
    const recorded = makeProof(secret, 'client', transcript);
    first.ws.send(encodeFrame({ kind: 'auth', proof: recorded }));
    await new Promise((r) => setTimeout(r, 50));
    expect(b.srv.endpoint.connections()).toBe(1); // accepted
    const replay = await rawHello(b.ref.address, 'a');
    replay.ws.send(encodeFrame({ kind: 'auth', proof: recorded }));
    expect((await replay.closed).code).toBe(1008);
    expect(b.t.stats().authFailures.inbound['bad-proof']).toBe(1);
    // Nor does a proof for another id, or the server's own role, pass.
    const other = await rawHello(b.ref.address, 'c');
    const t2: Transcript = { version: PROTOCOL_VERSION, cluster: CLUSTER, clientId: 'a', serverId: 'b', clientNonce: other.nonce, serverNonce: other.serverNonce };
    expect(checkProofs([secret], 'client', { ...t2, clientId: 'c' }, [makeProof(secret, 'client', t2)])).toBeNull();
    expect(checkProofs([secret], 'client', t2, [makeProof(secret, 'server', t2)])).toBeNull();
    expect(checkProofs([secret], 'client', t2, [makeProof(secret, 'client', t2)])).toBe(secret);
    other.ws.send(encodeFrame({ kind: 'auth', proof: makeProof(secret, 'client', t2) }));
    expect((await other.closed).code).toBe(1008);
  });

  it("the envelope is keyed by the session: a message sealed with version 3's Sec-WebSocket-Accept tag is refused after a good handshake", async () => {
    const secret = randomSecret();
    const b = await node('b', { current: secret });
    let handled = 0;
    b.t.onRequest(() => {
      handled += 1;
      return 'ok';
    });
    for (const tagOf of ['session', 'accept'] as const) {
      const raw = await rawHello(b.ref.address, 'a');
      const transcript: Transcript = { version: PROTOCOL_VERSION, cluster: CLUSTER, clientId: 'a', serverId: 'b', clientNonce: raw.nonce, serverNonce: raw.serverNonce };
      raw.ws.send(encodeFrame({ kind: 'auth', proof: makeProof(secret, 'client', transcript) }));
      const tag = tagOf === 'session' ? sessionTags(secret, transcript).clientToServer : connectionTag(raw.accept);
      raw.ws.send(sealMessage(1, encodeFrame({ kind: 'note', type: 'x', body: null }), tag));
      if (tagOf === 'session') {
        await new Promise((r) => setTimeout(r, 100));
        expect(handled).toBe(1);
        raw.ws.terminate();
      } else {
        expect((await raw.closed).code).toBe(1002);
        expect(handled).toBe(1);
      }
    }
  });

  it('a connection that never proves itself is closed after helloTimeoutMs, counted as timeout', async () => {
    const t = new WsTransport({ nodeId: 'b', cluster: CLUSTER, secrets: { current: randomSecret() }, helloTimeoutMs: 100 });
    const srv = await listenPeerServer(t);
    cleanups.push(async () => {
      await srv.close();
      await t.close();
    });
    const raw = await rawHello(srv.address, 'slow');
    expect((await raw.closed).code).toBe(1008);
    expect(t.stats().authFailures.inbound.timeout).toBe(1);
  });

  it('the secret never shows: not in JSON, inspect, string form, pino logs, or errors about its source', () => {
    const text = 'a very secret cluster secret of enough bytes';
    const secret = PeerSecret.from(text);
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    log.info({ secrets: { current: secret } }, 'starting');
    for (const shown of [JSON.stringify({ secret }), inspect({ secret }, { depth: 5 }), String(secret), `${secret}`, lines.join('')]) {
      expect(shown).not.toContain(text);
      expect(shown).toMatch(/redacted/);
    }
    expect(() => PeerSecret.from('short', 'environment variable X')).toThrow(/environment variable X: a cluster secret must be at least 16 bytes/);
    expect(() => PeerSecret.from('short', 'environment variable X')).not.toThrow(/short/);
  });
});

describe('where the secret comes from', () => {
  it('flag file over environment file over environment value; previous likewise; trimmed; no previous without a current', () => {
    const dir = tempDir('ringkv-secrets-');
    cleanups.push(() => dir.remove());
    const file = (name: string, content: string) => {
      const path = join(dir.path, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    const flag = file('flag', 'flag-secret-0123456789\n');
    const envFile = file('env', 'env-file-secret-0123456789');
    const prev = file('prev', '  previous-secret-0123456789  \n');
    const fromFlag = PeerSecret.from('flag-secret-0123456789');
    const same = (a: PeerSecret | undefined, b: PeerSecret) => a !== undefined && checkProofs([b], 'client', T, [makeProof(a, 'client', T)]) === b;
    const s1 = loadPeerSecrets({ secretFile: flag }, { RINGKV_CLUSTER_SECRET_FILE: envFile, RINGKV_CLUSTER_SECRET: 'value-secret-0123456789' })!;
    expect(same(s1.current, fromFlag)).toBe(true);
    const s2 = loadPeerSecrets({}, { RINGKV_CLUSTER_SECRET_FILE: envFile, RINGKV_CLUSTER_SECRET: 'value-secret-0123456789' })!;
    expect(same(s2.current, PeerSecret.from('env-file-secret-0123456789'))).toBe(true);
    const s3 = loadPeerSecrets({ previousSecretFile: prev }, { RINGKV_CLUSTER_SECRET: 'value-secret-0123456789' })!;
    expect(same(s3.current, PeerSecret.from('value-secret-0123456789'))).toBe(true);
    expect(same(s3.previous, PeerSecret.from('previous-secret-0123456789'))).toBe(true);
    expect(loadPeerSecrets({}, {})).toBeNull();
    expect(() => loadPeerSecrets({ previousSecretFile: prev }, {})).toThrow(/previous cluster secret was given without a current one/);
    expect(() => readSecretFile(join(dir.path, 'missing'))).toThrow(/cannot read the cluster secret file/);
    expect(() => readSecretFile(file('short', 'abc'))).toThrow(/at least 16 bytes/);
    // Raw random bytes are taken as they are (not decoded as text, which would lose some of them).
    const raw = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 128) % 256));
    writeFileSync(join(dir.path, 'raw'), raw, { mode: 0o600 });
    expect(same(readSecretFile(join(dir.path, 'raw')), PeerSecret.from(raw))).toBe(true);
    expect(same(readSecretFile(join(dir.path, 'raw')), PeerSecret.from(raw.toString('utf8')))).toBe(false);
  });

  it('ensureSecretFile makes a 0600 file of 32 random bytes once and keeps it after', () => {
    const dir = tempDir('ringkv-secrets-');
    cleanups.push(() => dir.remove());
    const path = join(dir.path, 'cluster.secret');
    expect(ensureSecretFile(path)).toBe(true);
    const first = readFileSync(path, 'utf8');
    expect(first).toMatch(/^[0-9a-f]{64}\n$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ensureSecretFile(path)).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe(first);
    chmodSync(path, 0o644);
    expect(readSecretFile(path)).toBeInstanceOf(PeerSecret);
  });

  it('a node without a secret refuses to start; insecure mode only on loopback listen and advertise addresses', async () => {
    const dir = tempDir('ringkv-nosecret-');
    cleanups.push(() => dir.remove());
    const base = { nodeId: 'n1', port: 0, dataDir: dir.path, logger: pino({ level: 'silent' }) };
    await expect(startServer(base)).rejects.toThrow(/no cluster secret/);
    await expect(startServer({ ...base, insecureLoopback: true, host: '0.0.0.0' })).rejects.toThrow(/insecure loopback mode needs loopback/);
    await expect(startServer({ ...base, insecureLoopback: true, advertise: '10.1.2.3:7000' })).rejects.toThrow(/insecure loopback mode needs loopback/);
    await expect(startServer({ ...base, insecureLoopback: true, peerSecrets: { current: randomSecret() } })).rejects.toThrow(/not both/);
    const s = await startServer({ ...base, insecureLoopback: true, host: '127.0.0.1' });
    await s.close(500);
    expect(isLoopbackHost('127.9.9.9') && isLoopbackHost('::1') && isLoopbackHost('[::1]') && isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('128.0.0.1') || isLoopbackHost('0.0.0.0') || isLoopbackHost('::') || isLoopbackHost('example.com')).toBe(false);
  });

  it('an insecure-loopback node and a node with a secret do not talk to each other', async () => {
    const open = await node('open', INSECURE_LOOPBACK_SECRETS);
    const closed = await node('closed', { current: randomSecret() });
    expect(await result(open.t.request(closed.ref, 'ping', null, 2_000))).toBe('REFUSED');
    expect(await result(closed.t.request(open.ref, 'ping', null, 2_000))).toBe('REFUSED');
  });
});

const T: Transcript = { version: PROTOCOL_VERSION, cluster: 'c', clientId: 'a', serverId: 'b', clientNonce: Buffer.alloc(32, 1), serverNonce: Buffer.alloc(32, 2) };

/** Opens /peer, sends a hello as `nodeId`, waits for the server's hello. */
async function rawHello(address: string, nodeId: string): Promise<{ ws: WebSocket; nonce: Buffer; serverNonce: Uint8Array; accept: string; closed: Promise<{ code: number }> }> {
  const ws = new WebSocket(`ws://${address}/peer`, { perMessageDeflate: false });
  let accept = '';
  ws.on('upgrade', (res) => {
    accept = String(res.headers['sec-websocket-accept']);
  });
  ws.on('error', () => undefined);
  cleanups.push(() => ws.terminate());
  const closed = new Promise<{ code: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not closed within 5 s')), 5_000);
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code });
    });
  });
  closed.catch(() => undefined);
  const serverHello = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const nonce = newNonce();
  ws.send(encodeFrame({ kind: 'hello', version: PROTOCOL_VERSION, nodeId, cluster: CLUSTER, nonce }));
  const d = decodeFrames(await serverHello);
  if (!d.ok || d.frames[0]!.kind !== 'hello' || d.frames[0]!.nonce === undefined) throw new Error('no server hello');
  return { ws, nonce, serverNonce: d.frames[0]!.nonce, accept, closed };
}
