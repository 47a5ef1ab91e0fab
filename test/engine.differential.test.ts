// Differential test: the native (Rust) and pure (TypeScript) engines are
// driven with the same seeded random operations and must give the same bytes
// and the same error codes. Each implementation runs two engines (nodes A and
// B) so records also travel between replicas through merge and hints.
//
// More seeds: RINGKV_DIFF_SEEDS=1-50 RINGKV_DIFF_OPS=20000 npx vitest run test/engine.differential.test.ts
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EngineError,
  NativeEngine,
  PureEngine,
  decodeRecord,
  encodeContext,
  encodeRecord,
  type DetachedCoordinateRequest,
  type Engine,
  type EngineOptions,
} from '../src/engine/index.js';
import { Rand } from './helpers/random.js';
import { tempDir } from './helpers/tmp.js';

function seedsFromEnv(): number[] {
  const spec = process.env.RINGKV_DIFF_SEEDS;
  if (!spec) return [1, 2, 3, 4, 5];
  const [lo, hi] = spec.split('-').map(Number) as [number, number?];
  return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, i) => lo + i);
}
const SEEDS = seedsFromEnv();
const OPS = Number(process.env.RINGKV_DIFF_OPS ?? 10_000);

const dirs: Array<{ remove(): void }> = [];
afterAll(() => dirs.forEach((d) => d.remove()));

// Small trees and limits so that segments collide and limits are reached.
function options(nodeId: string, path?: string): EngineOptions {
  return {
    nodeId,
    epoch: nodeId === 'a' ? '00000000000000aa' : '00000000000000bb',
    path,
    partitionBits: 3,
    treeBranchBits: 3,
    treeSegmentBits: 3,
    flushEveryMs: 0,
    limits: { maxKeyBytes: 12, maxValueBytes: 48, maxSiblings: 6 },
  };
}

type Outcome = { ok: unknown } | { error: string };

/** Runs an operation and reduces its result to plain comparable data. */
async function outcome(f: () => Promise<unknown> | unknown): Promise<Outcome> {
  try {
    return { ok: plain(await f()) };
  } catch (err) {
    if (err instanceof EngineError) return { error: err.code };
    throw err;
  }
}

function plain(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (typeof v === 'bigint') return v.toString(16);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** The encoded context is the record's prefix up to the end of its context entries, with the context format byte (1). */
function contextOf(record: Buffer): Buffer {
  let at = 3;
  const n = record.readUInt16BE(1);
  for (let i = 0; i < n; i++) at += 1 + record[at]! + 8;
  const out = Buffer.concat([record.subarray(0, at)]);
  out[0] = 1;
  return out;
}

/**
 * A coordinate's attributes: mostly none or valid ones (so format-2 records
 * are common), sometimes over a limit or malformed (METADATA_TOO_LARGE,
 * BAD_METADATA from both twins, in the same order of checks).
 */
function randomAttributes(rand: Rand): { contentType?: string; meta?: Array<[string, string]> } {
  const roll = rand.int(0, 99);
  if (roll < 50) return {};
  const types = ['application/json', 'text/plain; charset=utf-8', 'application/octet-stream', 'image/png'];
  const names = ['a', 'author', 'b', 'x-1', 'tag', 'z~'];
  const values = ['', '1', 'ann', 'a b c', 'x'.repeat(40)];
  const contentType = rand.chance(0.2) ? undefined : rand.pick(types);
  const meta: Array<[string, string]> = Array.from({ length: rand.int(0, 3) }, () => [rand.pick(names), rand.pick(values)]);
  if (roll < 92) {
    // Valid: names made unique (a duplicate is BAD_METADATA).
    const unique = new Map(meta);
    return { contentType, meta: [...unique] };
  }
  const bad = rand.int(0, 7);
  if (bad === 0) return { contentType: 't'.repeat(rand.int(255, 257)), meta };
  if (bad === 1) return { contentType: '', meta };
  if (bad === 2) return { contentType, meta: Array.from({ length: rand.int(32, 33) }, (_, i) => [`k${i}`, 'v'] as [string, string]) };
  if (bad === 3) return { contentType, meta: [['n'.repeat(rand.int(64, 65)), 'v']] };
  if (bad === 4) return { contentType, meta: [['a', 'v'.repeat(rand.int(8190, 8192))]] };
  if (bad === 5) return { contentType, meta: [[rand.pick(['Upper', 'sp ace', 'caf\u00e9']), 'v'], ['b', 'w']] };
  if (bad === 6) return { contentType: rand.pick(['text/\u00e9', 'a\r\nb']), meta };
  return { contentType, meta: [['a', '1'], ['a', rand.pick(['1', '2'])]] };
}

interface Pair {
  a: Engine;
  b: Engine;
}

describe('native and pure engines agree', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: ${OPS} random operations`, async () => {
      const dirA = tempDir();
      const dirB = tempDir();
      dirs.push(dirA, dirB);
      const native: Pair = {
        a: await NativeEngine.open(options('a', dirA.path)),
        b: await NativeEngine.open(options('b', dirB.path)),
      };
      const pure: Pair = { a: await PureEngine.open(options('a')), b: await PureEngine.open(options('b')) };
      const rand = new Rand(seed);
      const buckets = [Buffer.from('cart'), Buffer.from('users'), Buffer.from([1, 2, 255])];
      const keys = Array.from({ length: 24 }, (_, i) => Buffer.from(`k${i}`));
      const contexts: Buffer[] = [Buffer.alloc(0)];
      let mismatches = 0;
      // What the run exercised, so a generator that stops reaching a path is noticed.
      const seen = new Map<string, number>();

      const both = async (label: string, f: (p: Pair) => Promise<unknown> | unknown): Promise<Outcome> => {
        const n = await outcome(() => f(native));
        const p = await outcome(() => f(pure));
        const kind = `${label.split(' ').at(-1)} ${'ok' in n ? 'ok' : n.error}`;
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
        if (JSON.stringify(n) !== JSON.stringify(p)) {
          mismatches++;
          expect(n, `seed ${seed} ${label}`).toEqual(p);
        }
        return n;
      };
      const remember = (o: Outcome) => {
        if ('ok' in o && typeof o.ok === 'string' && o.ok.length > 0) {
          contexts.push(contextOf(Buffer.from(o.ok, 'hex')));
          if (contexts.length > 64) contexts.splice(1, 1);
        }
      };
      const node = (p: Pair, which: number) => (which === 0 ? p.a : p.b);
      // Cursors (disk keys) returned by earlier scans, with their partition: scans resume from them.
      const cursors: Array<{ partition: number; cursor: Buffer }> = [];
      // Tombstone-only records seen per object: reaping them later tests the stale case.
      const tombstones: Array<{ bucket: Buffer; key: Buffer; record: Buffer }> = [];
      const reaped = { true: 0, false: 0 };
      const scanned = { continued: 0 };
      // Records coordinated, by format byte: both must be common.
      const formats = { 1: 0, 2: 0 };
      const allTombstones = (record: Buffer) => decodeRecord(record).siblings.every((s) => s.tombstone);

      for (let step = 0; step < OPS; step++) {
        const which = rand.int(0, 1);
        const bucket = rand.chance(0.01) ? Buffer.from([0x61, 0, 0x62]) : rand.pick(buckets);
        const key = rand.chance(0.01) ? rand.bytes(13) : rand.pick(keys);
        // 0..99: the original mix; 100..109: partition scans and reaping.
        const roll = rand.int(0, 109);
        if (roll < 40) {
          const ctxRoll = rand.int(0, 99);
          const context =
            ctxRoll < 20 ? null : ctxRoll < 95 ? rand.pick(contexts) : ctxRoll < 98 ? rand.bytes(rand.int(1, 20)) : Buffer.alloc(0);
          const value = rand.chance(0.1) ? null : rand.bytes(rand.chance(0.02) ? 49 : rand.int(0, 24));
          const now = 1_000 + step + rand.int(0, 50);
          const mode = rand.chance(0.1) ? 'lww' : 'siblings';
          const durable = rand.chance(0.02);
          const attrs = randomAttributes(rand);
          // The synchronous form (no durable flag) must give the same bytes and errors.
          let o: Outcome;
          if (!durable && rand.chance(0.5)) {
            o = await both(`step ${step} coordinateSync`, (p) =>
              node(p, which).coordinateSync({ bucket, key, context, value, now, mode, ...attrs }));
          } else {
            o = await both(`step ${step} coordinate`, (p) =>
              node(p, which).coordinate({ bucket, key, context, value, now, mode, durable, ...attrs }));
          }
          remember(o);
          if ('ok' in o && typeof o.ok === 'string') formats[o.ok.startsWith('02') ? 2 : 1]++;
        } else if (roll < 55) {
          if (rand.chance(0.5)) remember(await both(`step ${step} getSync`, (p) => node(p, which).getSync(bucket, key)));
          else remember(await both(`step ${step} get`, (p) => node(p, which).get(bucket, key)));
        } else if (roll < 72) {
          const corrupt = rand.chance(0.05);
          const flipAt = rand.int(0, 1 << 16);
          const mode = rand.chance(0.1) ? 'lww' : 'siblings';
          const synchronous = rand.chance(0.5);
          await both(`step ${step} ${synchronous ? 'mergeSync' : 'merge'}`, async (p) => {
            const record = await node(p, which).get(bucket, key);
            if (!record) return null;
            const sent = Buffer.from(record);
            if (corrupt) sent[flipAt % sent.length]! ^= 0x5a;
            if (synchronous) return node(p, 1 - which).mergeSync({ bucket, key, record: sent, mode });
            return node(p, 1 - which).merge({ bucket, key, record: sent, mode, durable: false });
          });
        } else if (roll < 76) {
          const batch = Array.from({ length: rand.int(1, 6) }, () => rand.pick(keys));
          await both(`step ${step} mergeMany`, async (p) => {
            const records = await node(p, which).getMany(batch.map((k) => ({ bucket, key: k })));
            const reqs = batch.flatMap((k, i) =>
              records[i] ? [{ bucket, key: k, record: records[i]!, mode: 'siblings' as const, durable: false }] : []);
            return node(p, 1 - which).mergeMany(reqs);
          });
        } else if (roll < 86) {
          const partition = rand.int(0, 7);
          const branch = rand.int(0, 7);
          const segments = Array.from({ length: rand.int(1, 4) }, () => rand.int(0, 63));
          await both(`step ${step} trees`, async (p) => [
            node(p, which).treeRoots(),
            node(p, which).treeBranches(partition),
            node(p, which).treeSegments(partition, branch),
            await node(p, which).segmentKeys(partition, segments),
          ]);
        } else if (roll < 89) {
          await both(`step ${step} hash`, (p) => [p.a.hashKey(bucket, key), p.a.hashKeys([{ bucket, key }, { bucket: buckets[0]!, key }])]);
        } else if (roll < 97) {
          const target = rand.pick(['t1', 't2']);
          const action = rand.int(0, 3);
          const stale = rand.chance(0.3);
          const limit = rand.int(1, 10);
          await both(`step ${step} hints`, async (p) => {
            const e = node(p, which);
            if (action === 0) {
              const record = await e.get(bucket, key);
              return record ? e.hintPut(target, bucket, key, record) : null;
            }
            if (action === 1) return e.hintList(target, limit);
            if (action === 2) {
              const [first] = await e.hintList(target, 1);
              if (!first) return null;
              const record = stale ? (await e.get(first.bucket, first.key)) ?? first.record : first.record;
              return e.hintDelete(target, first.bucket, first.key, record);
            }
            return e.hintTargets();
          });
        } else if (roll >= 105) {
          const action = rand.int(0, 9);
          const flipAt = rand.int(0, 1 << 16);
          const staleOne = tombstones.length > 0 ? rand.pick(tombstones) : null;
          const o = await both(`step ${step} reap`, async (p) => {
            const e = node(p, which);
            if (action <= 2 || (action >= 8 && !staleOne)) {
              // Delete with the full context, then reap the tombstone just written.
              const current = await e.get(bucket, key);
              const del = await e.coordinate({ bucket, key, context: current && contextOf(current), value: null, now: 1_000 + step, mode: 'siblings', durable: false });
              return [del, await e.reap(bucket, key, del)];
            }
            if (action <= 6) {
              // Whatever is stored now: tombstones only (reaped), a live sibling (INVALID_ARGUMENT), or absent.
              const current = await e.get(bucket, key);
              return current && [current, await e.reap(bucket, key, current)];
            }
            if (action === 7) {
              const current = (await e.get(bucket, key)) ?? Buffer.from([1, 0, 0, 0, 0]);
              const sent = Buffer.from(current);
              sent[flipAt % sent.length]! ^= 0x5a;
              return e.reap(bucket, key, sent);
            }
            // A tombstone-only record seen earlier: false unless the object is still exactly that.
            return [staleOne!.record, await e.reap(staleOne!.bucket, staleOne!.key, staleOne!.record)];
          });
          if ('ok' in o && Array.isArray(o.ok)) {
            const [record, result] = o.ok as [string, boolean];
            if (typeof result === 'boolean') reaped[`${result}`]++;
            const rec = Buffer.from(record, 'hex');
            if (allTombstones(rec)) {
              tombstones.push({ bucket, key, record: rec });
              if (tombstones.length > 16) tombstones.shift();
            }
          }
        } else if (roll >= 100) {
          const partition = rand.chance(0.03) ? 8 : rand.int(0, 7);
          const limitRoll = rand.int(0, 99);
          const limit = limitRoll < 2 ? 0 : limitRoll < 4 ? 10_001 : limitRoll < 70 ? rand.int(1, 5) : rand.int(6, 40);
          const cursorRoll = rand.int(0, 99);
          const ofPartition = cursors.filter((c) => c.partition === partition);
          const after =
            cursorRoll < 30 || cursors.length === 0
              ? null
              : cursorRoll < 85 && ofPartition.length > 0
                ? rand.pick(ofPartition).cursor
                : cursorRoll < 93
                  ? rand.pick(cursors).cursor // often another partition's: INVALID_ARGUMENT
                  : rand.bytes(rand.int(0, 20));
          const o = await both(`step ${step} scanPartition`, (p) => node(p, which).scanPartition(partition, after, limit));
          if ('ok' in o) {
            const page = o.ok as { items: Array<{ key: string }>; next: string | null };
            if (after !== null && page.items.length > 0) scanned.continued++;
            if (page.next !== null) {
              cursors.push({ partition, cursor: Buffer.from(page.next, 'hex') });
              if (cursors.length > 32) cursors.shift();
            }
          }
        } else {
          const name = `app.${rand.int(0, 3)}`;
          const value = rand.bytes(rand.int(0, 8));
          await both(`step ${step} meta`, async (p) => {
            await node(p, which).metaPut(name, value);
            return node(p, which).metaGet(name);
          });
        }
      }

      // Final state: every object and every tree is identical.
      for (const bucket of buckets) {
        for (const key of keys) {
          await both(`final get`, async (p) => [await p.a.get(bucket, key), await p.b.get(bucket, key)]);
        }
      }
      await both('final roots', (p) => [p.a.treeRoots(), p.b.treeRoots()]);

      // Reopening the native engine rebuilds its trees from disk: same roots.
      const rootsBefore = native.a.treeRoots();
      await native.a.close();
      await native.b.close();
      const reopened = await NativeEngine.open(options('a', dirA.path));
      expect(reopened.treeRoots().equals(rootsBefore)).toBe(true);
      expect(reopened.treeRoots().equals(pure.a.treeRoots())).toBe(true);
      await reopened.close();
      await pure.a.close();
      await pure.b.close();
      expect(mismatches).toBe(0);
      // `a|b`: either form reaching the path is enough.
      for (const path of ['coordinate ok', 'coordinate BAD_CONTEXT', 'coordinate VALUE_TOO_LARGE', 'coordinate TOO_MANY_SIBLINGS|coordinateSync TOO_MANY_SIBLINGS',
        'coordinate INVALID_ARGUMENT', 'merge ok', 'merge CORRUPT_RECORD', 'mergeMany ok', 'trees ok', 'hints ok', 'meta ok',
        'scanPartition ok', 'scanPartition INVALID_ARGUMENT', 'reap ok', 'reap INVALID_ARGUMENT', 'reap CORRUPT_RECORD',
        'coordinateSync ok', 'coordinateSync BAD_CONTEXT|coordinate BAD_CONTEXT', 'coordinateSync VALUE_TOO_LARGE', 'coordinateSync INVALID_ARGUMENT',
        'getSync ok', 'mergeSync ok', 'mergeSync CORRUPT_RECORD',
        'coordinate METADATA_TOO_LARGE|coordinateSync METADATA_TOO_LARGE', 'coordinate BAD_METADATA|coordinateSync BAD_METADATA']) {
        expect(path.split('|').reduce((sum, p) => sum + (seen.get(p) ?? 0), 0), `${path} exercised (${JSON.stringify([...seen])})`).toBeGreaterThan(0);
      }
      expect(reaped.true, 'reaps that deleted').toBeGreaterThan(0);
      expect(reaped.false, 'stale reaps refused').toBeGreaterThan(0);
      expect(scanned.continued, 'scans that resumed from a cursor').toBeGreaterThan(0);
      expect(formats[1], 'format-1 records coordinated').toBeGreaterThan(0);
      expect(formats[2], 'format-2 records coordinated').toBeGreaterThan(0);
    });
  }
});

// The coordinator merges replica answers with engine.reconcile: the same
// bytes and errors from both twins, and (siblings mode) the bytes a replica
// stores after merging the same records one by one.
describe('native and pure reconcile agree, and agree with what merges store', () => {
  const RECONCILE_OPS = Math.max(1, Math.floor(OPS / 5));
  for (const seed of SEEDS) {
    it(`seed ${seed}: ${RECONCILE_OPS} random reconciles`, async () => {
      const dir = tempDir();
      dirs.push(dir);
      const native = await NativeEngine.open(options('r', dir.path));
      const pure = await PureEngine.open(options('r'));
      // Writers making concurrent versions of a few keys (no limit on siblings here: the inputs may be large).
      const writers = await Promise.all(['w1', 'w2', 'w3'].map((id) => PureEngine.open({ ...options(id), epoch: undefined, limits: { maxSiblings: 1000 } })));
      const rand = new Rand(seed);
      const bucket = Buffer.from('b');
      const keys = Array.from({ length: 6 }, (_, i) => Buffer.from(`k${i}`));
      const pool = new Map<string, Buffer[]>(keys.map((k) => [k.toString(), []]));
      const seen = new Map<string, number>();
      for (let step = 0; step < RECONCILE_OPS; step++) {
        const key = rand.pick(keys);
        const records = pool.get(key.toString())!;
        const roll = rand.int(0, 99);
        if (roll < 45 || records.length === 0) {
          const from = records.length > 0 && rand.chance(0.7) ? rand.pick(records) : null;
          const w = rand.pick(writers);
          const value = rand.chance(0.15) ? null : rand.bytes(rand.int(0, 8));
          const attrs = rand.chance(0.3) ? { contentType: 'text/plain', meta: [['w', w.actor.slice(0, 2)]] as Array<[string, string]> } : {};
          const out = await w.coordinate({ bucket, key, context: from && contextOf(from), value, now: 1_000 + rand.int(0, 200), mode: 'siblings', durable: false, ...attrs });
          records.push(out);
        } else if (roll < 60) {
          const w = rand.pick(writers);
          records.push(await w.merge({ bucket, key, record: rand.pick(records), mode: 'siblings', durable: false }));
        } else {
          const mode = rand.chance(0.3) ? 'lww' : 'siblings';
          const inputs: Buffer[] = rand.chance(0.01) ? [] : Array.from({ length: rand.int(1, 4) }, () => Buffer.from(rand.pick(records)));
          if (inputs.length > 1 && rand.chance(0.05)) inputs[1]![rand.int(0, inputs[1]!.length - 1)]! ^= 0x5a;
          if (rand.chance(0.03)) inputs.push(...inconsistentPair(rand));
          const n = await outcome(() => native.reconcile(inputs, mode));
          const p = await outcome(() => pure.reconcile(inputs, mode));
          seen.set('ok' in n ? 'ok' : n.error, (seen.get('ok' in n ? 'ok' : n.error) ?? 0) + 1);
          expect(n, `seed ${seed} step ${step} reconcile of ${inputs.length}`).toEqual(p);
          if ('ok' in n && mode === 'siblings' && inputs.length > 1) {
            // A replica merging the same records in order stores the same bytes.
            const at = Buffer.from(`m${step}`);
            let stored: Buffer | null = null;
            for (const record of inputs) stored = native.mergeSync({ bucket, key: at, record, mode });
            expect(Buffer.from(stored!).toString('hex'), `seed ${seed} step ${step} merged one by one`).toBe(n.ok);
            seen.set('merge-equal', (seen.get('merge-equal') ?? 0) + 1);
          }
          if (records.length > 8) records.splice(0, records.length - 8);
        }
      }
      await native.close();
      await pure.close();
      await Promise.all(writers.map((w) => w.close()));
      for (const kind of ['ok', 'merge-equal', 'CORRUPT_RECORD', 'INVALID_ARGUMENT']) expect(seen.get(kind) ?? 0, `${kind} exercised (${JSON.stringify([...seen])})`).toBeGreaterThan(0);
    });
  }
});

// A fallback coordinator's version (coordinateDetached): the same bytes and
// errors from both twins for any input, bad contexts and inputs over a limit
// included; and the bytes coordinate stores for a key it holds no record of,
// given the engine's own actor.
describe('native and pure coordinateDetached agree, and agree with coordinate on an absent key', () => {
  const RUNS = Math.max(50, Math.floor(OPS / 20));
  const MAX_SAFE = Number.MAX_SAFE_INTEGER;
  const actors = ['a:1', 'a:1/f0', 'a:1/f1', 'b:2', 'z'].map((a) => Buffer.from(a));
  const entries = (n: number, counter = 1) => Array.from({ length: n }, (_, i) => ({ actor: Buffer.from(`w${String(i).padStart(4, '0')}`), counter }));
  const FULL = encodeContext(entries(1024)); // full: a write under a new actor would make it 1025
  const ALMOST_FULL = encodeContext(entries(1023));
  const OVER = Buffer.concat([FULL.subarray(0, 1), Buffer.from([0x04, 0x01]), FULL.subarray(3), Buffer.from([5]), Buffer.from('w1024'), Buffer.alloc(7), Buffer.from([1])]); // 1025 entries
  const validContext = fc
    .uniqueArray(fc.record({ actor: fc.constantFrom(...actors), counter: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constant(MAX_SAFE)) }), { selector: (e) => e.actor.toString(), maxLength: 5 })
    .map((es) => encodeContext([...es].sort((x, y) => Buffer.compare(x.actor, y.actor))));
  // Malformed: a byte changed, cut short, a byte added, or random bytes (mostly BAD_CONTEXT; a changed byte may still decode).
  const badContext = fc.oneof(
    fc.tuple(validContext.filter((c) => c.length > 3), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([c, i, x]) => {
      const out = Buffer.from(c);
      out[i % out.length]! ^= x;
      return out;
    }),
    fc.tuple(validContext.filter((c) => c.length > 1), fc.nat()).map(([c, i]) => c.subarray(0, 1 + (i % (c.length - 1)))),
    validContext.map((c) => Buffer.concat([c, Buffer.from([0])])),
    fc.uint8Array({ minLength: 1, maxLength: 24 }).map((u) => Buffer.from(u)),
  );
  const context = fc.oneof(
    { arbitrary: validContext, weight: 6 },
    { arbitrary: badContext, weight: 3 },
    { arbitrary: fc.constantFrom<Buffer | null>(null, Buffer.alloc(0), FULL, ALMOST_FULL, OVER), weight: 2 },
  );
  const actor = fc.oneof(
    { arbitrary: fc.constantFrom(...actors), weight: 6 },
    { arbitrary: fc.constantFrom(0, 255, 256).map((n) => Buffer.alloc(n, 0x61)), weight: 1 },
    { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((u) => Buffer.from(u)), weight: 2 },
  );
  // options(): maxValueBytes 48.
  const value = fc.option(fc.integer({ min: 0, max: 50 }).map((n) => Buffer.alloc(n, 0x76)), { nil: null, freq: 5 });
  const now = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 5_000 }), weight: 8 },
    { arbitrary: fc.constantFrom(MAX_SAFE, MAX_SAFE + 1, -1, 1.5, Number.NaN), weight: 1 },
  );
  const mode = fc.oneof({ arbitrary: fc.constantFrom('siblings', 'lww'), weight: 9 }, { arbitrary: fc.constant('last'), weight: 1 });
  const attrs = fc.oneof(
    { arbitrary: fc.constant({}), weight: 4 },
    {
      arbitrary: fc.record({
        contentType: fc.option(fc.constantFrom('text/plain', 'application/json', '', 't'.repeat(256), 'caf\u00e9'), { nil: undefined }),
        meta: fc.option(
          fc.oneof(
            fc.uniqueArray(fc.tuple(fc.constantFrom('a', 'b', 'tag', 'Upper', 'n'.repeat(65)), fc.constantFrom('', 'x', 'v'.repeat(40))), { selector: (p) => p[0], maxLength: 3 }),
            fc.constant(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'] as [string, string])),
            fc.constant([['a', '1'], ['a', '2']] as Array<[string, string]>),
          ),
          { nil: undefined },
        ),
      }),
      weight: 3,
    },
  );
  const request = fc.record({ context, actor, value, now, mode, attrs }).map(
    ({ attrs: a, ...r }) => ({ ...r, ...a }) as unknown as DetachedCoordinateRequest,
  );

  for (const seed of SEEDS) {
    it(`seed ${seed}: ${RUNS} random detached coordinations`, async () => {
      const dir = tempDir();
      dirs.push(dir);
      const native = await NativeEngine.open(options('a', dir.path));
      const pure = await PureEngine.open(options('a'));
      const seen = new Map<string, number>();
      let fresh = 0;
      await fc.assert(
        fc.asyncProperty(fc.oneof({ arbitrary: request, weight: 4 }, { arbitrary: request.map((r) => ({ ...r, actor: Buffer.from(native.actor) })), weight: 1 }), async (req) => {
          const n = await outcome(() => native.coordinateDetached(req));
          const p = await outcome(() => pure.coordinateDetached(req));
          expect(n).toEqual(p);
          const kind = 'ok' in n ? 'ok' : n.error;
          seen.set(kind, (seen.get(kind) ?? 0) + 1);
          if ('ok' in n && Buffer.from(req.actor).toString() === native.actor) {
            // The engine's own coordinate on a key it holds no record of makes the same bytes, in both twins.
            const key = Buffer.from(`d${fresh++}`);
            for (const e of [native, pure]) {
              const stored = e.coordinateSync({ bucket: Buffer.from('b'), key, context: req.context, value: req.value, now: req.now, mode: req.mode, contentType: req.contentType, meta: req.meta });
              expect(stored.toString('hex')).toBe(n.ok);
            }
            seen.set('same as coordinate', (seen.get('same as coordinate') ?? 0) + 1);
          }
          if ('ok' in n) {
            // One sibling: the new dot, (actor, context[actor] + 1).
            const rec = decodeRecord(Buffer.from(n.ok as string, 'hex'));
            expect(rec.siblings.map((x) => x.actor.toString('hex'))).toEqual([Buffer.from(req.actor).toString('hex')]);
          }
        }),
        { seed, numRuns: RUNS },
      );
      // No storage: both work on a closed engine, with the same bytes.
      await native.close();
      await pure.close();
      const req = { context: null, actor: Buffer.from('a:1/f9'), value: Buffer.from('v'), now: 1, mode: 'siblings' as const };
      expect(native.coordinateDetached(req).equals(pure.coordinateDetached(req))).toBe(true);
      for (const kind of ['ok', 'same as coordinate', 'BAD_CONTEXT', 'VALUE_TOO_LARGE', 'INVALID_ARGUMENT', 'BAD_METADATA', 'METADATA_TOO_LARGE']) {
        expect(seen.get(kind) ?? 0, `${kind} exercised (${JSON.stringify([...seen])})`).toBeGreaterThan(0);
      }
    });
  }
});

/** Two records each covering the other's only live dot: no sibling survives their merge. */
function inconsistentPair(rand: Rand): Buffer[] {
  const context = [{ actor: Buffer.from('x:1'), counter: 1 }, { actor: Buffer.from('y:1'), counter: 1 }];
  const sibling = (actor: string) => ({ actor: Buffer.from(actor), counter: 1, timestamp: rand.int(0, 9), tombstone: false, value: Buffer.from(actor) });
  return [encodeRecord({ context, siblings: [sibling('x:1')] }), encodeRecord({ context, siblings: [sibling('y:1')] })];
}
