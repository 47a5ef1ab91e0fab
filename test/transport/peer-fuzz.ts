// A peer-frame fuzzer against a real cluster: 3 `ringkv start` processes
// (native engine, uWS `/peer` endpoint, real sockets on 127.0.0.1, started
// with --unhandled-rejections=strict so a rejection nobody handles kills a
// node and the run sees it). The fuzzer speaks the peer protocol itself
// (src/transport/frames.ts): hello, then sealed messages of frames, and
// sends, seeded and bounded,
//   - random bytes (plain and sealed), and random msgpack values as frames,
//   - requests of every message type of src/node/messages.ts with random
//     bodies, and with real bodies mutated (a field dropped, replaced by a
//     value of another type, a binary field cut, flipped or swapped for
//     random bytes, a number made negative, fractional, huge or a bigint,
//     arrays made long, nesting deep),
//   - the frame of issue 11 that once killed a node,
//   - half the kv.get / kv.merge requests as hot frames (protocol version 5,
//     src/transport/hot-codec.ts) where their body fits one, and hot frames
//     of valid requests with a byte changed or cut short.
// Every request must get a reply; an error reply must carry a typed code
// (never INTERNAL, never none: an untyped error is a throw from inside a
// handler). A connection closed for a protocol error is reopened. At the
// end every node must be alive and answer, and the canary keys written
// before the fuzz must be byte-identical on every replica (read through
// each node's own 'kv.get', which answers with its local copy).
//
// Membership messages ('join', 'gossip') are fuzzed with bodies of another
// cluster: a well-formed one of this cluster is a legitimate membership
// change from a peer that holds the cluster secret (issue 11 items 1-2,
// peer authentication and member validation, draw that line), and would
// move the canaries' replicas.
//
// Used by test/transport/peer-fuzz.test.ts (bounded, in `npm test`) and by
// `npm run fuzz:peer -- --frames N --seed S` (bench/fuzz-peer.ts, long runs).
import { existsSync, readFileSync } from 'node:fs';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { PEER_MESSAGE_TYPES, type PeerMessageType } from '../../src/node/messages.js';
import { PROTOCOL_VERSION, decodeFrames, encodeFrame, encodeRequest, openMessage, sealMessage, type Frame } from '../../src/transport/frames.js';
import { encodeHotRequest } from '../../src/transport/hot-codec.js';
import { checkProofs, makeProof, newNonce, sessionTags, type Transcript } from '../../src/transport/peer-auth.js';
import { TEST_PEER_SECRETS, writeTestSecretFile } from '../helpers/secret.js';
import { Rand } from '../helpers/random.js';
import { closedPort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));
export const FUZZ_CLUSTER = 'fuzz';
export const PARTITION_BITS = 6;
/** The engine's default tree geometry (src/engine/types.ts), as the nodes run it. */
const GEOMETRY = [PARTITION_BITS, 5, 5];
const CANARY_BUCKET = Buffer.from('canary');
/** Buckets the fuzzer writes to: never the canaries'. */
const FUZZ_BUCKETS = ['fz', 'fz2', 'fzset'].map((b) => Buffer.from(b));

// ---------------------------------------------------------------------------
// The cluster

export interface FuzzNode {
  id: string;
  address: string;
  child: ChildProcess;
  output(): string;
}

export interface FuzzCluster {
  nodes: FuzzNode[];
  /** HTTP headers with the cluster's first admin token (n1 writes it; every route but /ping needs a token). */
  http: Record<string, string>;
  /** Nodes whose process has exited (with how). */
  dead(): string[];
  close(): Promise<void>;
}


async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} (after ${timeoutMs} ms)${last ? `: ${String(last)}` : ''}`);
}

async function status(address: string, http: Record<string, string>): Promise<{ members: Array<{ status: string; partitions: number }>; transfers?: unknown[] }> {
  const res = await fetch(`http://${address}/status`, { headers: http, signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as { members: Array<{ status: string; partitions: number }>; transfers?: unknown[] };
}

/** Starts 3 nodes as processes and waits (bounded) until they form one cluster with no transfer pending. */
export async function startFuzzCluster(count = 3): Promise<FuzzCluster> {
  const dir = tempDir('ringkv-fuzz-');
  const nodes: FuzzNode[] = [];
  const exits = new Map<string, string>();
  const ports = await Promise.all(Array.from({ length: count }, () => closedPort()));
  const secretFile = writeTestSecretFile(dir.path);
  for (let i = 0; i < count; i++) {
    const id = `n${i + 1}`;
    const address = `127.0.0.1:${ports[i]}`;
    const args = [
      '--unhandled-rejections=strict',
      CLI, 'start', '--node-id', id, '--listen', address, '--data-dir', `${dir.path}/${id}`,
      '--cluster', FUZZ_CLUSTER, '--partition-bits', String(PARTITION_BITS), '--log-level', 'error',
      '--secret-file', secretFile,
      ...(i === 0 ? [] : ['--seeds', `127.0.0.1:${ports[0]}`]),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    // The last 64 KiB of what the node printed, for the failure message.
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-65_536));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('exit', (code, signal) => exits.set(id, `exited with ${signal ?? code}`));
    nodes.push({ id, address, child, output: () => output });
  }
  const http: Record<string, string> = {};
  const cluster: FuzzCluster = {
    nodes,
    http,
    dead: () => [...exits].map(([id, how]) => `${id} ${how}`),
    close: async () => {
      await Promise.all(
        nodes.map(async (n) => {
          if (n.child.exitCode !== null || n.child.signalCode !== null) return;
          const exited = once(n.child, 'exit');
          n.child.kill('SIGTERM');
          const timer = setTimeout(() => n.child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }),
      );
      dir.remove();
    },
  };
  try {
    await waitUntil(async () => {
      if (exits.size > 0) throw new Error(`a node died while starting: ${cluster.dead().join(', ')}\n${nodes.map((n) => n.output()).join('\n')}`);
      const tokenFile = `${dir.path}/n1/admin.token`;
      if (http.authorization === undefined) {
        if (!existsSync(tokenFile)) return false;
        http.authorization = `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`;
      }
      const all = await Promise.all(nodes.map((n) => status(n.address, http)));
      return all.every((s) => s.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === count && (s.transfers ?? []).length === 0);
    }, 60_000, 'the fuzz cluster did not form');
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

// ---------------------------------------------------------------------------
// A raw peer connection

export interface Reply {
  ok?: unknown;
  error?: { code: string; message: string; remoteCode?: string };
}

/** Plain msgpack as the nodes read it (frames.ts). */
const codec = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', moreTypes: false });

export class PeerConnection {
  private sendSeq = 0;
  private recvSeq = 0;
  private nextId = 1;
  private readonly pending = new Map<number, (reply: Reply) => void>();
  private helloWaiter: ((frame: Frame | Error) => void) | null = null;
  /** Why the server closed the connection (null while open). */
  closedWith: string | null = null;
  /** Something the node sent that breaks the protocol (the run fails on it). */
  fault: string | null = null;
  private readonly closedPromise: Promise<void>;

  /** The envelope tags of this connection, one per direction, set by the handshake (peerHandshake). */
  sendTag = 0;
  recvTag = 0;

  private constructor(private readonly ws: WebSocket) {
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = `${code} ${reason.toString()}`;
        for (const resolveReply of this.pending.values()) resolveReply({ error: { code: 'CLOSED', message: this.closedWith } });
        this.pending.clear();
        this.helloWaiter?.(new Error(`closed before the hello: ${this.closedWith}`));
        resolve();
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => this.onMessage(data));
  }

  /** Opens a WebSocket to a node's /peer endpoint (no hello yet). */
  static async connect(address: string): Promise<PeerConnection> {
    const ws = new WebSocket(`ws://${address}/peer`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`no WebSocket to ${address} within 5 s`));
      }, 5_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return new PeerConnection(ws);
  }

  get open(): boolean {
    return this.closedWith === null && this.ws.readyState === WebSocket.OPEN;
  }

  closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Sends a plain message (the hello travels so; anything else plain is a protocol error). */
  sendPlain(bytes: Uint8Array): void {
    if (this.open) this.ws.send(bytes, { binary: true });
  }

  /** Sends one sealed message whose payload is `payload` (the frames' bytes, or anything). */
  sendSealed(payload: Uint8Array): void {
    if (!this.open) return;
    this.sendSeq += 1;
    this.ws.send(sealMessage(this.sendSeq, payload, this.sendTag), { binary: true });
  }

  /** Waits for the server's hello (the first message back). */
  waitHello(timeoutMs: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no hello from the server')), timeoutMs);
      this.helloWaiter = (f) => {
        clearTimeout(timer);
        this.helloWaiter = null;
        if (f instanceof Error) reject(f);
        else resolve(f);
      };
    });
  }

  /** A request frame (bytes) with a fresh id, and the promise of its reply. */
  /** `hot`: in the hot encoding of protocol version 5 where it carries the body (kv.get, kv.merge), else msgpack. */
  request(type: string, body: unknown, hot = false): { frame: Buffer; reply: Promise<Reply> } {
    const id = this.nextId++;
    const frame = hot ? encodeRequest({ kind: 'req', id, type, body }, PROTOCOL_VERSION) : codec.pack([1, id, type, body]);
    return { frame, reply: this.expect(id) };
  }

  /** The promise of the reply to request `id`. */
  expect(id: number): Promise<Reply> {
    return new Promise((resolve) => {
      if (!this.open) resolve({ error: { code: 'CLOSED', message: this.closedWith ?? 'not open' } });
      else this.pending.set(id, resolve);
    });
  }

  /** Takes a request id (for frames built by hand). */
  takeId(): number {
    return this.nextId++;
  }

  /** Sends frames as one sealed message and waits for each request's reply. */
  async call(type: string, body: unknown): Promise<Reply> {
    const { frame, reply } = this.request(type, body);
    this.sendSealed(frame);
    return reply;
  }

  close(): void {
    try {
      this.ws.close();
    } catch {
      // already closed
    }
  }

  private broken(why: string): void {
    this.fault ??= why;
    this.close();
  }

  private onMessage(data: Buffer): void {
    let payload: Buffer = data;
    if (this.helloWaiter === null) {
      const o = openMessage(this.recvSeq + 1, data, this.recvTag);
      if (!o.ok) return this.broken(`the node sent a message that fails its envelope: ${o.reason}`);
      this.recvSeq += 1;
      payload = o.payload;
    }
    // After the handshake the connection is of PROTOCOL_VERSION, whose replies may be hot frames.
    const d = decodeFrames(payload, this.helloWaiter === null);
    if (!d.ok) return this.broken(`the node sent malformed frames: ${d.reason}`);
    for (const f of d.frames) {
      if (this.helloWaiter) {
        this.helloWaiter(f);
        continue;
      }
      if (f.kind === 'res') {
        const resolve = this.pending.get(f.id);
        if (!resolve) continue;
        this.pending.delete(f.id);
        resolve('error' in f ? { error: f.error } : { ok: f.ok });
      } else if (f.kind === 'bye') {
        this.close();
      }
    }
  }
}

/**
 * The handshake: everything a peer does before its first request. The fuzzer
 * holds the cluster secret (it fuzzes what an authenticated peer can send;
 * test/cluster/peer-auth.test.ts covers strangers): a hello with a fresh
 * nonce, the server's hello with its proof (checked), then our proof alone
 * and plain, and from then on the session's envelope tags.
 */
export async function peerHandshake(conn: PeerConnection, self: { nodeId: string; cluster: string }): Promise<void> {
  const clientNonce = newNonce();
  const answer = conn.waitHello(5_000);
  conn.sendPlain(encodeFrame({ kind: 'hello', version: PROTOCOL_VERSION, nodeId: self.nodeId, cluster: self.cluster, nonce: clientNonce }));
  const f = await answer;
  if (f.kind !== 'hello' || f.nonce === undefined) throw new Error(`expected the server's hello with a nonce, got ${f.kind}`);
  const transcript: Transcript = { version: f.version, cluster: f.cluster, clientId: self.nodeId, serverId: f.nodeId, clientNonce, serverNonce: f.nonce };
  const secret = TEST_PEER_SECRETS.current;
  if (checkProofs([secret], 'server', transcript, f.proofs ?? []) === null) throw new Error('the server did not prove it holds the cluster secret');
  const tags = sessionTags(secret, transcript);
  conn.sendTag = tags.clientToServer;
  conn.recvTag = tags.serverToClient;
  conn.sendPlain(encodeFrame({ kind: 'auth', proof: makeProof(secret, 'client', transcript) }));
}

/** A connection that has done the handshake. */
export async function openPeer(address: string, nodeId = 'fuzzer'): Promise<PeerConnection> {
  const conn = await PeerConnection.connect(address);
  await peerHandshake(conn, { nodeId, cluster: FUZZ_CLUSTER });
  return conn;
}

// ---------------------------------------------------------------------------
// Bodies

/** Real records and keys, read from the cluster before the fuzz (mutation material). */
export interface Material {
  records: Buffer[];
  tombstones: Buffer[];
}

function randomKey(r: Rand): Buffer {
  return r.chance(0.9) ? Buffer.from(`k${r.int(0, 999)}`) : r.bytes(r.int(0, 300));
}

function indices(r: Rand, width: 2 | 4, limit: number): Buffer {
  const n = r.int(0, 8);
  const out = Buffer.alloc(n * width);
  for (let i = 0; i < n; i++) {
    const v = r.chance(0.9) ? r.int(0, limit - 1) : r.int(0, width === 2 ? 0xffff : 0x7fffffff);
    if (width === 2) out.writeUInt16BE(v, i * 2);
    else out.writeUInt32BE(v, i * 4);
  }
  return out;
}

/** A well-formed body of `type` (what a real peer would send), on the fuzz buckets. */
export function validBody(type: PeerMessageType, r: Rand, m: Material): unknown {
  const b = r.pick(FUZZ_BUCKETS);
  const k = randomKey(r);
  const record = () => r.pick(m.records);
  const partitions = 1 << PARTITION_BITS;
  switch (type) {
    case 'ping':
      return {};
    case 'kv.get':
      return { b, k, ring: r.int(0, 10), hints: r.chance(0.5) };
    case 'kv.merge':
      return { b, k, record: record(), lww: r.chance(0.3), durable: r.chance(0.5), hint: r.chance(0.2) ? r.pick(['n1', 'n2', 'n3']) : null };
    case 'kv.mergebatch':
      return { items: Array.from({ length: r.int(1, 4) }, () => ({ b, k: randomKey(r), record: record(), lww: r.chance(0.3) })), durable: r.chance(0.5) };
    case 'kv.reapcheck':
      return { b, k };
    case 'kv.reap':
      return { b, k, record: m.tombstones.length > 0 ? r.pick(m.tombstones) : record() };
    case 'kv.put':
      return { b, k, context: null, value: r.bytes(r.int(0, 64)), n: 3, w: r.int(1, 3), dw: r.int(0, 1), pw: 0, timeoutMs: 2_000, wid: `fuzzer:${r.int(0, 1e9)}:0` };
    case 'gossip':
      return {
        state: {
          clusterName: 'another-cluster',
          members: { x1: { id: 'x1', address: '127.0.0.1:9', status: 'valid', version: r.int(1, 9) } },
          ring: { version: r.int(1, 9), claimant: 'x1', partitionBits: PARTITION_BITS, packedOwners: r.bytes(partitions + 2) },
          buckets: {},
        },
      };
    case 'join':
      return { cluster: 'another-cluster', member: { id: 'ghost', address: '127.0.0.1:9', zone: r.chance(0.5) ? 'z' : undefined } };
    case 'aae.roots':
      return { q: indices(r, 4, partitions), g: GEOMETRY };
    case 'aae.root':
      return { p: r.int(0, partitions - 1), g: GEOMETRY };
    case 'aae.branches':
      return { p: r.int(0, partitions - 1) };
    case 'aae.segments':
      return { p: r.int(0, partitions - 1), q: indices(r, 2, 32) };
    case 'aae.keys':
      return { p: r.int(0, partitions - 1), q: indices(r, 4, 32 * 32) };
    case 'aae.get':
      return { items: Array.from({ length: r.int(0, 6) }, () => ({ b, k: randomKey(r) })) };
    case 'xfer.batch':
      return { partition: r.int(0, partitions - 1), items: Array.from({ length: r.int(0, 4) }, () => ({ b, k: randomKey(r), record: record() })) };
    case 'xfer.finish':
      return r.chance(0.5) ? { partitions: [r.int(0, partitions - 1)], ring: r.int(0, 10) } : { partition: r.int(0, partitions - 1), ring: r.int(0, 10) };
    case 'xfer.status':
      return { partition: r.int(0, partitions - 1) };
    case 'list.page':
      return { p: r.int(0, partitions - 1), after: null, b: r.chance(0.8) ? b : null, limit: r.int(1, 100), values: r.chance(0.5), buckets: r.chance(0.2), last: null, ring: r.int(0, 10) };
    case 'sets.update':
      return { b: FUZZ_BUCKETS[2], k, add: [r.bytes(r.int(1, 16))], remove: r.chance(0.3) ? [r.bytes(4)] : null, context: null, w: 2, timeoutMs: 2_000 };
  }
}

/** A random msgpack-able value, up to `depth` levels deep. */
export function randomValue(r: Rand, depth = 3): unknown {
  const pick = r.int(0, depth > 0 ? 13 : 10);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.int(-1000, 1000);
    case 3:
      return r.pick([0, -1, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0]);
    case 4:
      return BigInt(r.int(0, 0x7fffffff)) * 2n ** 33n;
    case 5:
      return r.bytes(r.int(0, 40));
    case 6:
      return 'x'.repeat(r.int(0, 40));
    case 7:
      return r.pick(['', '__proto__', 'constructor', 'n1', 'kv.get', '\u0000', 'é'.repeat(10)]);
    case 8:
      return undefined;
    case 9:
      return r.bytes(r.int(0, 5)).toString('latin1');
    case 10:
      return r.int(0, 255);
    case 11:
      return Array.from({ length: r.int(0, 5) }, () => randomValue(r, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(0, 5); i > 0; i--) setOwn(o, r.pick(['b', 'k', 'record', 'items', 'p', 'q', 'g', 'state', 'member', 'ring', 'partitions', 'x', '__proto__']), randomValue(r, depth - 1));
      return o;
    }
  }
}

/** Sets an own property, even one named `__proto__` (an assignment would change the prototype). */
function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A mutation of a value: what a broken or hostile peer might make of a good body. */
export function mutate(v: unknown, r: Rand, depth = 0): unknown {
  if (depth < 4 && r.chance(0.6)) {
    if (Array.isArray(v) && v.length > 0) {
      const out = [...v];
      const i = r.int(0, out.length - 1);
      switch (r.int(0, 4)) {
        case 0:
          out.splice(i, 1);
          return out;
        case 1:
          out.push(...Array.from({ length: r.int(1, 3) }, () => r.chance(0.5) ? out[i] : randomValue(r)));
          return out;
        default:
          out[i] = mutate(out[i], r, depth + 1);
          return out;
      }
    }
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
      const o: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(v as Record<string, unknown>)) setOwn(o, key, value);
      const keys = Object.keys(o);
      if (keys.length > 0) {
        const key = r.pick(keys);
        switch (r.int(0, 5)) {
          case 0:
            delete o[key];
            return o;
          case 1:
            setOwn(o, r.pick(['x', 'items', 'b', 'p', '__proto__', 'constructor']), randomValue(r));
            return o;
          default:
            setOwn(o, key, mutate(o[key], r, depth + 1));
            return o;
        }
      }
    }
  }
  if (v instanceof Uint8Array) {
    const buf = Buffer.from(v);
    switch (r.int(0, 5)) {
      case 0:
        return buf.subarray(0, r.int(0, buf.length));
      case 1:
        if (buf.length > 0) buf[r.int(0, buf.length - 1)] ^= 1 << r.int(0, 7);
        return buf;
      case 2:
        return Buffer.concat([buf, r.bytes(r.int(1, 16))]);
      case 3:
        return r.bytes(r.int(0, 64));
      case 4:
        return buf.toString('latin1');
      default:
        return randomValue(r);
    }
  }
  if (typeof v === 'number') return r.pick([-v, v + 0.5, v * 2 ** 40, -1, 2 ** 32, Number.NaN, BigInt(2) ** 60n, String(v), null]);
  return randomValue(r);
}

// ---------------------------------------------------------------------------
// The run

export interface FuzzOptions {
  seed: number;
  /** Frames to send in all (each random-bytes message counts as one). */
  frames: number;
  /** Requests outstanding at most (the node answers them all). */
  window?: number;
  /** A reply not back in this long fails the run (a node that stopped answering). */
  replyTimeoutMs?: number;
  /** Called every ~10% with the frames sent so far. */
  progress?: (sent: number) => void;
}

export interface FuzzReport {
  frames: number;
  requests: number;
  /** Replies by outcome: 'ok', or the error's remote code. */
  replies: Record<string, number>;
  /** Requests per message type. */
  byType: Record<string, number>;
  /** Connections the node closed (protocol errors, by reason prefix). */
  closes: Record<string, number>;
  /** Error replies that were not typed: no code, INTERNAL, or an unexpected one (each with its request). */
  untyped: string[];
  /** Messages from a node that broke the protocol (envelope, frames). */
  faults: string[];
  ms: number;
}

/** The remote codes a bad or unlucky request may get: each a typed refusal, none "something broke". */
export const ALLOWED_REMOTE_CODES = new Set([
  'BAD_REQUEST',
  'UNAVAILABLE',
  'CLUSTER_MISMATCH',
  'KEY_TOO_LARGE',
  'VALUE_TOO_LARGE',
  'BAD_CONTEXT',
  'TOO_MANY_SIBLINGS',
  'QUORUM_FAILED',
  'TIMEOUT',
  'NOT_A_SET',
  'INVALID_BUCKET_PROPS',
]);

/** Reads a key's local record from one node (its own copy: kv.get without hints). */
export async function localRecord(conn: PeerConnection, bucket: Buffer, key: Buffer): Promise<Buffer | null> {
  const reply = await conn.call('kv.get', { b: bucket, k: key });
  if (reply.error) throw new Error(`kv.get ${key.toString()}: ${reply.error.code} ${reply.error.remoteCode ?? ''} ${reply.error.message}`);
  const rec = (reply.ok as { record: Uint8Array | null }).record;
  return rec ? Buffer.from(rec) : null;
}

export interface Canaries {
  keys: Buffer[];
  /** Per node id, per key (index): the record bytes before the fuzz. */
  before: Map<string, Array<Buffer | null>>;
}

/** Writes canary keys through HTTP (w = dw = 3: every replica) and fuzz material; snapshots each replica's copy. */
export async function prepare(cluster: FuzzCluster, count: number): Promise<{ canaries: Canaries; material: Material }> {
  const base = `http://${cluster.nodes[0]!.address}`;
  const keys = Array.from({ length: count }, (_, i) => Buffer.from(`canary-${i}`));
  for (const [i, key] of keys.entries()) {
    const res = await fetch(`${base}/kv/${CANARY_BUCKET}/${key}?w=3&dw=3`, { method: 'PUT', headers: cluster.http, body: `value-${i}`, signal: AbortSignal.timeout(10_000) });
    if (res.status !== 204 && res.status !== 200) throw new Error(`canary write ${key}: HTTP ${res.status} ${await res.text()}`);
  }
  // Mutation material: real records of the fuzz bucket, and a tombstone.
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${base}/kv/fz/m${i}?w=3`, { method: 'PUT', headers: cluster.http, body: `material-${i}`, signal: AbortSignal.timeout(10_000) });
    if (res.status >= 300) throw new Error(`material write: HTTP ${res.status}`);
  }
  const conn = await openPeer(cluster.nodes[0]!.address, 'fuzz-prepare');
  const records: Buffer[] = [];
  for (let i = 0; i < 4; i++) {
    const rec = await localRecord(conn, Buffer.from('fz'), Buffer.from(`m${i}`));
    if (rec) records.push(rec);
  }
  const tombstones: Buffer[] = [];
  const del = await fetch(`${base}/kv/fz/m0?w=3`, { method: 'DELETE', headers: cluster.http, signal: AbortSignal.timeout(10_000) });
  if (del.status < 300) {
    const t = await localRecord(conn, Buffer.from('fz'), Buffer.from('m0'));
    if (t) tombstones.push(t);
  }
  conn.close();
  if (records.length === 0) throw new Error('no material records');
  const before = await snapshot(cluster, keys);
  for (const [id, recs] of before) {
    const missing = recs.filter((r) => r === null).length;
    if (missing > 0) throw new Error(`${id} lacks ${missing} canaries right after their w=3 dw=3 writes`);
  }
  return { canaries: { keys, before }, material: { records, tombstones } };
}

/** Each node's own copy of each key. */
export async function snapshot(cluster: FuzzCluster, keys: Buffer[]): Promise<Map<string, Array<Buffer | null>>> {
  const out = new Map<string, Array<Buffer | null>>();
  for (const n of cluster.nodes) {
    const conn = await openPeer(n.address, 'fuzz-check');
    const recs: Array<Buffer | null> = [];
    for (const key of keys) recs.push(await localRecord(conn, CANARY_BUCKET, key));
    conn.close();
    out.set(n.id, recs);
  }
  return out;
}

/** What differs between the canaries' copies before and now (empty: intact on every replica). */
export async function checkCanaries(cluster: FuzzCluster, canaries: Canaries): Promise<string[]> {
  const now = await snapshot(cluster, canaries.keys);
  const problems: string[] = [];
  for (const [id, recs] of canaries.before) {
    recs.forEach((before, i) => {
      const after = now.get(id)![i];
      if (!before || !after || !before.equals(after)) problems.push(`${id}: canary-${i} ${after ? 'changed' : 'missing'}`);
    });
  }
  const base = `http://${cluster.nodes[0]!.address}`;
  for (const [i, key] of canaries.keys.entries()) {
    const res = await fetch(`${base}/kv/${CANARY_BUCKET}/${key}?r=3`, { headers: cluster.http, signal: AbortSignal.timeout(10_000) });
    const body = await res.text();
    if (res.status !== 200 || body !== `value-${i}`) problems.push(`HTTP read of canary-${i}: ${res.status} ${body.slice(0, 80)}`);
  }
  return problems;
}

/** The frame of issue 11: a valid first item, then an item of numbers (it once exited the process). */
export function issue11Frame(id: number): Buffer {
  return codec.pack([1, id, 'kv.mergebatch', { items: [{ b: Buffer.from('b'), k: Buffer.from('k'), record: Buffer.from([1, 0, 0, 0, 1]) }, { b: 1, k: 1, record: 1 }] }]);
}

/** Runs the fuzz against the cluster's nodes (round robin, one connection each, reopened when closed). */
export async function fuzz(cluster: FuzzCluster, material: Material, opts: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const r = new Rand(opts.seed);
  const window = opts.window ?? 128;
  const replyTimeoutMs = opts.replyTimeoutMs ?? 30_000;
  const report: FuzzReport = { frames: 0, requests: 0, replies: {}, byType: {}, closes: {}, untyped: [], faults: [], ms: 0 };
  const conns = new Map<string, PeerConnection>();
  const count = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
  const connOf = async (address: string): Promise<PeerConnection> => {
    const c = conns.get(address);
    if (c?.open) return c;
    if (c?.fault) report.faults.push(c.fault);
    if (c) count(report.closes, (c.closedWith ?? 'closed').replace(/[0-9]+/g, '#').slice(0, 60));
    const fresh = await openPeer(address);
    conns.set(address, fresh);
    return fresh;
  };
  const outstanding = new Set<Promise<void>>();
  const track = (type: string, body: unknown, reply: Promise<Reply>): void => {
    report.requests++;
    count(report.byType, type);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Reply>((resolve) => {
      timer = setTimeout(() => resolve({ error: { code: 'NO_REPLY', message: `no reply in ${replyTimeoutMs} ms` } }), replyTimeoutMs);
    });
    const p = Promise.race([reply, timeout]).then((res) => {
      clearTimeout(timer);
      outstanding.delete(p);
      if (!res.error) return void count(report.replies, 'ok');
      const code = res.error.code === 'REMOTE' ? (res.error.remoteCode ?? 'UNTYPED') : res.error.code;
      count(report.replies, code);
      // A closed connection (our own malformed frame in the same message) and the node's overload refusal are not the handler's answer.
      if (code === 'CLOSED' || code === 'OVERLOADED') return;
      if (!ALLOWED_REMOTE_CODES.has(code) && report.untyped.length < 50) {
        report.untyped.push(`${type} → ${code}: ${res.error.message.slice(0, 200)} (body ${describeBody(body)})`);
      }
    });
    outstanding.add(p);
  };
  let nextProgress = Math.ceil(opts.frames / 10);
  let turn = 0;
  while (report.frames < opts.frames) {
    while (outstanding.size >= window) await Promise.race(outstanding);
    const node = cluster.nodes[turn++ % cluster.nodes.length]!;
    const conn = await connOf(node.address);
    const roll = r.int(0, 999);
    if (roll < 20) {
      // Random bytes: plain (fails the envelope) or sealed (fails the frame decoding). Either closes the connection.
      const bytes = r.bytes(r.int(0, 300));
      if (r.chance(0.5)) conn.sendPlain(bytes);
      else conn.sendSealed(bytes);
      report.frames++;
      // Bounded: sealed bytes that happen to be well-formed frames keep the connection open.
      await Promise.race([conn.closed(), new Promise((res) => setTimeout(res, 2_000))]);
      if (conn.open) conn.close();
      continue;
    }
    if (roll < 40) {
      // A random msgpack value as a frame, sealed: almost never a well-formed frame.
      // Half of them tagged like a frame (a known tag, then random fields).
      const value = r.chance(0.5) ? randomValue(r, 4) : [r.int(0, 6), ...Array.from({ length: r.int(0, 4) }, () => randomValue(r, 2))];
      conn.sendSealed(codec.pack(value));
      report.frames++;
      await Promise.race([conn.closed(), new Promise((res) => setTimeout(res, 20))]);
      continue;
    }
    if (roll < 60 && roll >= 45) {
      // A hot frame (protocol version 5) of a valid kv.get or kv.merge with one byte changed or cut short, sealed:
      // a request the node answers (typed), or a frame it refuses by closing the connection, never a crash.
      const type = r.chance(0.5) ? 'kv.get' : 'kv.merge';
      const hot = encodeHotRequest({ kind: 'req', id: conn.takeId(), type, body: validBody(type, r, material) });
      if (hot) {
        const bad = Buffer.from(hot);
        if (r.chance(0.5)) bad[r.int(0, bad.length - 1)] = r.int(0, 255);
        conn.sendSealed(r.chance(0.3) ? bad.subarray(0, r.int(1, bad.length)) : bad);
        report.frames++;
        await Promise.race([conn.closed(), new Promise((res) => setTimeout(res, 20))]);
        continue;
      }
    }
    if (roll < 45) {
      // The frame of issue 11.
      const id = conn.takeId();
      track('kv.mergebatch (issue 11)', 'issue 11 frame', conn.expect(id));
      conn.sendSealed(issue11Frame(id));
      report.frames++;
      continue;
    }
    // A message of 1..32 requests of real types, their bodies valid, mutated, or random.
    const frames: Buffer[] = [];
    const n = Math.min(r.int(1, 32), opts.frames - report.frames, window);
    for (let i = 0; i < n; i++) {
      const type = r.pick(PEER_MESSAGE_TYPES);
      const shape = r.int(0, 9);
      let body = shape === 0 ? validBody(type, r, material) : shape === 1 ? randomValue(r, 4) : mutate(validBody(type, r, material), r);
      if (shape === 2) body = mutate(mutate(body, r), r);
      let packed: { frame: Buffer; reply: Promise<Reply> };
      try {
        packed = conn.request(type, body, r.chance(0.5));
      } catch {
        continue; // not msgpack-able (cannot happen with these values, but a generator change must not break the run)
      }
      frames.push(packed.frame);
      track(type, body, packed.reply);
    }
    conn.sendSealed(Buffer.concat(frames));
    report.frames += frames.length;
    if (opts.progress && report.frames >= nextProgress) {
      opts.progress(report.frames);
      nextProgress += Math.ceil(opts.frames / 10);
    }
  }
  await Promise.all(outstanding);
  for (const c of conns.values()) {
    if (c.fault) report.faults.push(c.fault);
    c.close();
  }
  report.ms = Date.now() - started;
  return report;
}

function describeBody(body: unknown): string {
  try {
    return JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v && typeof v === 'object' && 'type' in v && (v as { type: unknown }).type === 'Buffer' ? `<bin ${(v as unknown as { data: number[] }).data.length}>` : v)).slice(0, 200);
  } catch {
    return String(body).slice(0, 200);
  }
}
