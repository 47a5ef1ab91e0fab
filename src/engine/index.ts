// The engine layer: one interface, a native (Rust) and a pure (TypeScript)
// implementation with the same bytes in and out.
export * from './types.js';
export { NativeEngine } from './native/index.js';
export { PureEngine } from './pure/index.js';
export * from '../record/codec.js';

import type { Engine, EngineOptions } from './types.js';
import { NativeEngine } from './native/index.js';
import { PureEngine } from './pure/index.js';

export type EngineKind = 'native' | 'pure';

/** Opens an engine of the given kind; the node uses 'native', benchmarks and differential tests both. */
export function openEngine(kind: EngineKind, options: EngineOptions): Promise<Engine> {
  return kind === 'native' ? NativeEngine.open(options) : PureEngine.open(options);
}
