import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JwsRejected, JwsVerifier } from './jws-verifier.js';

/** The former check (decode, re-encode, compare): the reference the direct check must agree with. */
function canonicalByReencoding(segment: string): boolean {
  if (!/^[A-Za-z0-9_-]*$/.test(segment) || segment.length % 4 === 1) return false;
  return Buffer.from(segment, 'base64url').toString('base64url') === segment;
}

const verifier = new JwsVerifier({ algorithms: ['HS256'], maxBytes: 65_536 });
const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'k1' })).toString('base64url');
/** inspect() stops with 'unknown_kid' once the form checks passed, 'malformed' when a segment is refused. */
function accepted(segment: string): boolean {
  try {
    verifier.inspect(`${header}.${segment}.${segment || 'AA'}`, () => undefined);
    return true;
  } catch (e) {
    if (e instanceof JwsRejected && e.reason === 'unknown_kid') return true;
    if (e instanceof JwsRejected && e.reason === 'malformed') return false;
    throw e;
  }
}

describe('JwsVerifier canonical base64url check', () => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ';
  it('refuses exactly what decoding and re-encoding refused', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 12 }).map((a) => a.join('')), (seg) => {
        expect(accepted(seg)).toBe(canonicalByReencoding(seg));
      }),
      { numRuns: 5000 },
    );
  });

  it('every last character after 2 and 3 leftover characters', () => {
    for (const ch of alphabet) {
      for (const seg of [`A${ch}`, `AA${ch}`, `AAAAA${ch}`, `AAAAAA${ch}`, `AAA${ch}`]) expect(accepted(seg)).toBe(canonicalByReencoding(seg));
    }
  });
});
