// The record library: the byte formats and operations both engine twins and
// the runtime share (codec, DVV operations, key identity and ring geometry,
// reconcile). Pure: no I/O, no clock. The Rust crate holds the same code
// under the same names (crates/engine/src/{codec,dvv,keys}.rs).
export * from './errors.js';
export * from './codec.js';
export * from './dvv.js';
export * from './keys.js';
export { reconcile } from './reconcile.js';
