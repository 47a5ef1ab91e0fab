// Frame coalescing for one connection and direction. Frames pushed during
// one event-loop turn are written together as one WebSocket message at the
// end of the turn: one send (one write syscall, one message to parse at the
// other end) instead of one per frame. The default flush point is
// setImmediate, which runs after the poll phase, so every request that
// arrived in this turn (HTTP or peer) has had the chance to add its frames;
// a microtask flush would run after each callback and coalesce much less.
//
// A message never exceeds maxMessageBytes or maxFramesPerMessage, except
// that a single frame larger than maxMessageBytes goes alone: pushing a
// frame that would break a cap first writes what is queued. While held (a
// connection whose handshake is not done), frames only queue; release()
// writes them at once, in messages within the caps. Frame order is kept.
//
// No I/O here: the owner supplies `write` (which must not throw: a failed
// send is the owner's to handle, e.g. by dropping the connection and
// calling clear()) and, for tests, `scheduler`.

export interface OutboxOptions {
  /** Sends one message: headroomBytes of room, then `frames` whole frames back to back. Must not throw. */
  write: (message: Buffer, frames: number) => void;
  /** Bytes left free in front of each message's frames, for the writer's envelope (sealed in place: one copy per message). Default 0. */
  headroomBytes?: number;
  /** Cap on the bytes of a coalesced message (a larger single frame goes alone). */
  maxMessageBytes: number;
  /** Cap on the frames in one message (at least 1). */
  maxFramesPerMessage: number;
  /** Runs a function once at the end of this event-loop turn, and cancels that. Default setImmediate / clearImmediate. */
  scheduler?: Scheduler;
}

export interface Scheduler {
  set(fn: () => void): unknown;
  clear(handle: unknown): void;
}

const endOfTurn: Scheduler = {
  set: (fn) => setImmediate(fn),
  clear: (handle) => clearImmediate(handle as NodeJS.Immediate),
};

export class Outbox {
  private frames: Buffer[] = [];
  private bytes = 0;
  /** The scheduled end-of-turn flush, if any. */
  private scheduled: unknown = null;
  private held: boolean;
  private readonly write: OutboxOptions['write'];
  private readonly maxBytes: number;
  private readonly maxFrames: number;
  private readonly headroom: number;
  private readonly scheduler: Scheduler;
  private readonly flushScheduled = (): void => {
    this.scheduled = null;
    this.flush();
  };

  constructor(opts: OutboxOptions, held = false) {
    this.write = opts.write;
    this.maxBytes = Math.max(1, opts.maxMessageBytes);
    this.maxFrames = Math.max(1, Math.floor(opts.maxFramesPerMessage));
    this.headroom = Math.max(0, Math.floor(opts.headroomBytes ?? 0));
    this.scheduler = opts.scheduler ?? endOfTurn;
    this.held = held;
  }

  /** Bytes queued and not yet written (they count toward the connection's backpressure). */
  get queuedBytes(): number {
    return this.bytes;
  }

  get queuedFrames(): number {
    return this.frames.length;
  }

  /** Queues one encoded frame; it is written at the end of this turn (or on release, if held). */
  push(frame: Buffer): void {
    if (
      !this.held &&
      this.frames.length > 0 &&
      (this.bytes + frame.length > this.maxBytes || this.frames.length >= this.maxFrames)
    ) {
      this.flush();
    }
    this.frames.push(frame);
    this.bytes += frame.length;
    if (!this.held && this.scheduled === null) this.scheduled = this.scheduler.set(this.flushScheduled);
  }

  /** Writes everything queued now, in as few messages as the caps allow. No-op while held. */
  flush(): void {
    this.unschedule();
    // `write` may end the connection, and its owner then clear()s or hold()s: re-check each round.
    while (!this.held && this.frames.length > 0) {
      const frames = this.frames;
      let n = 1;
      let size = frames[0]!.length;
      while (n < frames.length && n < this.maxFrames && size + frames[n]!.length <= this.maxBytes) {
        size += frames[n]!.length;
        n += 1;
      }
      const batch = n === frames.length ? frames : frames.slice(0, n);
      this.frames = n === frames.length ? [] : frames.slice(n);
      this.bytes -= size;
      this.write(this.headroom === 0 && n === 1 ? batch[0]! : this.join(batch, size), n);
    }
  }

  /** One buffer: the headroom, then the frames. */
  private join(batch: Buffer[], size: number): Buffer {
    const out = Buffer.allocUnsafe(this.headroom + size);
    let at = this.headroom;
    for (const f of batch) {
      out.set(f, at);
      at += f.length;
    }
    return out;
  }

  /** Stops writing: frames queue until release(). */
  hold(): void {
    this.held = true;
    this.unschedule();
  }

  /** Resumes writing and writes what is queued now. */
  release(): void {
    this.held = false;
    this.flush();
  }

  private unschedule(): void {
    if (this.scheduled !== null) {
      this.scheduler.clear(this.scheduled);
      this.scheduled = null;
    }
  }

  /** Drops everything queued (the connection is gone) and cancels a scheduled flush. */
  clear(): void {
    this.frames = [];
    this.bytes = 0;
    this.unschedule();
  }
}
