import { LRUCache } from 'lru-cache';

/**
 * A bounded cache whose entries stop answering at their own deadline: `lru-cache` (least recently used goes
 * first when full) with two things fixed for security caches, where an entry must never outlive what it stands
 * for (a credential's expiry, a revocation delay):
 *
 * - The deadline is exclusive: an entry set with `until` answers while `now < until`, never at `until`.
 *   lru-cache keeps an entry while `now - start <= ttl`, so the ttl handed to it is `until - now - 1`, and an
 *   entry with less than 2 ms left is not stored (lru-cache reads a ttl of 0 as "forever").
 * - Time is the caller's: one `now` per request (and a fake one in tests), passed to every call. lru-cache reads
 *   it through its `perf` hook, with `ttlResolution: 0` so it never holds on to an earlier reading.
 */
export class ExpiringCache<V extends NonNullable<unknown>> {
  private now = 0;
  private readonly lru: LRUCache<string, V>;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error('ExpiringCache needs a positive integer bound');
    this.lru = new LRUCache<string, V>({
      max,
      ttlAutopurge: false, // expiry is checked on read: no timers, and a hit stays a map lookup
      updateAgeOnGet: false,
      ttlResolution: 0,
      perf: { now: () => this.now },
    });
  }

  get size(): number {
    return this.lru.size;
  }

  /** The value while `now < until`; an expired entry is dropped on the way. */
  get(key: string, now: number): V | undefined {
    this.now = now;
    return this.lru.get(key);
  }

  /** Stores until `until` (exclusive) unless that is less than 2 ms away; replaces an existing entry. */
  set(key: string, value: V, until: number, now: number): void {
    const ttl = Math.min(until - now - 1, Number.MAX_SAFE_INTEGER);
    if (!(ttl >= 1)) {
      this.lru.delete(key); // an older answer must not outlive the newer one that was not stored
      return;
    }
    this.now = now;
    this.lru.set(key, value, { ttl });
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
  }
}
