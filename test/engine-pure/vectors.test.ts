// Golden vectors written by the Rust engine (crates/engine/examples/vectors.rs):
// the pure engine must reproduce every byte. The format-1 vectors are those of
// before record format 2, unchanged: records without attributes keep them.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LEAF_KEY, PureEngine, decodeContext, decodeRecord, encodeContext, leafHash } from '../../src/engine/pure/index.js';
import { encodeLeafMessage } from '../../src/record/codec.js';
import { makeBkey } from '../../src/record/keys.js';
import type { ConflictMode } from '../../src/engine/types.js';

type Meta = Array<[string, string]>;
interface Step { mode: ConflictMode; now: number; context: string | null; value: string | null; contentType?: string; meta?: Meta; record: string; leaf: string }
type Vector =
  | { name: string; kind: 'position'; bucket: string; key: string; bkey: string; position: string }
  | { name: string; kind: 'leafKey'; leafKey: string }
  | { name: string; kind: 'context'; context: string }
  | { name: string; kind: 'leaf'; bucket: string; key: string; record: string; message: string; leaf: string }
  | { name: string; kind: 'coordinate'; nodeId: string; epoch: string; bucket: string; key: string; steps: Step[] }
  | { name: string; kind: 'merge'; mode: ConflictMode; bucket: string; key: string; local: string; incoming: string; result: string; leaf: string }
  | { name: string; kind: 'refused'; contentType: string; meta: Meta; code: string };

const file = fileURLToPath(new URL('../vectors/engine-vectors.json', import.meta.url));
const vectors = JSON.parse(readFileSync(file, 'utf8')) as Vector[];
const h = (s: string) => Buffer.from(s, 'hex');
const hex64 = (x: bigint) => x.toString(16).padStart(16, '0');

describe('golden vectors from the native engine', () => {
  it('covers every kind', () => {
    expect(new Set(vectors.map((v) => v.kind))).toEqual(new Set(['position', 'leafKey', 'context', 'leaf', 'coordinate', 'merge', 'refused']));
  });

  for (const v of vectors) {
    it(`${v.kind}: ${v.name}`, async () => {
      switch (v.kind) {
        case 'position': {
          const e = await PureEngine.open({ nodeId: 'v' });
          expect(makeBkey(h(v.bucket), h(v.key)).toString('hex')).toBe(v.bkey);
          expect(hex64(e.hashKey(h(v.bucket), h(v.key)))).toBe(v.position);
          expect(e.hashKeys([{ bucket: h(v.bucket), key: h(v.key) }]).toString('hex')).toBe(v.position);
          break;
        }
        case 'leafKey':
          expect(Buffer.from(LEAF_KEY).toString('hex')).toBe(v.leafKey);
          break;
        case 'context':
          expect(encodeContext(decodeContext(h(v.context))).toString('hex')).toBe(v.context);
          break;
        case 'leaf': {
          const bkey = makeBkey(h(v.bucket), h(v.key));
          const rec = decodeRecord(h(v.record));
          expect(encodeLeafMessage(bkey, rec).toString('hex')).toBe(v.message);
          expect(hex64(leafHash(bkey, rec))).toBe(v.leaf);
          break;
        }
        case 'coordinate': {
          const e = await PureEngine.open({ nodeId: v.nodeId, epoch: v.epoch });
          for (const s of v.steps) {
            const rec = await e.coordinate({
              bucket: h(v.bucket), key: h(v.key), context: s.context === null ? null : h(s.context),
              value: s.value === null ? null : h(s.value), now: s.now, mode: s.mode, durable: false,
              contentType: s.contentType, meta: s.meta,
            });
            expect(rec.toString('hex')).toBe(s.record);
            expect(hex64(leafHash(makeBkey(h(v.bucket), h(v.key)), decodeRecord(rec)))).toBe(s.leaf);
          }
          break;
        }
        case 'merge': {
          const m = (record: string) => ({ bucket: h(v.bucket), key: h(v.key), record: h(record), mode: v.mode, durable: false });
          const one = await PureEngine.open({ nodeId: 'x' });
          await one.merge(m(v.local));
          expect((await one.merge(m(v.incoming))).toString('hex')).toBe(v.result);
          const two = await PureEngine.open({ nodeId: 'y' });
          await two.merge(m(v.incoming));
          expect((await two.merge(m(v.local))).toString('hex')).toBe(v.result);
          expect(hex64(leafHash(makeBkey(h(v.bucket), h(v.key)), decodeRecord(h(v.result))))).toBe(v.leaf);
          break;
        }
        case 'refused': {
          const e = await PureEngine.open({ nodeId: 'r' });
          const req = { bucket: Buffer.from('b'), key: Buffer.from('refused'), context: null, value: Buffer.from('v'), now: 1000, mode: 'siblings' as const, durable: false };
          await expect(e.coordinate({ ...req, contentType: v.contentType, meta: v.meta })).rejects.toMatchObject({ code: v.code });
          expect(await e.get(req.bucket, req.key)).toBeNull();
          break;
        }
      }
    });
  }
});
