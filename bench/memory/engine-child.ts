// The direct-engine side of bench/memory.ts: a process of its own that holds
// one native engine (no HTTP, no node), so that its resident memory can be
// read from /proc like the node's. Driven by the parent over IPC:
//   parent → {type:'load', keys, valueBytes, concurrency, durationMs} | {type:'close'}
//   child  → {type:'ready'} | {type:'progress', done} | {type:'loaded', done, errors, ms} | {type:'closed'}
//
//   node --import tsx bench/memory/engine-child.ts <data dir> <cache bytes>
import { DEFAULT_PARTITION_BITS, openEngine } from '../../src/engine/index.js';
import { BUCKET, keyAt, valueOf } from './keys.js';

export type ParentMessage =
  | { type: 'load'; keys: number; valueBytes: number; concurrency: number; durationMs: number }
  | { type: 'close' };
export type ChildMessage =
  | { type: 'ready'; partitionBits: number; treeBranchBits: number; treeSegmentBits: number }
  | { type: 'progress'; done: number }
  | { type: 'loaded'; done: number; errors: number; ms: number; firstError: string | null }
  | { type: 'closed' };

const [dir, cacheArg] = process.argv.slice(2);
if (!dir || !cacheArg || !process.send) {
  throw new Error('usage: node --import tsx bench/memory/engine-child.ts <data dir> <cache bytes> (as a child with an IPC channel)');
}
const send = (m: ChildMessage) => process.send!(m);
// The node's partition count, so that the engine keeps as many Merkle trees as a node does.
const engine = await openEngine('native', { path: dir, nodeId: 'm1', cacheBytes: Number(cacheArg), partitionBits: DEFAULT_PARTITION_BITS });
const bucket = Buffer.from(BUCKET);

async function load(m: Extract<ParentMessage, { type: 'load' }>): Promise<void> {
  const value = valueOf(m.valueBytes);
  const started = performance.now();
  const deadline = started + m.durationMs;
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | null = null;
  const progress = setInterval(() => send({ type: 'progress', done }), 250);
  // Bounded in count (m.keys) and time (m.durationMs); blind writes, acknowledged before the background flush.
  const worker = async () => {
    while (next < m.keys && performance.now() < deadline) {
      const key = Buffer.from(keyAt(next++, m.keys));
      try {
        await engine.coordinate({ bucket, key, context: null, value, now: Date.now(), mode: 'siblings', durable: false });
        done++;
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, worker));
  clearInterval(progress);
  send({ type: 'loaded', done, errors, ms: performance.now() - started, firstError });
}

process.on('message', (m: ParentMessage) => {
  if (m.type === 'load') void load(m);
  else if (m.type === 'close') {
    void engine.close().then(() => {
      send({ type: 'closed' });
      process.disconnect();
    });
  }
});
// The parent went away without saying close: flush what we have and go.
process.on('disconnect', () => void engine.close().catch(() => {}).finally(() => process.exit(0)));
send({ type: 'ready', partitionBits: engine.partitionBits, treeBranchBits: engine.treeBranchBits, treeSegmentBits: engine.treeSegmentBits });
