// A bounds-checked cursor over big-endian binary data, shared by the binary
// decoders (engine records, OR-set states). Each decoder subclasses it with
// `fail` raising its own typed error, so no decoder ever reads out of bounds.
export abstract class ByteReader {
  off = 0;
  constructor(readonly buf: Buffer) {}

  /** Raises the decoder's typed error; never returns. */
  abstract fail(msg: string): never;

  need(n: number): void {
    if (this.off + n > this.buf.length) this.fail('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  end(): void {
    if (this.off !== this.buf.length) this.fail('trailing bytes');
  }
}
