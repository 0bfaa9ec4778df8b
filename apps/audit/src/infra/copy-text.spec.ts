import { describe, expect, it } from 'vitest';
import { copyText, copyTextLine } from './copy-text.js';

describe('COPY text format', () => {
  it('escapes backslash, newline, carriage return and tab, and nothing else', () => {
    expect(copyText('plain é 😀 "quoted" \u0001')).toBe('plain é 😀 "quoted" \u0001');
    expect(copyText('a\\b\nc\rd\te')).toBe('a\\\\b\\nc\\rd\\te');
    expect(copyText('{"x":"line\\nbreak"}')).toBe('{"x":"line\\\\nbreak"}');
  });

  it('writes NULL, numbers, timestamps and bytea in their input forms', () => {
    expect(copyText(null)).toBe('\\N');
    expect(copyText('\\N')).toBe('\\\\N'); // the text "\N" is not NULL
    expect(copyText(42)).toBe('42');
    expect(copyText(new Date(Date.UTC(2026, 11, 4, 1, 2, 3, 4)))).toBe('2026-12-04T01:02:03.004Z');
    expect(copyText(Buffer.from([0, 255, 16]))).toBe('\\\\x00ff10');
  });

  it('joins a row with tabs and ends it with a newline', () => {
    expect(copyTextLine(['a', null, 1])).toBe('a\t\\N\t1\n');
  });
});
