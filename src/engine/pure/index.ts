// The pure-TypeScript engine and the record/context codec (shared with the HTTP layer).
export { PureEngine, type SimClock, type SimStorage } from './engine.js';
export { SimDisk } from './store.js';
export {
  decodeRecord,
  decodeContext,
  encodeContext,
  encodeRecord,
  recordContextBytes,
  compareDots,
  MAX_CONTEXT_ENTRIES,
  type Context,
  type ContextEntry,
  type DecodedRecord,
  type Sibling,
} from './codec.js';
export { LEAF_KEY, leafHash } from './tictac.js';
