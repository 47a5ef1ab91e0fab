// The latest causal context seen for each key, bounded (least recently used
// evicted first). A Map iterates in insertion order, so re-inserting on use
// keeps the oldest entry first.
export class ContextCache {
  private readonly map = new Map<string, string>();
  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('context cache capacity must be a positive integer');
  }
  get(key: string): string | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, context: string | null): void {
    this.map.delete(key);
    if (context === null) return;
    this.map.set(key, context);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
  }
  get size(): number {
    return this.map.size;
  }
}
