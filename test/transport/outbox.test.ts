import { describe, expect, it } from 'vitest';
import { Outbox } from '../../src/transport/outbox.js';
import type { OutboxOptions } from '../../src/transport/outbox.js';

/** An outbox whose end-of-turn flush runs when the test says so, recording what it writes. */
function harness(opts: Partial<OutboxOptions> = {}, held = false) {
  const written: Array<{ bytes: number[]; frames: number }> = [];
  let pending: (() => void) | null = null;
  let scheduled = 0;
  const box = new Outbox(
    {
      write: (message, frames) => written.push({ bytes: [...message], frames }),
      maxMessageBytes: 1000,
      maxFramesPerMessage: 100,
      scheduler: {
        set: (fn) => {
          scheduled += 1;
          pending = fn;
          return fn;
        },
        clear: (fn) => {
          if (pending === fn) pending = null;
        },
      },
      ...opts,
    },
    held,
  );
  const endOfTurn = (): void => {
    const fn = pending;
    pending = null;
    fn?.();
  };
  return { box, written, endOfTurn, scheduled: () => scheduled, isScheduled: () => pending !== null };
}

const frame = (tag: number, len: number): Buffer => Buffer.alloc(len, tag);

describe('Outbox', () => {
  it('writes the frames of one turn as one message, in order, at the end of the turn', () => {
    const h = harness();
    h.box.push(frame(1, 3));
    h.box.push(frame(2, 2));
    h.box.push(frame(3, 1));
    expect(h.written).toHaveLength(0);
    expect(h.box.queuedBytes).toBe(6);
    expect(h.scheduled()).toBe(1); // one flush per turn, not one per frame
    h.endOfTurn();
    expect(h.written).toEqual([{ bytes: [1, 1, 1, 2, 2, 3], frames: 3 }]);
    expect(h.box.queuedBytes).toBe(0);
    // the next turn starts a new message
    h.box.push(frame(4, 1));
    h.endOfTurn();
    expect(h.written[1]).toEqual({ bytes: [4], frames: 1 });
  });

  it('writes early when a message would pass the byte or frame cap; a large frame goes alone', () => {
    const h = harness({ maxMessageBytes: 10, maxFramesPerMessage: 3 });
    h.box.push(frame(1, 4));
    h.box.push(frame(2, 4));
    h.box.push(frame(3, 4)); // 12 > 10: the first two go now
    expect(h.written).toEqual([{ bytes: [1, 1, 1, 1, 2, 2, 2, 2], frames: 2 }]);
    h.box.push(frame(4, 25)); // larger than the cap: 3 goes now, 4 waits alone
    h.box.push(frame(5, 1)); // 25 + 1 > 10: 4 goes now, alone
    h.box.push(frame(6, 1));
    h.box.push(frame(7, 1));
    h.box.push(frame(8, 1)); // a 4th frame: 5,6,7 go now
    h.endOfTurn();
    expect(h.written.map((w) => [w.frames, w.bytes.length, w.bytes[0]])).toEqual([
      [2, 8, 1],
      [1, 4, 3],
      [1, 25, 4],
      [3, 3, 5],
      [1, 1, 8],
    ]);
  });

  it('while held only queues; release writes in order within the caps', () => {
    const h = harness({ maxMessageBytes: 5, maxFramesPerMessage: 2 }, true);
    for (let i = 1; i <= 5; i++) h.box.push(frame(i, 2));
    expect(h.isScheduled()).toBe(false);
    h.endOfTurn();
    expect(h.written).toHaveLength(0);
    expect(h.box.queuedBytes).toBe(10);
    h.box.release();
    expect(h.written.map((w) => w.bytes)).toEqual([
      [1, 1, 2, 2],
      [3, 3, 4, 4],
      [5, 5],
    ]);
    expect(h.box.queuedBytes).toBe(0);
  });

  it('clear drops what is queued and the scheduled flush; a write that ends the connection stops the flush', () => {
    const h = harness();
    h.box.push(frame(1, 1));
    h.box.clear();
    expect(h.isScheduled()).toBe(false);
    h.endOfTurn();
    expect(h.written).toHaveLength(0);

    // the owner's write fails the connection and clears: the rest is not written
    let box!: Outbox;
    const writes: number[] = [];
    box = new Outbox({
      write: (m) => {
        writes.push(m[0]!);
        box.hold();
        box.clear();
      },
      maxMessageBytes: 1,
      maxFramesPerMessage: 1,
      scheduler: { set: () => 1, clear: () => undefined },
    }, true);
    box.push(frame(1, 1));
    box.push(frame(2, 1));
    box.release();
    expect(writes).toEqual([1]);
    expect(box.queuedBytes).toBe(0);
  });
});
