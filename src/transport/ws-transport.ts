// The real peer transport: a uWS WebSocket endpoint `/peer` for inbound
// traffic (on the app the HTTP layer owns, so HTTP and peers share the
// node's port) and one `ws` client connection per peer for outbound.
//
// Direction of traffic on a connection: the connecting side (client) sends
// hello, then req/note frames; the accepting side (server) answers hello and
// sends res frames. So a pair of nodes that talk both ways holds two
// connections, one each way; each side's requests travel on its own.
//
// Outbound connection life cycle (per peer id + address):
//   idle -> connecting -> open -> (drop) -> backoff -> idle -> ...
// Connections are made lazily by the first request or notification. While
// connecting, frames queue (bounded by maxBufferedBytes).
//
// Frames are coalesced: per connection and direction (requests and
// notifications on an outbound connection, responses on an inbound socket),
// the frames produced during one event-loop turn go out as one WebSocket
// message at the end of the turn (outbox.ts), within maxCoalescedBytes /
// maxCoalescedFrames. Queued-but-unsent bytes count toward the backpressure
// limits. Hello is always alone in the first message each way, and the
// client's auth alone in its second (the handshake: peer-auth.ts); frames
// queued before the handshake follow it. When a connection
// drops or fails to open, its pending requests fail with UNREACHABLE and the
// peer enters backoff: min(backoffMaxMs, backoffBaseMs * 2^failures), jittered
// to [d/2, d) with the injected random. During backoff, requests fail fast
// with UNREACHABLE and notifications are dropped; the next request after it
// reconnects. A completed handshake resets the failure count.
import WebSocket from 'ws';
import { assertNativeUws, formatHostPort, listenExclusive, uWS } from './uws.js';
import type { TemplatedApp } from './uws.js';
import {
  ENVELOPE_BYTES,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  NODE_ID_RE,
  MAX_TYPE_LENGTH,
  MAX_FRAMES_PER_MESSAGE,
  decodeFrames,
  encodeFrame,
  encodeRequest,
  expectedVersionOf,
  openMessage,
  sealInPlace,
} from './frames.js';
import { HOT_VERSION } from './hot-codec.js';
import type { HelloFrame } from './frames.js';
import {
  AUTH_FAILURE_REASONS,
  checkProofs,
  makeProof,
  newNonce,
  secretList,
  sessionTags,
} from './peer-auth.js';
import type { AuthFailureReason, PeerSecret, PeerSecrets, Transcript } from './peer-auth.js';
import { Outbox } from './outbox.js';
import { attachPeerEndpoint, type PeerEndpoint } from './peer-endpoint.js';
import { runningTimer } from './running-timer.js';
import { ANY_PEER, TransportError, errMessage, systemClock } from './types.js';
import type { Clock, PeerHandler, PeerRef, Timer, Transport, TransportErrorCode } from './types.js';

export const MiB = 1024 * 1024;
/** Handshake failures on an outbound connection that mean the peer refused this node (the server closes 1008 for these). */
const OUTBOUND_REFUSALS: ReadonlySet<AuthFailureReason> = new Set<AuthFailureReason>(['bad-proof', 'wrong-cluster']);

// The inbound half (the uWS `/peer` endpoint and its handshake): peer-endpoint.ts.
export { attachPeerEndpoint, clientAuthStep, clientHelloStep, UWS_FAST_PATH_BYTES, UWS_FRAGMENT_BYTES } from './peer-endpoint.js';
export type { HandshakeRefusal, PeerEndpoint } from './peer-endpoint.js';

export interface WsTransportOptions {
  /** This node's id ([A-Za-z0-9._-]{1,64}). */
  nodeId: string;
  /** Cluster name; peers with another name are refused. */
  cluster: string;
  /**
   * The cluster secret this node proves itself with (`current`) and the
   * ones it accepts (`current`, and `previous` during a rotation). Every
   * connection, both ways, is authenticated with it before any frame is
   * acted on. INSECURE_LOOPBACK_SECRETS for loopback development only.
   */
  secrets: PeerSecrets;
  /** Timers for request timeouts, backoff and hello deadlines. Default systemClock. */
  clock?: Clock;
  /** Jitter source in [0,1). Default Math.random. */
  random?: () => number;
  /** URL path of the peer endpoint. Default '/peer'. */
  path?: string;
  /** Largest message accepted, inbound (uWS) and on client connections (ws). Use one value cluster-wide: coalesced messages are kept within the sender's. Default 32 MiB. */
  maxPayloadLength?: number;
  /** Cap on the bytes of a message of coalesced frames (a larger single frame goes alone); at most maxPayloadLength. Default 64 KiB. */
  maxCoalescedBytes?: number;
  /** Cap on the frames in one message, sent and received (a message of more is a protocol error); 1 sends every frame as its own message (still at the end of the turn). Default 1024. */
  maxCoalescedFrames?: number;
  /** Outbound: when a connection's bufferedAmount plus its queued, unsent frames exceed this, new requests fail with OVERLOADED and notifications are dropped. Default 8 MiB. */
  maxBufferedBytes?: number;
  /** Inbound: when a socket's buffered plus queued responses exceed this, the socket is closed (its requester sees UNREACHABLE). Default 16 MiB. */
  maxResponseBufferedBytes?: number;
  /** Inbound: requests being handled per connection above which new ones are answered OVERLOADED. Default 4096. */
  maxInflightPerConnection?: number;
  /** Backoff base. Default 50 ms. */
  backoffBaseMs?: number;
  /** Backoff cap. Default 2000 ms. */
  backoffMaxMs?: number;
  /** Time for TCP + WebSocket upgrade + hello exchange. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Inbound: time from open to the end of the handshake (the client's hello and auth). Default 5000 ms. */
  helloTimeoutMs?: number;
  /** Inbound uWS idleTimeout in seconds (pings are sent automatically). Default 60. */
  idleTimeoutSec?: number;
  /** Source IP of outbound peer connections (multi-homed hosts: leave from the node's own address). Default: the OS picks. */
  localAddress?: string;
  /** On close, how long inbound sockets get to close after `bye` before they are cut. Default 500 ms. */
  closeGraceMs?: number;
  /**
   * The newest peer protocol version to speak (frames.ts), MIN_PROTOCOL_VERSION
   * to PROTOCOL_VERSION: tests that play a node of an older version. Default PROTOCOL_VERSION.
   */
  maxProtocolVersion?: number;
  /** Diagnostics (connects, drops, protocol errors, handler errors). Must not throw. */
  onEvent?: (event: TransportEvent) => void;
  /**
   * Outbound over TLS (wss://): peers' certificates are verified against `ca`
   * (the cluster CA; default: Node's trusted roots) and their host names or
   * IPs; `cert` and `key` are this node's, presented as a client certificate.
   * The inbound side is the app's (uWS.SSLApp, see src/server/index.ts).
   */
  tls?: PeerTlsOptions;
}

/** PEM contents (not file names): the `ws` client's TLS options. */
export interface PeerTlsOptions {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

/** A TLS failure that names the peer's or our certificate as unacceptable (not a network fault): the peer would refuse again. */
function isCertificateRefusal(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return /CERT|ALERT|SIGNATURE|ALTNAME|ISSUER/.test(code);
}

export type TransportEvent =
  | { type: 'connected'; peer: string; address: string }
  | { type: 'disconnected'; peer: string; address: string; reason: string; retryInMs: number }
  | { type: 'protocol-error'; peer: string | null; side: 'inbound' | 'outbound'; reason: string }
  /** A handshake that failed; `peer` is the id the other side claimed (not proven), if it got that far. */
  | { type: 'auth-failure'; peer: string | null; side: 'inbound' | 'outbound'; reason: AuthFailureReason; message: string }
  | { type: 'inbound-open' }
  | { type: 'inbound-close'; peer: string | null; code: number }
  | { type: 'handler-error'; peer: string; requestType: string; message: string };

/** Counts of WebSocket messages and of the frames they carried, all connections and both directions, hello and bye included. */
export interface TransportStats {
  messagesSent: number;
  framesSent: number;
  messagesReceived: number;
  framesReceived: number;
  /** WebSocket payload bytes of those messages (envelope and frames; not the WebSocket framing or TLS). */
  bytesSent: number;
  bytesReceived: number;
  /** Connections closed for a protocol error: a message that failed the envelope check or did not decode, or a broken handshake (both sides). */
  protocolErrors: number;
  /** Handshakes that failed, by side and reason (also counted in protocolErrors). */
  authFailures: Record<'inbound' | 'outbound', Record<AuthFailureReason, number>>;
}

/** The numeric counters of TransportStats. */
export type TransportCounter = Exclude<keyof TransportStats, 'authFailures'>;

function zeroReasons(): Record<AuthFailureReason, number> {
  return Object.fromEntries(AUTH_FAILURE_REASONS.map((r) => [r, 0])) as Record<AuthFailureReason, number>;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: Timer;
}

type ConnState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

class PeerConnection {
  state: ConnState = 'idle';
  ws: WebSocket | null = null;
  failures = 0;
  /** Frames for the next message; held (only queuing) until the handshake is done. */
  readonly outbox: Outbox;
  /** Requests sent or queued on the current connection attempt. */
  readonly pending = new Map<number, Pending>();
  timer: Timer | null = null;
  lastError = '';
  retryAt = 0;
  /** The current connection's envelope state (see frames.ts): its tags (set by the handshake), the last seq sent and received. */
  private sendTag: number | null = null;
  private recvTag = 0;
  private sendSeq = 0;
  private recvSeq = 0;
  /** This connection attempt's hello nonce. */
  private nonce: Buffer | null = null;
  /** The protocol version the next hello offers: the newest, or an older server's after it refused that. */
  private offer: number;
  /** The version of the open connection (the server answers in the offered one). */
  version = 0;

  constructor(
    readonly t: WsTransport,
    readonly id: string,
    readonly address: string,
  ) {
    this.offer = t.maxProtocolVersion;
    this.outbox = new Outbox(
      {
        write: (message, frames) => this.write(message, frames),
        headroomBytes: ENVELOPE_BYTES,
        maxMessageBytes: t.maxCoalescedBytes,
        maxFramesPerMessage: t.maxCoalescedFrames,
      },
      true,
    );
  }

  bufferedBytes(): number {
    const sent = this.state === 'open' && this.ws ? this.ws.bufferedAmount : 0;
    return sent + this.outbox.queuedBytes;
  }

  /** Queues a frame for the end of this turn (or for the handshake). Returns false if the frame was not accepted. */
  submit(frame: Buffer): boolean {
    if (this.state === 'open') {
      this.outbox.push(frame);
      return true;
    }
    if (this.state === 'idle' || this.state === 'connecting') {
      this.outbox.push(frame);
      if (this.state === 'idle') this.connect();
      return true;
    }
    return false;
  }

  /** The outbox's writer: one message of coalesced frames. */
  private write(message: Buffer, frames: number): void {
    const ws = this.ws;
    if (!ws || this.state !== 'open' || this.sendTag === null) return;
    try {
      this.sendSeq += 1;
      const sealed = sealInPlace(this.sendSeq, message, this.sendTag);
      ws.send(sealed, { binary: true, compress: false });
      this.t.countSent(frames, sealed.length);
    } catch (e) {
      this.fail(`send: ${errMessage(e)}`);
    }
  }

  connect(): void {
    this.state = 'connecting';
    const t = this.t;
    let ws: WebSocket;
    // A certificate the TLS handshake refused (theirs by our CA, or ours by theirs).
    let certificateRefused = false;
    try {
      ws = new WebSocket(`${t.tls ? 'wss' : 'ws'}://${this.address}${t.path}`, {
        perMessageDeflate: false,
        maxPayload: t.maxPayloadLength,
        followRedirects: false,
        ...(t.localAddress === undefined ? {} : { localAddress: t.localAddress }),
        ...(t.tls ? { ...t.tls, rejectUnauthorized: true } : {}),
      });
    } catch (e) {
      // e.g. an address that does not make a valid URL
      this.fail(`cannot connect: ${errMessage(e)}`);
      return;
    }
    this.ws = ws;
    // Each connection counts from 1 under its own tags: nothing sealed for an earlier one opens on it.
    this.sendTag = null;
    this.recvTag = 0;
    this.sendSeq = 0;
    this.recvSeq = 0;
    this.nonce = newNonce();
    // The attempt (TCP, upgrade, hellos) gets connectTimeoutMs of this process running: a stall of
    // it is not the peer's slowness (running-timer.ts). So ws's handshakeTimeout (a plain timer) is not used.
    this.timer = runningTimer(t.clock, t.connectTimeoutMs, () => {
      if (this.ws === ws && this.state === 'connecting') this.fail('connect timeout');
    });
    const nonce = this.nonce;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      try {
        // Alone in the first message; queued frames follow once the server's hello is checked.
        const hello = encodeFrame({ kind: 'hello', version: this.offer, nodeId: t.self, cluster: t.cluster, nonce });
        ws.send(hello, { binary: true });
        t.countSent(1, hello.length);
      } catch (e) {
        this.fail(`send hello: ${errMessage(e)}`);
      }
    });
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (this.ws !== ws) return;
      try {
        this.onMessage(data, isBinary);
      } catch (e) {
        this.protocolError(`internal: ${errMessage(e)}`);
      }
    });
    ws.on('error', (e: Error) => {
      if (this.ws !== ws) return;
      this.lastError = e.message;
      if (isCertificateRefusal(e)) certificateRefused = true;
    });
    ws.on('unexpected-response', (_req, res) => {
      if (this.ws !== ws) return;
      this.fail(`upgrade refused: HTTP ${res.statusCode ?? '?'}`);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.ws !== ws) return;
      const why = reason.length > 0 ? reason.toString('utf8') : this.lastError;
      // A server of an older version refused our hello, naming the version it speaks: offer that one, at once.
      const older = code === 1002 && this.state === 'connecting' ? expectedVersionOf(why) : null;
      if (older !== null && older >= MIN_PROTOCOL_VERSION && older < this.offer) {
        this.retryWith(older);
        return;
      }
      // 1008 (policy violation) or a refused certificate before the handshake: the peer refused this node, as it will again.
      const refused = (code === 1008 || certificateRefused) && this.state === 'connecting';
      this.fail(`${refused ? 'refused' : 'connection closed'} (${code}${why ? `: ${why}` : ''})`, refused ? 'REFUSED' : 'UNREACHABLE');
    });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (!isBinary) {
      this.protocolError('text frame');
      return;
    }
    let bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const received = bytes.length;
    if (this.state !== 'connecting') {
      const o = openMessage(this.recvSeq + 1, bytes, this.recvTag);
      if (!o.ok) {
        this.protocolError(o.reason);
        return;
      }
      this.recvSeq += 1;
      bytes = o.payload;
    }
    const d = decodeFrames(bytes, this.state !== 'connecting' && this.version >= HOT_VERSION);
    if (!d.ok) {
      this.protocolError(d.reason);
      return;
    }
    const frames = d.frames;
    if (frames.length > MAX_FRAMES_PER_MESSAGE) {
      this.protocolError(`message of ${frames.length} frames, limit ${MAX_FRAMES_PER_MESSAGE}`);
      return;
    }
    this.t.countReceived(frames.length, received);
    if (this.state === 'connecting') {
      const f = frames[0]!;
      if (f.kind !== 'hello') {
        this.protocolError(`expected hello, got ${f.kind}`);
        return;
      }
      if (frames.length !== 1) {
        this.protocolError(`hello must come alone, got ${frames.length} frames`);
        return;
      }
      this.onServerHello(f);
      return;
    }
    // Check every frame before acting on any.
    for (const f of frames) {
      if (f.kind !== 'res' && f.kind !== 'bye') {
        this.protocolError(`unexpected ${f.kind} frame from server`);
        return;
      }
    }
    for (const f of frames) {
      if (f.kind === 'bye') {
        // The server is shutting down and asks us to close first.
        this.fail('peer is shutting down');
        return;
      }
      if (f.kind !== 'res') return;
      const p = this.pending.get(f.id);
      if (!p) continue; // timed out already
      this.pending.delete(f.id);
      p.timer.cancel();
      if ('error' in f) {
        const code: TransportErrorCode = f.error.code === 'OVERLOADED' ? 'OVERLOADED' : 'REMOTE';
        p.reject(new TransportError(code, f.error.message, this.id, f.error.remoteCode));
      } else {
        p.resolve(f.ok);
      }
    }
  }

  /** Checks the server's hello and proofs; answers with this node's proof and opens the connection. */
  private onServerHello(f: HelloFrame): void {
    const t = this.t;
    if (f.version !== this.offer) {
      this.authFailure('version', `protocol version ${f.version}, expected ${this.offer}`);
      return;
    }
    if (f.cluster !== t.cluster) {
      this.authFailure('wrong-cluster', `peer is in cluster '${f.cluster}', not '${t.cluster}'`);
      return;
    }
    // ANY_PEER: a seed contacted by address alone (joining a cluster).
    if (this.id !== ANY_PEER && f.nodeId !== this.id) {
      this.authFailure('wrong-node', `address ${this.address} is node '${f.nodeId}', not '${this.id}'`);
      return;
    }
    if (f.nonce === undefined || f.proofs === undefined || this.nonce === null) {
      this.authFailure('malformed', 'server hello without nonce or proofs');
      return;
    }
    const transcript: Transcript = {
      version: this.offer,
      cluster: t.cluster,
      clientId: t.self,
      serverId: f.nodeId,
      clientNonce: this.nonce,
      serverNonce: f.nonce,
    };
    const secret = checkProofs(t.secretList, 'server', transcript, f.proofs);
    if (secret === null) {
      this.authFailure('bad-proof', `peer '${f.nodeId}' at ${this.address} did not prove it holds the cluster secret`);
      return;
    }
    const ws = this.ws;
    if (!ws) return;
    try {
      // Alone and plain in the second message: the server checks it before it reads anything sealed.
      const auth = encodeFrame({ kind: 'auth', proof: makeProof(secret, 'client', transcript) });
      ws.send(auth, { binary: true });
      t.countSent(1, auth.length);
    } catch (e) {
      this.fail(`send auth: ${errMessage(e)}`);
      return;
    }
    const tags = sessionTags(secret, transcript);
    this.sendTag = tags.clientToServer;
    this.recvTag = tags.serverToClient;
    this.version = this.offer;
    this.onHandshake();
  }

  private authFailure(reason: AuthFailureReason, message: string): void {
    this.t.countAuthFailure('outbound', reason);
    this.t.emit({ type: 'auth-failure', peer: this.id === ANY_PEER ? null : this.id, side: 'outbound', reason, message });
    // The peer's proofs under another secret, or its other cluster name, will be the same on every try: a refusal
    // (REFUSED, as the server's 1008 close for the same reasons), so a joining node stops after a bounded number.
    this.protocolError(message, OUTBOUND_REFUSALS.has(reason) ? 'REFUSED' : 'UNREACHABLE');
  }

  private onHandshake(): void {
    const ws = this.ws;
    if (!ws) return;
    this.timer?.cancel();
    this.timer = null;
    this.state = 'open';
    this.failures = 0;
    this.lastError = '';
    // Frames queued while connecting go now, in order.
    this.outbox.release();
    if (this.state !== 'open') return; // a send failed
    this.t.emit({ type: 'connected', peer: this.id, address: this.address });
  }

  private protocolError(reason: string, code: 'UNREACHABLE' | 'REFUSED' = 'UNREACHABLE'): void {
    this.t.countProtocolError();
    this.t.emit({ type: 'protocol-error', peer: this.id, side: 'outbound', reason });
    this.fail(`protocol error: ${reason}`, code);
  }

  /**
   * The attempt was refused by a server of an older protocol version: a new
   * attempt offering `version`, now. Requests queued stay queued (they were
   * encoded as msgpack, which every version reads).
   */
  private retryWith(version: number): void {
    const ws = this.ws;
    this.ws = null;
    this.timer?.cancel();
    this.timer = null;
    if (ws) terminate(ws);
    this.offer = version;
    this.connect();
  }

  /** The connection (or attempt) is gone: fail its requests, back off. */
  fail(reason: string, code: 'UNREACHABLE' | 'REFUSED' = 'UNREACHABLE'): void {
    if (this.state === 'closed' || this.state === 'backoff' || this.state === 'idle') return;
    // A connection that was open: its peer may have been upgraded when it comes back.
    if (this.state === 'open') this.offer = this.t.maxProtocolVersion;
    this.version = 0;
    const ws = this.ws;
    this.ws = null;
    this.timer?.cancel();
    this.timer = null;
    if (ws) terminate(ws);
    this.outbox.hold();
    this.outbox.clear();
    // Before the handshake, frames only queue (the outbox is held): those requests never left.
    this.failPending(code, `peer ${this.id} at ${this.address}: ${reason}`, this.state !== 'open');
    const t = this.t;
    const base = Math.min(t.backoffMaxMs, t.backoffBaseMs * 2 ** Math.min(this.failures, 30));
    const delay = Math.max(1, Math.floor(base / 2 + t.random() * (base / 2)));
    this.failures += 1;
    this.state = 'backoff';
    this.lastError = reason;
    this.retryAt = t.clock.now() + delay;
    this.timer = t.clock.setTimer(delay, () => {
      if (this.state === 'backoff') {
        this.state = 'idle';
        this.timer = null;
      }
    });
    t.emit({ type: 'disconnected', peer: this.id, address: this.address, reason, retryInMs: delay });
  }

  /** Ends a backoff early when the peer `nodeId` showed it is up. */
  retryNow(nodeId: string): void {
    if (this.state !== 'backoff' || this.id !== nodeId) return;
    this.timer?.cancel();
    this.timer = null;
    this.state = 'idle';
  }

  failPending(code: TransportErrorCode, message: string, unsent = false): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      p.timer.cancel();
      p.reject(new TransportError(code, message, this.id, undefined, unsent));
    }
  }

  close(): Promise<void> {
    this.state = 'closed';
    this.timer?.cancel();
    this.timer = null;
    this.outbox.hold();
    this.outbox.clear();
    this.failPending('CLOSED', 'transport closed');
    const ws = this.ws;
    this.ws = null;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = setTimeout(resolve, 1000);
      ws.once('close', () => {
        clearTimeout(done);
        resolve();
      });
      terminate(ws);
    });
  }
}

function terminate(ws: WebSocket): void {
  try {
    ws.terminate();
  } catch {
    // already closed
  }
}

/** A standalone uWS app serving only `/peer` (tests, tools). */
export interface PeerServer {
  app: TemplatedApp;
  port: number;
  /** `host:port` to give peers. */
  address: string;
  endpoint: PeerEndpoint;
  /** Stops listening and closes inbound peer sockets (see PeerEndpoint.close). */
  close(): Promise<void>;
}

/** Creates a uWS app with the peer endpoint, listening on host (default 127.0.0.1) and port (default 0 = ephemeral). */
export function listenPeerServer(
  transport: WsTransport,
  opts: { host?: string; port?: number } = {},
): Promise<PeerServer> {
  assertNativeUws();
  const host = opts.host ?? '127.0.0.1';
  const wanted = opts.port ?? 0;
  const app = uWS.App();
  const endpoint = attachPeerEndpoint(app, transport);
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  });
  return listenExclusive(app, host, wanted).then(
    ({ socket: ls, port }) => {
      let listening = true;
      return {
        app,
        port,
        address: formatHostPort(host, port),
        endpoint,
        close: () => {
          if (listening) {
            listening = false;
            uWS.us_listen_socket_close(ls);
          }
          return endpoint.close();
        },
      };
    },
    async (err: unknown) => {
      await endpoint.close();
      throw err;
    },
  );
}

// ---------------------------------------------------------------------------

/** The real Transport. Outbound via `ws`; inbound once attached with attachPeerEndpoint / listenPeerServer. */
export class WsTransport implements Transport {
  readonly self: string;
  readonly cluster: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly path: string;
  readonly maxPayloadLength: number;
  readonly maxCoalescedBytes: number;
  readonly maxCoalescedFrames: number;
  readonly maxBufferedBytes: number;
  readonly maxResponseBufferedBytes: number;
  readonly maxInflightPerConnection: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly connectTimeoutMs: number;
  readonly helloTimeoutMs: number;
  readonly idleTimeoutSec: number;
  readonly localAddress: string | undefined;
  readonly closeGraceMs: number;
  /** @internal The newest protocol version this node offers and answers in (tests: an older node). */
  readonly maxProtocolVersion: number;
  /** @internal The secrets proofs are made with (the first) and checked against (all). */
  readonly secretList: readonly PeerSecret[];
  readonly tls: PeerTlsOptions | undefined;
  /** @internal */
  handler: PeerHandler | null = null;
  /** @internal */
  readonly endpoints = new Set<PeerEndpoint>();
  private readonly onEvent: ((e: TransportEvent) => void) | undefined;
  private readonly conns = new Map<string, PeerConnection>();
  private nextId = 1;
  private closed = false;
  private readonly counts: TransportStats = {
    messagesSent: 0,
    framesSent: 0,
    messagesReceived: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    protocolErrors: 0,
    authFailures: { inbound: zeroReasons(), outbound: zeroReasons() },
  };

  constructor(opts: WsTransportOptions) {
    if (!NODE_ID_RE.test(opts.nodeId)) throw new Error(`invalid node id '${opts.nodeId}'`);
    if (!opts.cluster || opts.cluster.length > 128) throw new Error('invalid cluster name');
    if (opts.secrets === undefined || opts.secrets === null) throw new Error('WsTransport needs the cluster secrets (or INSECURE_LOOPBACK_SECRETS)');
    this.self = opts.nodeId;
    this.cluster = opts.cluster;
    this.secretList = secretList(opts.secrets);
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.path = opts.path ?? '/peer';
    this.maxPayloadLength = opts.maxPayloadLength ?? 32 * MiB;
    this.maxCoalescedBytes = Math.min(opts.maxCoalescedBytes ?? 64 * 1024, this.maxPayloadLength);
    this.maxCoalescedFrames = Math.min(MAX_FRAMES_PER_MESSAGE, Math.max(1, opts.maxCoalescedFrames ?? MAX_FRAMES_PER_MESSAGE));
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 8 * MiB;
    this.maxResponseBufferedBytes = opts.maxResponseBufferedBytes ?? 16 * MiB;
    this.maxInflightPerConnection = opts.maxInflightPerConnection ?? 4096;
    this.backoffBaseMs = opts.backoffBaseMs ?? 50;
    this.backoffMaxMs = opts.backoffMaxMs ?? 2000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 5000;
    this.idleTimeoutSec = opts.idleTimeoutSec ?? 60;
    this.localAddress = opts.localAddress;
    this.closeGraceMs = opts.closeGraceMs ?? 500;
    this.maxProtocolVersion = opts.maxProtocolVersion ?? PROTOCOL_VERSION;
    if (this.maxProtocolVersion < MIN_PROTOCOL_VERSION || this.maxProtocolVersion > PROTOCOL_VERSION) throw new Error(`maxProtocolVersion ${this.maxProtocolVersion} is not one this node speaks`);
    this.tls = opts.tls;
    this.onEvent = opts.onEvent;
  }

  /**
   * @internal A peer just connected in: an outbound connection to it that is
   * backing off (e.g. after the peer restarted) may retry at once, instead of
   * failing requests for up to backoffMaxMs while the peer is reachable.
   */
  peerSeen(nodeId: string): void {
    for (const c of this.conns.values()) c.retryNow(nodeId);
  }

  /** @internal One message of `frames` frames, `bytes` long (envelope included), went out. */
  countSent(frames: number, bytes: number): void {
    this.counts.messagesSent += 1;
    this.counts.framesSent += frames;
    this.counts.bytesSent += bytes;
  }

  /** @internal One message of `frames` frames, `bytes` long, came in. */
  countReceived(frames: number, bytes: number): void {
    this.counts.messagesReceived += 1;
    this.counts.framesReceived += frames;
    this.counts.bytesReceived += bytes;
  }

  /** @internal A connection was closed for a protocol error. */
  countProtocolError(): void {
    this.counts.protocolErrors += 1;
  }

  /** @internal A handshake failed. */
  countAuthFailure(side: 'inbound' | 'outbound', reason: AuthFailureReason): void {
    this.counts.authFailures[side][reason] += 1;
  }

  /** Messages and frames sent and received so far (frames per message shows how well frames coalesce). */
  stats(): TransportStats {
    const a = this.counts.authFailures;
    return { ...this.counts, authFailures: { inbound: { ...a.inbound }, outbound: { ...a.outbound } } };
  }

  /** @internal */
  emit(e: TransportEvent): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(e);
    } catch {
      // diagnostics must not break the transport
    }
  }

  onRequest(handler: PeerHandler): void {
    this.handler = handler;
  }

  private conn(to: PeerRef): PeerConnection {
    const key = `${to.id}@${to.address}`;
    let c = this.conns.get(key);
    if (!c) {
      c = new PeerConnection(this, to.id, to.address);
      this.conns.set(key, c);
    }
    return c;
  }

  request(to: PeerRef, type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new TransportError('CLOSED', 'transport closed', to.id));
    if (typeof type !== 'string' || type.length === 0 || type.length > MAX_TYPE_LENGTH) {
      return Promise.reject(new TypeError(`invalid request type '${String(type)}'`));
    }
    const id = this.nextId++;
    const c = this.conn(to);
    let frame: Buffer;
    try {
      // Hot frames only on a connection open in a version that has them; queued for a handshake, msgpack.
      frame = encodeRequest({ kind: 'req', id, type, body }, c.state === 'open' ? c.version : MIN_PROTOCOL_VERSION);
    } catch (e) {
      return Promise.reject(e);
    }
    if (c.state === 'backoff') {
      const wait = Math.max(0, c.retryAt - this.clock.now());
      return Promise.reject(
        new TransportError('UNREACHABLE', `peer ${to.id} at ${to.address}: ${c.lastError}; retry in ${wait} ms`, to.id, undefined, true),
      );
    }
    if (c.bufferedBytes() > this.maxBufferedBytes) {
      return Promise.reject(
        new TransportError('OVERLOADED', `peer ${to.id}: ${c.bufferedBytes()} bytes buffered, limit ${this.maxBufferedBytes}`, to.id, undefined, true),
      );
    }
    return new Promise<unknown>((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs, () => {
        if (c.pending.delete(id)) {
          reject(new TransportError('TIMEOUT', `peer ${to.id}: '${type}' timed out after ${timeoutMs} ms`, to.id));
        }
      });
      c.pending.set(id, { resolve, reject, timer });
      if (!c.submit(frame)) {
        c.pending.delete(id);
        timer.cancel();
        reject(new TransportError('UNREACHABLE', `peer ${to.id} at ${to.address}: not connected`, to.id, undefined, true));
      }
    });
  }

  notify(to: PeerRef, type: string, body: unknown): void {
    try {
      if (this.closed) return;
      if (typeof type !== 'string' || type.length === 0 || type.length > MAX_TYPE_LENGTH) return;
      const frame = encodeFrame({ kind: 'note', type, body });
      const c = this.conn(to);
      if (c.state === 'backoff') return;
      if (c.bufferedBytes() > this.maxBufferedBytes) return;
      c.submit(frame);
    } catch {
      // fire and forget
    }
  }

  /** Outbound connection states, for status pages and tests. */
  peers(): Array<{ id: string; address: string; state: ConnState; pending: number; bufferedBytes: number }> {
    return [...this.conns.values()].map((c) => ({
      id: c.id,
      address: c.address,
      state: c.state,
      pending: c.pending.size,
      bufferedBytes: c.bufferedBytes(),
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const endpoints = [...this.endpoints];
    this.endpoints.clear();
    const conns = [...this.conns.values()];
    this.conns.clear();
    await Promise.all([...conns.map((c) => c.close()), ...endpoints.map((e) => e.close())]);
  }
}
