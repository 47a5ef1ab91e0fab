// A TCP proxy on 127.0.0.1 for WebSocket connections between two
// transports, for fault tests: it can stall, slow down and cut the traffic
// (cutting in the middle of a WebSocket message), and it can change bytes
// inside one WebSocket message's payload; and it can block, reading
// nothing from either end, so that the senders' kernel buffers fill and
// their writes come back short, as in a partition that drops packets
// (while it only stalls, it still reads everything and the senders never
// see backpressure). It parses the stream of each
// direction (the HTTP upgrade, then RFC 6455 frames) so that a change lands
// inside a message, where only the receiver's checks can catch it.
import net from 'node:net';

export type Direction = 'toServer' | 'toClient';

export type ProxyMode = 'pass' | 'stall' | 'slow' | 'block';

/** Changes the (unmasked) payload of data message `index` (1 = the hello) of a direction, in place. */
export type Mutator = (dir: Direction, index: number, payload: Buffer) => void;

export interface WsProxy {
  /** `host:port` for the client to dial. */
  address: string;
  /** pass: forward at once; stall: hold everything (still reading); slow: forward `slowChunkBytes` per timer tick; block: hold everything and read nothing. */
  mode: ProxyMode;
  /** Cuts every connection now, each in the middle of the bytes it holds, if any. Returns how many were cut. */
  cut(): number;
  /** Connections made through the proxy so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startWsProxy(upstreamPort: number, opts: { mutate?: Mutator; slowChunkBytes?: number } = {}): Promise<WsProxy> {
  const slowChunkBytes = opts.slowChunkBytes ?? 256;
  const pairs = new Set<{ cut: () => void; apply: () => void }>();
  let made = 0;
  let mode: ProxyMode = 'pass';
  const proxy: WsProxy = {
    address: '',
    get mode() {
      return mode;
    },
    set mode(m: ProxyMode) {
      mode = m;
      for (const p of pairs) p.apply();
    },
    cut: () => {
      const n = pairs.size;
      for (const p of [...pairs]) p.cut();
      return n;
    },
    connections: () => made,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.cut();
        server.close(() => resolve());
      }),
  };

  const server = net.createServer((client) => {
    made += 1;
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    const ends = [client, upstream];
    const lanes = [lane('toServer', client, upstream), lane('toClient', upstream, client)];
    const pair = {
      cut: () => {
        // Forward half of what is held, so that the peer sees a message begin and never end.
        for (const l of lanes) l.flushPart();
        for (const s of ends) s.destroy();
        pairs.delete(pair);
      },
      apply: () => {
        for (const s of ends) {
          if (mode === 'block') s.pause();
          else s.resume();
        }
      },
    };
    pairs.add(pair);
    pair.apply();
    for (const s of ends) {
      s.on('error', () => pair.cut());
      s.on('close', () => pair.cut());
    }
  });

  /** One direction: parses frames, applies the mutator, forwards by mode. */
  function lane(dir: Direction, from: net.Socket, to: net.Socket) {
    let parseBuf = Buffer.alloc(0);
    let headerDone = false;
    let messages = 0;
    const out: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;

    const pump = (): void => {
      timer = null;
      if (to.destroyed || out.length === 0) return;
      if (mode === 'stall' || mode === 'block') {
        timer = setTimeout(pump, 5);
        return;
      }
      if (mode === 'slow') {
        const head = out[0]!;
        const n = Math.min(head.length, slowChunkBytes);
        to.write(head.subarray(0, n));
        if (n === head.length) out.shift();
        else out[0] = head.subarray(n);
        timer = setTimeout(pump, 1);
        return;
      }
      for (const b of out.splice(0)) to.write(b);
    };
    const forward = (b: Buffer): void => {
      out.push(b);
      if (timer === null) timer = setTimeout(pump, 0);
    };

    from.on('data', (chunk: Buffer) => {
      parseBuf = Buffer.concat([parseBuf, chunk]);
      if (!headerDone) {
        const end = parseBuf.indexOf('\r\n\r\n');
        if (end < 0) return;
        headerDone = true;
        forward(parseBuf.subarray(0, end + 4));
        parseBuf = parseBuf.subarray(end + 4);
      }
      for (;;) {
        const f = parseFrame(parseBuf);
        if (!f) return;
        const frame = Buffer.from(parseBuf.subarray(0, f.end));
        parseBuf = parseBuf.subarray(f.end);
        if (f.opcode === 2 && opts.mutate) {
          messages += 1;
          const payload = frame.subarray(f.payloadAt);
          if (f.mask) unmask(payload, f.mask);
          opts.mutate(dir, messages, payload);
          if (f.mask) unmask(payload, f.mask);
        }
        forward(frame);
      }
    });

    return {
      flushPart: (): void => {
        const held = Buffer.concat(out.splice(0));
        if (timer) clearTimeout(timer);
        if (held.length > 1 && !to.destroyed) to.write(held.subarray(0, held.length >> 1));
      },
    };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return proxy;
}

/** One complete RFC 6455 frame at the start of `b`, or null if it is not all there yet. */
function parseFrame(b: Buffer): { opcode: number; mask: Buffer | null; payloadAt: number; end: number } | null {
  if (b.length < 2) return null;
  const opcode = b[0]! & 0x0f;
  const masked = (b[1]! & 0x80) !== 0;
  let len = b[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return null;
    len = b.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return null;
    len = Number(b.readBigUInt64BE(2));
    at = 10;
  }
  let mask: Buffer | null = null;
  if (masked) {
    if (b.length < at + 4) return null;
    mask = Buffer.from(b.subarray(at, at + 4));
    at += 4;
  }
  if (b.length < at + len) return null;
  return { opcode, mask, payloadAt: at, end: at + len };
}

function unmask(payload: Buffer, mask: Buffer): void {
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
}
