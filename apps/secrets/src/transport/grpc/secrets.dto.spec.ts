import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '@soma/contracts';
import { decodeInput } from '@soma/service-runtime';
import { decodeNameRequest, NameDto } from './secrets.dto.js';

function outcome(decode: () => NameDto): { name: string } | { violations: string[] } {
  try {
    return { name: decode().name };
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError);
    return { violations: [...(e as InvalidInputError).violations].sort() };
  }
}

describe('decodeNameRequest (hand-written NameDto for the hot GetSecret path)', () => {
  const payloads: unknown[] = [
    { name: 'llm/openai' },
    { name: '' },
    { name: 'x'.repeat(256) },
    { name: 'x'.repeat(257) },
    {},
    { name: 42 },
    { name: null },
    { name: ['a'] },
    { name: 'a', extra: 1 },
    { extra: 1, other: 'x' },
    null,
    'name',
    ['name'],
    42,
  ];

  it.each(payloads.map((p) => [JSON.stringify(p), p]))('accepts and refuses exactly what decodeInput(NameDto) does: %s', (_label, payload) => {
    expect(outcome(() => decodeNameRequest(payload))).toEqual(outcome(() => decodeInput(NameDto, payload)));
  });

  it('returns a NameDto', () => {
    expect(decodeNameRequest({ name: 'a' })).toBeInstanceOf(NameDto);
  });
});
