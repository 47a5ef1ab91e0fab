// Byte views shared by every layer: the one place a Uint8Array becomes a
// Buffer without a copy (msgpackr, ws and napi hand out plain Uint8Arrays).

/** `bytes` as a Buffer over the same memory: no copy, so callers copy whatever they keep. */
export function bufferView(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Whether two byte strings are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return bufferView(a).equals(bufferView(b));
}
