import { LRUCache } from 'lru-cache';

/**
 * A bounded, short-TTL decision cache with a generation counter. `clear()` bumps the generation,
 * so a lookup that started before an invalidation (a policy reload, a relationship write) cannot
 * store its now-stale answer after it: `set` with an old generation is dropped.
 */
export class DecisionCache<V extends object> {
  private readonly lru: LRUCache<string, V> | undefined;
  private gen = 0;

  constructor(ttlMs: number, max: number) {
    // ttlAutopurge off: expiry is checked on read, so the hit path stays a map lookup.
    this.lru = ttlMs > 0 ? new LRUCache<string, V>({ max, ttl: ttlMs, ttlAutopurge: false, updateAgeOnGet: false }) : undefined;
  }

  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  get(key: string): V | undefined {
    return this.lru?.get(key);
  }

  set(key: string, value: V, generation: number): void {
    if (generation === this.gen) this.lru?.set(key, value);
  }

  clear(): void {
    this.gen++;
    this.lru?.clear();
  }
}
