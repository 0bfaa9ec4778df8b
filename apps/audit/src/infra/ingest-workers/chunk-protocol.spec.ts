import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { packValues, rowsFromWorker, unpackValues } from './chunk-protocol.js';
import type { StoredAuditRow } from '../../domain/audit-record.js';

describe('chunk protocol', () => {
  it('packs message values into one buffer of their own and unpacks them unchanged, nulls included', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }), { maxLength: 50 }), (raw) => {
        const values = raw.map((v) => (v === null ? null : Buffer.from(v)));
        const packed = packValues(values);
        expect(packed.lengths.length).toBe(values.length);
        expect(unpackValues(structuredClone(packed)).map((v) => (v === null ? null : [...v]))).toEqual(values.map((v) => (v === null ? null : [...v])));
      }),
    );
  });

  it('does not carry the rest of a shared slab: a pooled Buffer slice packs to its own bytes only', () => {
    const slab = Buffer.alloc(8192, 0x41);
    const packed = packValues([slab.subarray(10, 13), null, Buffer.from('{}')]);
    expect(packed.bytes.byteLength).toBe(5);
    expect(unpackValues(packed).map((v) => v?.toString('latin1') ?? null)).toEqual(['AAA', null, '{}']);
  });

  it('gives the rows back their Buffers after a structured clone', () => {
    const row = { prev_hash: Buffer.alloc(32, 1), hash: Buffer.alloc(32, 2), pii: Buffer.from('sealed'), timestamp: new Date(0) } as unknown as StoredAuditRow;
    const [back] = rowsFromWorker(structuredClone([row]));
    expect(Buffer.isBuffer(back!.hash) && Buffer.isBuffer(back!.prev_hash) && Buffer.isBuffer(back!.pii)).toBe(true);
    expect(back!.hash.toString('hex')).toBe(row.hash.toString('hex'));
    expect(back!.pii!.toString()).toBe('sealed');
    expect(back!.timestamp).toEqual(new Date(0));
  });
});
