// Shared helpers for the pure engine's own tests (its modules and log file).
// The generic ones come from the both-kinds suite in test/engine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PureEngine } from '../../src/engine/pure/index.js';
import type { EngineOptions } from '../../src/engine/types.js';
import { EPOCH } from '../engine/helpers.js';

export { EPOCH, b, expectCode, put } from '../engine/helpers.js';

export function openMem(opts: Partial<EngineOptions> = {}): Promise<PureEngine> {
  return PureEngine.open({ nodeId: 'n1', epoch: EPOCH, ...opts });
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ringkv-pure-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
