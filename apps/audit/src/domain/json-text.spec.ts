import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonString, jsonUnique } from './json-text.js';

describe('jsonString', () => {
  it('is JSON.stringify of the string, the first time and from the memo', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('"', '\\', '\u0000', '\u2028', 'a\nb', '\ud800')), (s) => {
        expect(jsonString(s)).toBe(JSON.stringify(s));
        expect(jsonString(s)).toBe(JSON.stringify(s));
        expect(jsonUnique(s)).toBe(JSON.stringify(s));
      }),
    );
  });

  it('writes null as null', () => {
    expect(jsonString(null)).toBe('null');
    expect(jsonUnique(null)).toBe('null');
  });

  it('stays exact past its bound (cleared when full) and for long strings (never held)', () => {
    for (let i = 0; i < 25_000; i++) expect(jsonString(`tenant-${i}"`)).toBe(JSON.stringify(`tenant-${i}"`));
    const long = 'x"'.repeat(200);
    expect(jsonString(long)).toBe(JSON.stringify(long));
    expect(jsonString('tenant-3"')).toBe(JSON.stringify('tenant-3"'));
  });
});
