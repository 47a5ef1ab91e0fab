// The pure-TypeScript engine (and, for its tests, the record codec it uses from src/record).
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
} from '../../record/codec.js';
export { LEAF_KEY, leafHash } from './tictac.js';
