// Both engine implementations behind one opener, so that the behaviour suite
// in test/engine runs against each. The native engine always needs a data
// directory: it gets a fresh temporary one unless a path is given. The pure
// engine stays in memory unless a path is given.
//
// Importing this module registers an afterAll in the importing test file that
// closes the engines it opened and removes the directories it made.
import { afterAll } from 'vitest';
import { NativeEngine } from '../../src/engine/native/index.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import type { Engine, EngineOptions } from '../../src/engine/types.js';
import { tempDir } from '../helpers/tmp.js';
import { EPOCH } from './helpers.js';

export const KINDS = ['native', 'pure'] as const;
export type Kind = (typeof KINDS)[number];

const engines: Engine[] = [];
const dirs: Array<{ remove(): void }> = [];

afterAll(async () => {
  // Close before removing: the native engine still holds its directory.
  // Engines a test already closed reject with CLOSED, which is fine here.
  for (const e of engines.splice(0)) await e.close().catch(() => undefined);
  for (const d of dirs.splice(0)) d.remove();
});

/** A temporary directory removed after the test file. */
export function dataDir(): string {
  const d = tempDir('ringkv-engine-');
  dirs.push(d);
  return d.path;
}

/** Opens an engine of `kind`; nodeId 'n1' and epoch EPOCH unless overridden (pass `epoch: undefined` for a random one). */
export async function openKind(kind: Kind, opts: Partial<EngineOptions> = {}): Promise<Engine> {
  const options: EngineOptions = { nodeId: 'n1', epoch: EPOCH, ...opts };
  if (kind === 'native' && options.path === undefined) options.path = dataDir();
  const e = kind === 'native' ? await NativeEngine.open(options) : await PureEngine.open(options);
  engines.push(e);
  return e;
}
