// The memory benchmark's data set: YCSB's table name, fixed-length keys
// "user" + 12 digits (16 bytes), written in a scattered order (like YCSB's
// hashed insert order) so the store does not see a sorted stream.
export const BUCKET = 'usertable';
export const KEY_BYTES = 16;

// A prime: i -> (i * STRIDE) mod keys visits every index once when keys is not a multiple of it.
const STRIDE = 999_983;

/** The i-th key written, for 0 <= i < keys (keys < 9e9 keeps the product exact). */
export function keyAt(i: number, keys: number): string {
  const n = keys % STRIDE === 0 ? i : (i * STRIDE) % keys;
  return `user${String(n).padStart(12, '0')}`;
}

/** A value of `bytes` bytes, like YCSB's one field (fieldlength 100 by default). */
export function valueOf(bytes: number): Buffer {
  return Buffer.alloc(bytes, 'v');
}
