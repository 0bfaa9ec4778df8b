import { describe, expect, it } from 'vitest';
import { splitByBytes } from './kafka-batches.js';

const msg = (bytes: number, i: number) => ({ key: 'tenant', value: Buffer.alloc(bytes, i % 256), headers: { 'soma-chain': `0:${i}` } });

describe('splitByBytes', () => {
  it('keeps order and puts every message in exactly one group under the bound', () => {
    const messages = Array.from({ length: 1000 }, (_, i) => msg(1500, i));
    const groups = splitByBytes(messages, 256 * 1024);
    expect(groups.length).toBeGreaterThan(5);
    expect(groups.flat()).toEqual(messages);
    for (const g of groups) expect(g.reduce((n, m) => n + m.value.length, 0)).toBeLessThanOrEqual(256 * 1024);
  });

  it('sends one oversize message alone and nothing at all for no messages', () => {
    const groups = splitByBytes([msg(10, 0), msg(2_000_000, 1), msg(10, 2)], 1024);
    expect(groups.map((g) => g.length)).toEqual([1, 1, 1]);
    expect(splitByBytes([], 1024)).toEqual([]);
  });
});
