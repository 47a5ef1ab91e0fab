// The inbound half of the real peer transport: the uWS WebSocket endpoint
// `/peer` on the app the HTTP layer owns. By job:
// - the handshake (the server's side of peer-auth.ts), a state machine per
//   socket: phase 'hello' (waiting for the client's hello, which must come
//   alone and plain) -> 'auth' (our hello sent, waiting for the client's
//   proof, alone) -> 'open' (authenticated: every later message is sealed).
//   clientHelloStep and clientAuthStep decide each step from the frames; the
//   endpoint applies the verdict (refuse, or move on);
// - sending: responses coalesced per turn (outbox.ts), sealed, bounded by the
//   requester's reading (maxResponseBufferedBytes);
// - serving: requests and notes of an open connection go to the transport's
//   handler, bounded in flight per connection;
// - the endpoint's life: refusing new sockets, `bye`, the close grace.
// The outbound half and the transport itself: ws-transport.ts.
import { assertNativeUws, uWS } from './uws.js';
import type { TemplatedApp, UwsWebSocket } from './uws.js';
import { ENVELOPE_BYTES, PROTOCOL_VERSION, MAX_FRAMES_PER_MESSAGE, decodeFrames, encodeFrame, encodeReply, openMessage, sealInPlace, sealMessage, speaksVersion } from './frames.js';
import { HOT_VERSION } from './hot-codec.js';
import type { Frame, HelloFrame } from './frames.js';
import { checkProofs, makeProof, newNonce, sessionTags } from './peer-auth.js';
import type { AuthFailureReason, PeerSecret, Transcript } from './peer-auth.js';
import { Outbox } from './outbox.js';
import { runningTimer } from './running-timer.js';
import { invariant } from '../core/types.js';
import { errMessage, type Timer } from './types.js';
// A type only (erased): ws-transport.ts imports this file's endpoint.
import type { WsTransport } from './ws-transport.js';

/**
 * uWS (the 20.x build we load, before uWebSockets PR #1662) has a fast path
 * for a send of 16 KiB or more made while the socket has no backpressure: one
 * writev of header + payload. If the kernel takes no more than the header
 * (its send buffer just filled), uWS buffers the rest of the header and
 * drops the payload, so the peer reads the following messages' bytes as this
 * one's (issue 9, finding 1). Sends below 16 KiB take the buffered path,
 * which keeps every byte; so a larger message goes as fragments of one
 * WebSocket message, each small enough for uWS's 16 KiB cork buffer.
 */
export const UWS_FAST_PATH_BYTES = 16 * 1024;
/** Payload bytes per fragment: under UWS_FAST_PATH_BYTES with room for the frame header in the cork buffer. */
export const UWS_FRAGMENT_BYTES = UWS_FAST_PATH_BYTES - 64;

/** Sends `message` whole as one binary WebSocket message. False if uWS would drop (part of) it at maxBackpressure: nothing is sent then. */
function sendWhole(ws: UwsWebSocket<InboundData>, message: Buffer, maxBackpressure: number): boolean {
  // uWS checks its limit before each frame; checking the whole message first means no fragment is dropped alone.
  if (ws.getBufferedAmount() + message.length > maxBackpressure) return false;
  if (message.length < UWS_FAST_PATH_BYTES) {
    ws.send(message, true, false);
    return true;
  }
  // Fragments of one message go out back to back: nothing else is sent on this socket in between.
  ws.sendFirstFragment(message.subarray(0, UWS_FRAGMENT_BYTES), true, false);
  let at = UWS_FRAGMENT_BYTES;
  for (; at + UWS_FRAGMENT_BYTES < message.length; at += UWS_FRAGMENT_BYTES) {
    ws.sendFragment(message.subarray(at, at + UWS_FRAGMENT_BYTES), false);
  }
  ws.sendLastFragment(message.subarray(at), false);
  return true;
}

interface InboundData {
  /** The peer's node id, once it has proven it holds the cluster secret (null before). */
  nodeId: string | null;
  /** hello: waiting for the client's hello; auth: for its proof; open: authenticated. */
  phase: 'hello' | 'auth' | 'open';
  /** The protocol version of this connection: the client's, from its hello (0 before). */
  version: number;
  /** The handshake so far (between hello and auth). */
  transcript: Transcript | null;
  /** This side refused the handshake (counted already). */
  refused: boolean;
  closed: boolean;
  inflight: number;
  helloTimer: Timer | null;
  /** Responses for the next message (made on open). */
  outbox: Outbox | null;
  /** Envelope state (see frames.ts): the connection's tags (set by the handshake), the last seq sent and received. */
  sendTag: number;
  recvTag: number;
  sendSeq: number;
  recvSeq: number;
}

/** A handshake step refused: the close code, the counted reason, the message. */
export interface HandshakeRefusal {
  refuse: { code: number; reason: AuthFailureReason; message: string };
}

/**
 * Phase 'hello': the client's first message must be its hello, alone, of a
 * protocol version this node speaks (MIN_PROTOCOL_VERSION up to maxVersion;
 * the connection then speaks the client's) and our cluster, with a nonce and
 * no proofs. Returns the hello, or why it is refused (a version refusal
 * names maxVersion, which a newer client reads to fall back).
 */
export function clientHelloStep(frames: readonly Frame[], cluster: string, maxVersion = PROTOCOL_VERSION): { hello: HelloFrame } | HandshakeRefusal {
  invariant(frames.length > 0, 'a decoded message without frames');
  const f = frames[0]!;
  if (f.kind !== 'hello') return { refuse: { code: 1002, reason: 'malformed', message: `expected hello, got ${f.kind}` } };
  if (frames.length !== 1) return { refuse: { code: 1002, reason: 'malformed', message: `hello must come alone, got ${frames.length} frames` } };
  // Any version this node still speaks (a rolling upgrade); the refusal names the newest, which an older client cannot speak either.
  if (!speaksVersion(f.version) || f.version > maxVersion) return { refuse: { code: 1002, reason: 'version', message: `protocol version ${f.version}, expected ${maxVersion}` } };
  if (f.cluster !== cluster) return { refuse: { code: 1008, reason: 'wrong-cluster', message: `wrong cluster '${f.cluster}'` } };
  if (f.nonce === undefined || f.proofs !== undefined) return { refuse: { code: 1002, reason: 'malformed', message: 'client hello must carry a nonce and no proofs' } };
  return { hello: f };
}

/**
 * Phase 'auth': the client's second message must be its proof, alone, made
 * with one of the secrets this node holds over the handshake's transcript.
 * Returns the secret it proved, or why it is refused.
 */
export function clientAuthStep(frames: readonly Frame[], secrets: readonly PeerSecret[], transcript: Transcript): { secret: PeerSecret } | HandshakeRefusal {
  invariant(frames.length > 0, 'a decoded message without frames');
  const f = frames[0]!;
  if (f.kind !== 'auth' || frames.length !== 1) {
    return { refuse: { code: 1002, reason: 'malformed', message: `expected auth alone, got ${frames.map((x) => x.kind).join(', ')}` } };
  }
  const secret = checkProofs(secrets, 'client', transcript, [f.proof]);
  if (secret === null) return { refuse: { code: 1008, reason: 'bad-proof', message: `'${transcript.clientId}' did not prove it holds the cluster secret` } };
  return { secret };
}

/** An attached `/peer` endpoint. */
export interface PeerEndpoint {
  /** Open inbound peer sockets. */
  connections(): number;
  /**
   * Refuses new peer sockets, sends `bye` to the open ones so the clients
   * close first, and cuts those still open after closeGraceMs. The app and
   * its listen socket stay the HTTP layer's.
   */
  close(): Promise<void>;
}

/**
 * Registers `app.ws(path, ...)` for inbound peer traffic on an app the HTTP
 * layer owns. Throws if uWS is not native.
 */
export function attachPeerEndpoint(app: TemplatedApp, transport: WsTransport): PeerEndpoint {
  assertNativeUws();
  const t = transport;
  const sockets = new Set<UwsWebSocket<InboundData>>();
  let endpointClosed = false;
  let closing: Promise<void> | null = null;
  let drained: (() => void) | null = null;
  const maxBackpressure = t.maxResponseBufferedBytes + t.maxPayloadLength;

  const closeSocket = (ws: UwsWebSocket<InboundData>, code: number, reason: string): void => {
    const ud = ws.getUserData();
    if (ud.closed) return;
    try {
      ws.end(code, reason.slice(0, 120));
    } catch {
      // already closed
    }
  };

  const protocolError = (ws: UwsWebSocket<InboundData>, code: number, reason: string): void => {
    t.countProtocolError();
    t.emit({ type: 'protocol-error', peer: ws.getUserData().nodeId, side: 'inbound', reason });
    closeSocket(ws, code, reason);
  };

  /** A handshake that failed: counted by reason, then closed like any protocol error. */
  const refuse = (ws: UwsWebSocket<InboundData>, code: number, reason: AuthFailureReason, message: string): void => {
    const ud = ws.getUserData();
    ud.refused = true;
    t.countAuthFailure('inbound', reason);
    t.emit({ type: 'auth-failure', peer: ud.transcript?.clientId ?? null, side: 'inbound', reason, message });
    protocolError(ws, code, message);
  };

  // ---- sending: sealed messages, responses coalesced per turn

  /**
   * Sends one message now: the plain hello, or sealed: bye (sealed into a
   * copy) or the outbox's coalesced frames ('headroom': ENVELOPE_BYTES of
   * room in front of them, sealed in place).
   */
  const write = (ws: UwsWebSocket<InboundData>, message: Buffer, frames: number, how: 'plain' | 'seal' | 'headroom' = 'seal'): void => {
    const ud = ws.getUserData();
    if (ud.closed) return;
    try {
      let out = message;
      if (how !== 'plain') {
        ud.sendSeq += 1;
        out = how === 'headroom' ? sealInPlace(ud.sendSeq, message, ud.sendTag) : sealMessage(ud.sendSeq, message, ud.sendTag);
      }
      if (!sendWhole(ws, out, maxBackpressure)) {
        // dropped: uWS's own backpressure limit (we keep below it; see maxBackpressure)
        ws.close();
        return;
      }
      t.countSent(frames, out.length);
    } catch {
      // socket closed under us
    }
  };

  /** Queues a frame for this turn's message (a reply in the connection's best encoding for its request's `type`). */
  const send = (ws: UwsWebSocket<InboundData>, frame: Frame, type = ''): void => {
    const ud = ws.getUserData();
    if (ud.closed || !ud.outbox) return;
    let bytes: Buffer;
    try {
      bytes = frame.kind === 'res' ? encodeReply(frame, type, ud.version) : encodeFrame(frame);
    } catch (e) {
      if (frame.kind === 'res' && 'ok' in frame) {
        // The handler returned something msgpack cannot carry.
        send(ws, { kind: 'res', id: frame.id, error: { code: 'REMOTE', message: `unencodable response: ${errMessage(e)}` } });
      }
      return;
    }
    try {
      if (ws.getBufferedAmount() + ud.outbox.queuedBytes > t.maxResponseBufferedBytes) {
        // The requester is not reading: drop the connection rather than buffer without bound.
        t.emit({ type: 'protocol-error', peer: ud.nodeId, side: 'inbound', reason: 'response backpressure limit' });
        ud.outbox.clear();
        ws.close();
        return;
      }
    } catch {
      return; // socket closed under us
    }
    ud.outbox.push(bytes);
  };

  // ---- the handshake: each step decided by clientHelloStep / clientAuthStep, applied here

  /** Phase 'hello' -> 'auth': answer with our hello (nonce, one proof per secret held). */
  const onClientHello = (ws: UwsWebSocket<InboundData>, frames: readonly Frame[]): void => {
    const ud = ws.getUserData();
    invariant(ud.phase === 'hello', 'a client hello handled outside the hello phase');
    const step = clientHelloStep(frames, t.cluster, t.maxProtocolVersion);
    if ('refuse' in step) {
      refuse(ws, step.refuse.code, step.refuse.reason, step.refuse.message);
      return;
    }
    const serverNonce = newNonce();
    const version = step.hello.version;
    ud.version = version;
    const transcript: Transcript = {
      version,
      cluster: t.cluster,
      clientId: step.hello.nodeId,
      serverId: t.self,
      clientNonce: step.hello.nonce!,
      serverNonce,
    };
    ud.transcript = transcript;
    ud.phase = 'auth';
    // One proof per secret held, so that a peer on either side of a rotation finds one it accepts.
    const proofs = t.secretList.map((s) => makeProof(s, 'server', transcript));
    // Alone and plain in our first message (nothing is queued before the handshake).
    write(ws, encodeFrame({ kind: 'hello', version, nodeId: t.self, cluster: t.cluster, nonce: serverNonce, proofs }), 1, 'plain');
  };

  /** Phase 'auth' -> 'open': the proved secret gives the connection's envelope tags. */
  const onClientAuth = (ws: UwsWebSocket<InboundData>, frames: readonly Frame[]): void => {
    const ud = ws.getUserData();
    const transcript = ud.transcript;
    invariant(ud.phase === 'auth' && transcript !== null, 'a client proof handled outside the auth phase');
    const step = clientAuthStep(frames, t.secretList, transcript);
    if ('refuse' in step) {
      refuse(ws, step.refuse.code, step.refuse.reason, step.refuse.message);
      return;
    }
    const tags = sessionTags(step.secret, transcript);
    ud.sendTag = tags.serverToClient;
    ud.recvTag = tags.clientToServer;
    ud.nodeId = transcript.clientId;
    ud.transcript = null;
    ud.phase = 'open';
    ud.helloTimer?.cancel();
    ud.helloTimer = null;
    // The peer is evidently back: stop backing off our connection to it.
    t.peerSeen(ud.nodeId);
  };

  // ---- serving an open connection

  const handleRequest = (ws: UwsWebSocket<InboundData>, from: string, id: number, type: string, body: unknown): void => {
    const ud = ws.getUserData();
    if (ud.inflight >= t.maxInflightPerConnection) {
      send(ws, { kind: 'res', id, error: { code: 'OVERLOADED', message: `node ${t.self} has too many requests in flight` } });
      return;
    }
    const handler = t.handler;
    if (!handler) {
      send(ws, { kind: 'res', id, error: { code: 'REMOTE', message: `node ${t.self} has no request handler` } });
      return;
    }
    ud.inflight += 1;
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(handler(from, type, body));
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (ok) => {
        ud.inflight -= 1;
        send(ws, { kind: 'res', id, ok }, type);
      },
      (e: unknown) => {
        ud.inflight -= 1;
        const message = errMessage(e);
        t.emit({ type: 'handler-error', peer: from, requestType: type, message });
        const code = (e as { code?: unknown } | null)?.code;
        send(ws, {
          kind: 'res',
          id,
          error: { code: 'REMOTE', message, ...(typeof code === 'string' ? { remoteCode: code } : {}) },
        });
      },
    );
  };

  const handleNote = (from: string, type: string, body: unknown): void => {
    const handler = t.handler;
    if (!handler) return;
    try {
      Promise.resolve(handler(from, type, body)).catch((e: unknown) => {
        t.emit({ type: 'handler-error', peer: from, requestType: type, message: errMessage(e) });
      });
    } catch (e) {
      t.emit({ type: 'handler-error', peer: from, requestType: type, message: errMessage(e) });
    }
  };

  // ---- the socket's life (uWS callbacks; no exception may escape into uWS)

  app.ws<InboundData>(t.path, {
    maxPayloadLength: t.maxPayloadLength,
    // We check getBufferedAmount ourselves before each send; uWS must not drop a frame on its own.
    maxBackpressure,
    closeOnBackpressureLimit: 0,
    idleTimeout: t.idleTimeoutSec,
    sendPingsAutomatically: true,
    compression: uWS.DISABLED,
    upgrade: (res, req, context) => {
      if (endpointClosed) {
        res.writeStatus('503 Service Unavailable').end();
        return;
      }
      const key = req.getHeader('sec-websocket-key');
      const data: InboundData = {
        nodeId: null,
        phase: 'hello',
        version: 0,
        transcript: null,
        refused: false,
        closed: false,
        inflight: 0,
        helloTimer: null,
        outbox: null,
        sendTag: 0,
        recvTag: 0,
        sendSeq: 0,
        recvSeq: 0,
      };
      res.upgrade(
        data,
        key,
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      try {
        if (endpointClosed) {
          ws.close();
          return;
        }
        sockets.add(ws);
        t.emit({ type: 'inbound-open' });
        const ud = ws.getUserData();
        ud.outbox = new Outbox({
          write: (message, frames) => write(ws, message, frames, 'headroom'),
          headroomBytes: ENVELOPE_BYTES,
          maxMessageBytes: t.maxCoalescedBytes,
          maxFramesPerMessage: t.maxCoalescedFrames,
        });
        // Counts this process running (running-timer.ts): a hello read late for a stall of ours is in time.
        ud.helloTimer = runningTimer(t.clock, t.helloTimeoutMs, () => {
          ud.helloTimer = null;
          if (!ud.closed && ud.phase !== 'open') refuse(ws, 1008, 'timeout', ud.phase === 'hello' ? 'no hello' : 'no auth');
        });
      } catch {
        // never let an exception escape into uWS
      }
    },
    message: (ws, message, isBinary) => {
      try {
        const ud = ws.getUserData();
        if (ud.closed) return;
        if (!isBinary) {
          protocolError(ws, 1003, 'text frame');
          return;
        }
        // Copy: uWS neuters `message` when this callback returns, and decoded
        // binary values are views into the decoded bytes.
        let bytes: Buffer = Buffer.from(new Uint8Array(message));
        if (ud.phase === 'open') {
          const o = openMessage(ud.recvSeq + 1, bytes, ud.recvTag);
          if (!o.ok) {
            protocolError(ws, 1002, o.reason);
            return;
          }
          ud.recvSeq += 1;
          bytes = o.payload;
        }
        const d = decodeFrames(bytes, ud.version >= HOT_VERSION);
        if (!d.ok) {
          protocolError(ws, 1002, d.reason);
          return;
        }
        const frames = d.frames;
        // No peer of ours coalesces more than MAX_FRAMES_PER_MESSAGE into one message.
        if (frames.length > MAX_FRAMES_PER_MESSAGE) {
          protocolError(ws, 1008, `message of ${frames.length} frames, limit ${MAX_FRAMES_PER_MESSAGE}`);
          return;
        }
        t.countReceived(frames.length, message.byteLength);
        if (ud.phase === 'hello') {
          onClientHello(ws, frames);
          return;
        }
        if (ud.phase === 'auth') {
          onClientAuth(ws, frames);
          return;
        }
        // Check every frame before acting on any.
        for (const f of frames) {
          if (f.kind !== 'req' && f.kind !== 'note') {
            protocolError(ws, 1002, `unexpected ${f.kind} frame from client`);
            return;
          }
        }
        const from = ud.nodeId!;
        for (const f of frames) {
          if (ud.closed) return;
          if (f.kind === 'req') handleRequest(ws, from, f.id, f.type, f.body);
          else if (f.kind === 'note') handleNote(from, f.type, f.body);
        }
      } catch (e) {
        try {
          protocolError(ws, 1011, `internal: ${errMessage(e)}`);
        } catch {
          // ignore
        }
      }
    },
    close: (ws, code) => {
      try {
        const ud = ws.getUserData();
        ud.closed = true;
        if (ud.phase === 'auth' && !ud.refused && !endpointClosed) {
          // Gone after our hello without a proof: most likely a peer that found our proofs wrong.
          t.countAuthFailure('inbound', 'abandoned');
          t.emit({ type: 'auth-failure', peer: ud.transcript?.clientId ?? null, side: 'inbound', reason: 'abandoned', message: `'${ud.transcript?.clientId ?? '?'}' closed without proving it holds the cluster secret` });
        }
        ud.helloTimer?.cancel();
        ud.helloTimer = null;
        ud.outbox?.clear();
        sockets.delete(ws);
        t.emit({ type: 'inbound-close', peer: ud.nodeId, code });
        if (sockets.size === 0) drained?.();
      } catch {
        // ignore
      }
    },
  });

  // ---- the endpoint's life

  const endpoint: PeerEndpoint = {
    connections: () => sockets.size,
    close: () => {
      if (closing) return closing;
      endpointClosed = true;
      t.endpoints.delete(endpoint);
      closing = new Promise<void>((resolve) => {
        if (sockets.size === 0) {
          resolve();
          return;
        }
        const bye = encodeFrame({ kind: 'bye' });
        for (const ws of [...sockets]) {
          try {
            const ud = ws.getUserData();
            if (ud.phase !== 'open') {
              // Still in its handshake: it has no session tags yet and reads what arrives plain, so a sealed
              // bye would reach it as garbage (a protocol error). A plain close says "going away".
              ws.end(1001, 'node stopping');
              continue;
            }
            // Responses already queued go first.
            ud.outbox?.flush();
            write(ws, bye, 1);
          } catch {
            // ignore
          }
        }
        const cut = (): void => {
          for (const ws of [...sockets]) {
            try {
              if (!ws.getUserData().closed) ws.close();
            } catch {
              // ignore
            }
          }
          sockets.clear();
        };
        const timer = setTimeout(() => {
          cut();
          drained = null;
          resolve();
        }, t.closeGraceMs);
        drained = () => {
          clearTimeout(timer);
          drained = null;
          resolve();
        };
      });
      return closing;
    },
  };
  t.endpoints.add(endpoint);
  return endpoint;
}
