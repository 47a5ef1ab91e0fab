// Shared helpers for the pure engine tests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PureEngine } from '../../src/engine/pure/index.js';
import type { ConflictMode, EngineOptions } from '../../src/engine/types.js';

export const b = (s: string): Buffer => Buffer.from(s, 'utf8');
export const EPOCH = '0000000000000001';

export function openMem(opts: Partial<EngineOptions> = {}): Promise<PureEngine> {
  return PureEngine.open({ nodeId: 'n1', epoch: EPOCH, ...opts });
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ringkv-pure-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function put(
  e: PureEngine,
  key: string,
  value: string | null,
  context: Buffer | null = null,
  opts: { now?: number; mode?: ConflictMode; bucket?: string; durable?: boolean } = {},
): Promise<Buffer> {
  return e.coordinate({
    bucket: b(opts.bucket ?? 'b'),
    key: b(key),
    context,
    value: value === null ? null : b(value),
    now: opts.now ?? 1000,
    mode: opts.mode ?? 'siblings',
    durable: opts.durable ?? false,
  });
}

/** Expect a promise (or a thunk) to fail with an EngineError of `code`. */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error(`expected ${code}, got success`);
  if ((err as { code?: string }).code !== code) throw new Error(`expected ${code}, got ${String((err as Error).stack ?? err)}`);
}
