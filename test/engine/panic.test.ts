// A panic inside the native engine (a broken invariant) must never cross the
// N-API boundary: it fails that one call with "INTERNAL: engine panicked: ..."
// and the process and the engine keep working. The addon's test hooks panic
// on the calling thread, on the libuv pool while holding the open store, and
// while converting a result on the main thread; they are refused unless
// RINGKV_TEST_PANICS=1 (read at each call).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NativeEngine, loadBinding } from '../../src/engine/native/index.js';
import { tempDir } from '../helpers/tmp.js';
import { EPOCH, b } from './helpers.js';

const dirs: Array<{ remove(): void }> = [];
afterAll(() => {
  for (const d of dirs.splice(0)) d.remove();
});
afterEach(() => {
  delete process.env.RINGKV_TEST_PANICS;
});

async function openRaw() {
  const dir = tempDir('ringkv-panic-');
  dirs.push(dir);
  const handle = await loadBinding().openEngine({ path: dir.path, nodeId: 'n1', epoch: EPOCH, partitionBits: 3 });
  return { handle, path: dir.path };
}

type Handle = Awaited<ReturnType<typeof openRaw>>['handle'];

/** A durable write and a read of it, through the same handle. */
async function stillServes(handle: Handle, key: string): Promise<Buffer> {
  const rec = await handle.coordinate(b('b'), b(key), null, b(`v-${key}`), 1000, false, true);
  expect(handle.getSync(b('b'), b(key))).toEqual(rec);
  return rec;
}

const PANICKED = /^INTERNAL: engine panicked: invariant: test panic/;

describe('native engine panics', () => {
  it('the test hooks are inert unless RINGKV_TEST_PANICS=1', async () => {
    const { handle } = await openRaw();
    expect(() => handle.__panicForTest()).toThrow(/^INVALID_ARGUMENT: test hook/);
    expect(() => handle.__panicForTestAsync('work')).toThrow(/^INVALID_ARGUMENT: test hook/);
    await handle.close();
  });

  it('a panic in any stage of a call fails that call as INTERNAL; the engine keeps serving and closes', async () => {
    const { handle, path } = await openRaw();
    process.env.RINGKV_TEST_PANICS = '1';
    const written = new Map<string, Buffer>();

    // On the calling thread, inside the engine with its store open.
    let thrown: unknown;
    try {
      handle.__panicForTest();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toMatch(PANICKED);
    expect((thrown as Error).message).toContain('calling thread');
    written.set('a', await stillServes(handle, 'a'));

    // On the libuv pool, holding the store's read lock while unwinding.
    await expect(handle.__panicForTestAsync('work')).rejects.toThrow(/^INTERNAL: engine panicked: .*on the pool/);
    written.set('b', await stillServes(handle, 'b'));

    // In napi's completion callback on the main thread.
    await expect(handle.__panicForTestAsync('resolve')).rejects.toThrow(/^INTERNAL: engine panicked: .*while resolving/);
    written.set('c', await stillServes(handle, 'c'));

    // Repeated panics leave nothing behind (no poisoned lock, no stuck job).
    for (let i = 0; i < 5; i++) {
      await expect(handle.__panicForTestAsync(i % 2 ? 'work' : 'resolve')).rejects.toThrow(PANICKED);
    }
    written.set('d', await stillServes(handle, 'd'));

    // close takes the store's write lock: it would hang if a panic had kept the read lock.
    await handle.close();
    const reopened = await NativeEngine.open({ path, nodeId: 'n1', epoch: EPOCH, partitionBits: 3 });
    try {
      for (const [key, rec] of written) expect(await reopened.get(b('b'), b(key))).toEqual(rec);
    } finally {
      await reopened.close();
    }
  });
});
