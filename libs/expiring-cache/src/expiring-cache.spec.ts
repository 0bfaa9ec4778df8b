import { describe, expect, it } from 'vitest';
import { ExpiringCache } from './expiring-cache.js';

const T0 = 1_000_000;

describe('ExpiringCache', () => {
  it('answers until the deadline, not at it, and forgets expired entries', () => {
    const m = new ExpiringCache<string>(10);
    m.set('a', 'A', T0 + 100, T0);
    expect(m.get('a', T0 + 99)).toBe('A');
    expect(m.get('a', T0 + 100)).toBeUndefined();
    expect(m.size).toBe(0);
  });

  it('stores nothing whose deadline is past or under 2 ms away, and drops the older answer then', () => {
    const m = new ExpiringCache<string>(10);
    m.set('a', 'A', T0, T0);
    m.set('b', 'B', T0 - 1, T0);
    m.set('c', 'C', T0 + 1, T0); // a ttl of 0 would mean "forever" to lru-cache
    m.set('d', 'D', Number.NaN, T0);
    expect(m.size).toBe(0);
    m.set('e', 'E1', T0 + 1000, T0);
    m.set('e', 'E2', T0, T0);
    expect(m.get('e', T0)).toBeUndefined();
    expect(m.get('c', T0 + 10 ** 12)).toBeUndefined();
  });

  it('keeps an entry without a deadline (Infinity) as long as it is not evicted', () => {
    const m = new ExpiringCache<string>(10);
    m.set('a', 'A', Number.POSITIVE_INFINITY, T0);
    expect(m.get('a', T0 + 10 ** 12)).toBe('A');
  });

  it('stays within its bound, dropping the least recently used first', () => {
    const m = new ExpiringCache<number>(3);
    for (let i = 0; i < 5; i++) m.set(`k${i}`, i, T0 + 1000, T0);
    expect(m.size).toBe(3);
    expect(m.get('k0', T0)).toBeUndefined();
    expect(m.get('k1', T0)).toBeUndefined();
    expect([m.get('k2', T0), m.get('k3', T0), m.get('k4', T0)]).toEqual([2, 3, 4]);
    m.set('k2', 20, T0 + 1000, T0); // replaced: now the most recent
    m.set('k5', 5, T0 + 1000, T0);
    expect(m.get('k3', T0)).toBeUndefined();
    expect(m.get('k2', T0)).toBe(20);
  });

  it('takes time only from its callers: an entry does not age between calls by itself', () => {
    const m = new ExpiringCache<string>(10);
    m.set('a', 'A', T0 + 5, T0);
    expect(m.get('a', T0 + 4)).toBe('A');
    expect(m.get('a', T0 + 3)).toBe('A'); // a caller's clock reading, even an earlier one, is what counts
    m.delete('a');
    expect(m.get('a', T0)).toBeUndefined();
    m.set('b', 'B', T0 + 5, T0);
    m.clear();
    expect(m.size).toBe(0);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new ExpiringCache(0)).toThrow();
    expect(() => new ExpiringCache(1.5)).toThrow();
  });
});
