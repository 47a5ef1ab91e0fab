// A simulated network for the seeded simulator: the same Transport
// interface on a virtual clock, with random delay (hence reordering), drops,
// partitions, isolation and node crashes. Nothing here uses real timers or
// Math.random: all randomness comes from the injected `random`, every event
// sits in one queue ordered by (time, sequence number), and events run one
// at a time with the microtask queue drained between them. Given the same
// seed and the same sequence of calls, a run is the same run.
//
// Random draws: every message sent (request, response, notification) draws
// exactly two numbers, first for the drop decision and then for the delay,
// whether or not it is dropped for another reason.
//
// Crash model: crash(id) is a process death. The node's current transport
// (and the clock from clock(id)) become dead for good: messages to or from it
// are dropped, its handler is not called, its timers do not fire, responses
// its handler was computing are dropped, and its own pending requests reject
// with TIMEOUT at their deadlines (nobody answers a dead process). Requests
// others sent to it time out. restart(id) creates a new incarnation:
// network.transport(id) and network.clock(id) then return NEW objects, and
// the harness builds a fresh runtime on them (it must call onRequest again).
import { packValue, unpackValue } from './frames.js';
import { TransportError } from './types.js';
import type { Clock, PeerHandler, PeerRef, Timer, Transport } from './types.js';

export interface SimNetworkOptions {
  /** Seeded source of [0,1) numbers. */
  random: () => number;
  /** Default 1. */
  minDelayMs?: number;
  /** Default 10. */
  maxDelayMs?: number;
  /** Probability a message is lost. Default 0. */
  dropRate?: number;
  /** Virtual time at start. Default 0. */
  startMs?: number;
  /** Copy bodies through msgpack (as the real transport does). Default true. */
  serialize?: boolean;
  /** Called for every message event, for traces and debugging. */
  trace?: (e: SimTraceEvent) => void;
}

export type SimMessageKind = 'req' | 'res' | 'note';

export interface SimTraceEvent {
  at: number;
  event: 'send' | 'deliver' | 'drop' | 'timeout' | 'late';
  kind: SimMessageKind;
  from: string;
  to: string;
  type: string;
  /** Request id (per sending transport) for req/res. */
  id?: number;
  /** Why a message was dropped. */
  reason?: string;
}

interface QueueEntry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Binary min-heap on (at, seq). */
class EventQueue {
  private heap: QueueEntry[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(e: QueueEntry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  peek(): QueueEntry | undefined {
    return this.heap[0];
  }

  pop(): QueueEntry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: QueueEntry, b: QueueEntry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Lets every pending microtask (promise continuation) run. */
function drainMicrotasks(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

interface SimNode {
  id: string;
  incarnation: number;
  up: boolean;
  transport: SimTransport;
  clock: Clock;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export class SimNetwork {
  private readonly random: () => number;
  private minDelayMs: number;
  private maxDelayMs: number;
  private dropRate: number;
  private readonly serialize: boolean;
  private readonly traceFn: ((e: SimTraceEvent) => void) | undefined;
  private readonly queue = new EventQueue();
  private seq = 0;
  private time: number;
  private readonly nodes = new Map<string, SimNode>();
  private readonly blocked = new Set<string>();
  private readonly isolated = new Set<string>();
  private running = false;

  constructor(opts: SimNetworkOptions) {
    this.random = opts.random;
    this.minDelayMs = opts.minDelayMs ?? 1;
    this.maxDelayMs = opts.maxDelayMs ?? 10;
    if (!(this.minDelayMs >= 0 && this.maxDelayMs >= this.minDelayMs)) {
      throw new RangeError('need 0 <= minDelayMs <= maxDelayMs');
    }
    this.dropRate = opts.dropRate ?? 0;
    this.serialize = opts.serialize ?? true;
    this.traceFn = opts.trace;
    this.time = opts.startMs ?? 0;
  }

  // --- virtual clock -------------------------------------------------------

  now(): number {
    return this.time;
  }

  /** Runs fn at virtual time atMs (not before now). Ties run in scheduling order. */
  schedule(atMs: number, fn: () => void): Timer {
    const entry: QueueEntry = {
      at: Number.isFinite(atMs) ? Math.max(atMs, this.time) : this.time,
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.queue.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /**
   * A Clock on virtual time. With a node id, bound to that node's current
   * incarnation: its timers never fire once the node has crashed.
   */
  clock(nodeId?: string): Clock {
    if (nodeId === undefined) {
      return {
        now: () => this.time,
        setTimer: (ms, fn) => this.schedule(this.time + delayOf(ms), fn),
      };
    }
    return this.node(nodeId).clock;
  }

  /** Number of scheduled (not yet run) events, cancelled ones included. */
  pendingEvents(): number {
    return this.queue.size;
  }

  /** Time of the next live event, if any. */
  nextEventAt(): number | undefined {
    this.skipCancelled();
    return this.queue.peek()?.at;
  }

  private skipCancelled(): void {
    for (let e = this.queue.peek(); e && e.cancelled; e = this.queue.peek()) this.queue.pop();
  }

  /**
   * Runs the next event (advancing virtual time to it), then lets microtasks
   * settle. Returns false if there was nothing to run. An exception thrown by
   * the event's callback propagates.
   */
  async step(): Promise<boolean> {
    if (this.running) throw new Error('SimNetwork: step() re-entered; await each step');
    this.skipCancelled();
    const e = this.queue.pop();
    if (!e) return false;
    this.running = true;
    try {
      this.time = e.at;
      e.fn();
    } finally {
      this.running = false;
    }
    await drainMicrotasks();
    return true;
  }

  /**
   * Runs every event due at or before atMs in order, then sets the clock to
   * atMs. maxEvents (default 10 million) bounds runaway zero-delay loops.
   */
  async runUntil(atMs: number, maxEvents = 10_000_000): Promise<void> {
    await drainMicrotasks();
    let n = 0;
    for (;;) {
      const next = this.nextEventAt();
      if (next === undefined || next > atMs) break;
      if (++n > maxEvents) throw new Error(`SimNetwork.runUntil: more than ${maxEvents} events before ${atMs} ms`);
      await this.step();
    }
    if (atMs > this.time) this.time = atMs;
  }

  /** runUntil(now() + ms). */
  runFor(ms: number, maxEvents?: number): Promise<void> {
    return this.runUntil(this.time + ms, maxEvents);
  }

  // --- nodes and faults ----------------------------------------------------

  private node(id: string): SimNode {
    let n = this.nodes.get(id);
    if (!n) {
      n = this.incarnate(id, 0);
      this.nodes.set(id, n);
    }
    return n;
  }

  private incarnate(id: string, incarnation: number): SimNode {
    const node: SimNode = {
      id,
      incarnation,
      up: true,
      transport: undefined as unknown as SimTransport,
      clock: undefined as unknown as Clock,
    };
    node.transport = new SimTransport(this, id, incarnation);
    node.clock = {
      now: () => this.time,
      setTimer: (ms, fn) =>
        this.schedule(this.time + delayOf(ms), () => {
          if (this.isLive(id, incarnation)) fn();
        }),
    };
    return node;
  }

  /** The Transport of the node's current incarnation (created on first use; addresses are node ids). */
  transport(nodeId: string): SimTransport {
    return this.node(nodeId).transport;
  }

  /** Node ids known to the network. */
  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  isUp(nodeId: string): boolean {
    return this.nodes.get(nodeId)?.up ?? false;
  }

  /** Messages between any node of a and any node of b are dropped (both ways) until heal(). */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) if (x !== y) this.blocked.add(pairKey(x, y));
  }

  /** Cuts the node off from every other node until heal(). */
  isolate(nodeId: string): void {
    this.isolated.add(nodeId);
  }

  /** Removes all partitions and isolations. */
  heal(): void {
    this.blocked.clear();
    this.isolated.clear();
  }

  setDropRate(rate: number): void {
    this.dropRate = rate;
  }

  setDelay(minDelayMs: number, maxDelayMs: number): void {
    if (!(minDelayMs >= 0 && maxDelayMs >= minDelayMs)) throw new RangeError('need 0 <= min <= max');
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  /** Kills the node's current incarnation (see the crash model above). */
  crash(nodeId: string): void {
    const n = this.node(nodeId);
    if (!n.up) return;
    n.up = false;
    n.transport.die();
  }

  /** Starts a new incarnation of a crashed node and returns its (new) transport. No-op if it is up. */
  restart(nodeId: string): SimTransport {
    const old = this.node(nodeId);
    if (old.up) return old.transport;
    const n = this.incarnate(nodeId, old.incarnation + 1);
    this.nodes.set(nodeId, n);
    return n.transport;
  }

  canTalk(a: string, b: string): boolean {
    if (a === b) return true;
    return !this.isolated.has(a) && !this.isolated.has(b) && !this.blocked.has(pairKey(a, b));
  }

  /** @internal */
  isLive(nodeId: string, incarnation: number): boolean {
    const n = this.nodes.get(nodeId);
    return n !== undefined && n.up && n.incarnation === incarnation && !n.transport.isClosed();
  }

  /** @internal */
  liveTransport(nodeId: string): SimTransport | undefined {
    const n = this.nodes.get(nodeId);
    if (!n || !n.up || n.transport.isClosed()) return undefined;
    return n.transport;
  }

  /** @internal */
  emit(e: SimTraceEvent): void {
    this.traceFn?.(e);
  }

  /** @internal */
  encode(body: unknown): unknown {
    return this.serialize ? packValue(body) : body;
  }

  /** @internal */
  decode(payload: unknown): unknown {
    return this.serialize ? unpackValue(payload as Buffer) : payload;
  }

  /**
   * @internal Sends one message: two random draws, then either a drop or a
   * delivery at now + delay (re-checked on arrival against partitions and
   * node liveness).
   */
  send(
    from: SimTransport,
    toAddress: string,
    kind: SimMessageKind,
    type: string,
    id: number | undefined,
    deliver: (dest: SimTransport) => void,
  ): void {
    const lost = this.random() < this.dropRate;
    const span = this.maxDelayMs - this.minDelayMs;
    const delay = this.minDelayMs + Math.min(span, Math.floor(this.random() * (span + 1)));
    const base = { kind, from: from.self, to: toAddress, type, ...(id !== undefined ? { id } : {}) };
    const dropped = (reason: string): void => this.emit({ at: this.time, event: 'drop', ...base, reason });
    this.emit({ at: this.time, event: 'send', ...base });
    if (!from.isLive()) return dropped('sender down');
    if (lost) return dropped('lost');
    if (!this.canTalk(from.self, toAddress)) return dropped('partitioned');
    this.schedule(this.time + delay, () => {
      const dest = this.liveTransport(toAddress);
      if (!dest) return dropped('receiver down');
      if (!this.canTalk(from.self, toAddress)) return dropped('partitioned');
      this.emit({ at: this.time, event: 'deliver', ...base });
      deliver(dest);
    });
  }
}

function delayOf(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

interface SimPending {
  peer: string;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: Timer;
}

/** One incarnation of a node on a SimNetwork. Its address is its node id. */
export class SimTransport implements Transport {
  private handler: PeerHandler | null = null;
  private readonly pending = new Map<number, SimPending>();
  private nextId = 1;
  private closed = false;
  private dead = false;

  /** Addresses on the simulated network are node ids. */
  readonly addressProblem = (address: string): string | null =>
    /^[A-Za-z0-9._-]{1,64}$/.test(address) ? null : `address ${JSON.stringify(address).slice(0, 80)} is not a simulated node id`;

  constructor(
    private readonly net: SimNetwork,
    readonly self: string,
    readonly incarnation: number,
  ) {}

  /** @internal */
  isClosed(): boolean {
    return this.closed;
  }

  /** @internal Alive: this incarnation is current, up and not closed. */
  isLive(): boolean {
    return !this.dead && this.net.isLive(this.self, this.incarnation);
  }

  /** @internal Called on crash: pending requests are left to time out. */
  die(): void {
    this.dead = true;
  }

  onRequest(handler: PeerHandler): void {
    this.handler = handler;
  }

  request(to: PeerRef, type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new TransportError('CLOSED', 'transport closed', to.id));
    let payload: unknown;
    try {
      payload = this.net.encode(body);
    } catch (e) {
      return Promise.reject(e);
    }
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = this.net.schedule(this.net.now() + delayOf(timeoutMs), () => {
        if (this.pending.delete(id)) {
          this.net.emit({ at: this.net.now(), event: 'timeout', kind: 'req', from: this.self, to: to.address, type, id });
          reject(new TransportError('TIMEOUT', `peer ${to.id}: '${type}' timed out after ${timeoutMs} ms`, to.id));
        }
      });
      this.pending.set(id, { peer: to.id, resolve, reject, timer });
      this.net.send(this, to.address, 'req', type, id, (dest) => dest.receiveRequest(this, id, type, payload));
    });
  }

  notify(to: PeerRef, type: string, body: unknown): void {
    try {
      if (this.closed) return;
      const payload = this.net.encode(body);
      this.net.send(this, to.address, 'note', type, undefined, (dest) => dest.receiveNote(this.self, type, payload));
    } catch {
      // fire and forget
    }
  }

  /** @internal */
  receiveRequest(from: SimTransport, id: number, type: string, payload: unknown): void {
    const reply = (ok: boolean, value: unknown): void => {
      if (!this.isLive()) return; // crashed or closed while handling: the response is lost
      let out: unknown;
      let success = ok;
      try {
        out = success ? this.net.encode(value) : value;
      } catch (e) {
        success = false;
        out = { code: 'REMOTE', message: `unencodable response: ${e instanceof Error ? e.message : String(e)}` };
      }
      this.net.send(this, from.self, 'res', type, id, (dest) => {
        if (dest !== from) return; // the requester's incarnation is gone
        from.receiveResponse(this.self, id, type, success, out);
      });
    };
    const handler = this.handler;
    if (!handler) {
      reply(false, { code: 'REMOTE', message: `node ${this.self} has no request handler` });
      return;
    }
    let result: Promise<unknown>;
    try {
      const body = this.net.decode(payload);
      result = Promise.resolve(handler(from.self, type, body));
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (v) => reply(true, v),
      (e: unknown) => {
        const code = (e as { code?: unknown } | null)?.code;
        reply(false, {
          code: 'REMOTE',
          message: e instanceof Error ? e.message : String(e),
          ...(typeof code === 'string' ? { remoteCode: code } : {}),
        });
      },
    );
  }

  /** @internal */
  receiveNote(from: string, type: string, payload: unknown): void {
    const handler = this.handler;
    if (!handler) return;
    try {
      Promise.resolve(handler(from, type, this.net.decode(payload))).catch(() => undefined);
    } catch {
      // notifications have no reply
    }
  }

  /** @internal */
  receiveResponse(sender: string, id: number, type: string, ok: boolean, payload: unknown): void {
    const p = this.pending.get(id);
    if (!p) {
      this.net.emit({ at: this.net.now(), event: 'late', kind: 'res', from: sender, to: this.self, type, id });
      return;
    }
    this.pending.delete(id);
    p.timer.cancel();
    if (ok) {
      let body: unknown;
      try {
        body = this.net.decode(payload);
      } catch (e) {
        p.reject(e);
        return;
      }
      p.resolve(body);
    } else {
      const e = payload as { code: string; message: string; remoteCode?: string };
      p.reject(new TransportError(e.code === 'OVERLOADED' ? 'OVERLOADED' : 'REMOTE', e.message, p.peer, e.remoteCode));
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const pending = [...this.pending.values()];
      this.pending.clear();
      for (const p of pending) {
        p.timer.cancel();
        p.reject(new TransportError('CLOSED', 'transport closed'));
      }
    }
    return Promise.resolve();
  }
}

