import { describe, expect, it } from 'vitest';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { CommittedRows } from './committed-rows.js';

const run = (from: number, to: number): StoredAuditRow[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ chain_seq: from + i, id: String(from + i) }) as StoredAuditRow);
const seqs = (rows: StoredAuditRow[] | null) => rows?.map((r) => r.chain_seq) ?? null;

describe('CommittedRows', () => {
  it('hands out the rows right after the position, in pages, and lets published ones go', () => {
    const held = new CommittedRows(100);
    held.add(0, run(1, 5));
    held.add(0, run(6, 8));
    expect(seqs(held.take(0, 0, 3))).toEqual([1, 2, 3]);
    expect(seqs(held.take(0, 3, 3))).toEqual([4, 5]); // a page ends with its run
    expect(seqs(held.take(0, 5, 10))).toEqual([6, 7, 8]);
    expect(held.size(0)).toBe(3);
    expect(held.take(0, 8, 10)).toBeNull();
    expect(held.size(0)).toBe(0);
  });

  it('answers null where it does not hold the next row: a gap, another chain, a position behind its rows', () => {
    const held = new CommittedRows(100);
    held.add(1, run(11, 20));
    expect(held.take(1, 5, 10)).toBeNull(); // rows 6..10 were written elsewhere: PostgreSQL has them
    expect(held.size(1)).toBe(10); // still held for when the stream gets there
    expect(held.take(2, 0, 10)).toBeNull();
    expect(seqs(held.take(1, 10, 2))).toEqual([11, 12]);
  });

  it('skips what another drainer already published and crosses to the next run', () => {
    const held = new CommittedRows(100);
    held.add(0, run(1, 4));
    held.add(0, run(5, 9));
    expect(seqs(held.take(0, 6, 10))).toEqual([7, 8, 9]);
    expect(held.size(0)).toBe(5);
  });

  it('holds rows with another writer\'s rows between them as separate runs, never sliced across the gap', () => {
    const held = new CommittedRows(100);
    held.add(0, [...run(1, 3), ...run(7, 8)]);
    expect(held.size(0)).toBe(5);
    expect(seqs(held.take(0, 0, 10))).toEqual([1, 2, 3]);
    expect(held.take(0, 3, 10)).toBeNull(); // rows 4..6 are PostgreSQL's to give
    expect(seqs(held.take(0, 6, 10))).toEqual([7, 8]);
  });

  it('drops the oldest runs beyond its bound (a stream that lags reads them back instead)', () => {
    const held = new CommittedRows(10);
    held.add(0, run(1, 6));
    held.add(0, run(7, 12));
    expect(held.size(0)).toBe(6);
    expect(held.take(0, 0, 10)).toBeNull();
    expect(seqs(held.take(0, 6, 10))).toEqual([7, 8, 9, 10, 11, 12]);
    held.add(0, []);
    expect(held.size(0)).toBe(6);
    held.drop(0);
    expect(held.size(0)).toBe(0);
    expect(held.take(0, 6, 10)).toBeNull();
  });
});
