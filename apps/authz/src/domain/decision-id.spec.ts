import { describe, it, expect } from 'vitest';
import { newDecisionId } from './decision-id.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Generous: on a loaded machine 20,000 ids plus the checks can pass the 5 s default (not a speed test).
describe('newDecisionId', { timeout: 30_000 }, () => {
  it('is a UUIDv7 carrying the millisecond timestamp', () => {
    const now = Date.UTC(2026, 11, 4, 10, 0, 0, 123);
    const id = newDecisionId(now + 10_000_000);
    expect(id).toMatch(V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(now + 10_000_000);
  });

  it('is unique and ordered across many ids in the same millisecond', () => {
    const ids = Array.from({ length: 20_000 }, () => newDecisionId());
    expect(new Set(ids).size).toBe(ids.length);
    // One assertion each over the whole list: 20,000 expect() calls are slow on a loaded machine.
    expect(ids.filter((id) => !V7.test(id))).toEqual([]);
    expect(ids.filter((id, i) => i > 0 && id <= ids[i - 1]!)).toEqual([]);
  });
});
