import { createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { JwsVerifier, type VerificationKey } from '../../apps/auth/src/domain/jws-verifier.js';

/** The vectors live beside the repo (`../shared/vectors/wycheproof`), falling back to /work/shared. */
function vectorsDir(): string {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const candidates = [resolve(repoRoot, '../shared/vectors/wycheproof'), '/work/shared/vectors/wycheproof'];
  const found = candidates.find((c) => existsSync(join(c, 'json_web_signature_test.json')));
  if (!found) throw new Error(`Wycheproof vectors not found in ${candidates.join(', ')}`);
  return found;
}

interface Case { tcId: number; comment: string; jws: string; result: 'valid' | 'invalid' | 'acceptable'; flags: string[] }
interface Group { public?: JsonWebKey & { alg?: string; kid?: string; use?: string; key_ops?: string[] }; private?: JsonWebKey & { alg?: string; kid?: string; use?: string; key_ops?: string[]; k?: string }; tests: Case[] }

/** Algorithms the verifier implements (the service pins one of HS256/RS256; the JWS layer is generic). */
const SUPPORTED = new Set(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']);

/**
 * The verification key of a group, imported the way the service imports keys: once, bound to its
 * declared algorithm. A key declared for encryption (use=enc, key_ops without verify) or without an
 * algorithm is no verification key at all.
 */
function keyOf(group: Group): VerificationKey | undefined {
  const jwk = group.public ?? group.private;
  if (!jwk || typeof jwk.alg !== 'string') return undefined;
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes('verify')) return undefined;
  const alg = jwk.alg;
  if (!SUPPORTED.has(alg)) return undefined;
  let key: KeyObject;
  if (jwk.kty === 'oct' || (alg.startsWith('HS') && group.private?.k)) {
    key = createSecretKey(Buffer.from(String(group.private?.k ?? (jwk as { k?: string }).k), 'base64url'));
  } else {
    const { alg: _a, kid: _k, use: _u, key_ops: _o, d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk as Record<string, unknown>;
    key = createPublicKey({ key: { kty: (pub['kty'] as string) ?? (alg.startsWith('ES') ? 'EC' : 'RSA'), ...pub } as JsonWebKey, format: 'jwk' });
  }
  return { kid: String(jwk.kid ?? ''), alg, key };
}

const file = JSON.parse(readFileSync(join(vectorsDir(), 'json_web_signature_test.json'), 'utf8')) as { testGroups: Group[] };
const groups = file.testGroups;

/**
 * Vectors known to be defective upstream (other implementations skip the same comments):
 * - invalidBase64Padding / invalidBase64PaddingInPayload: marked invalid, but byte-identical to the valid
 *   tc 357 (the padding was lost upstream); no verifier can reject one and accept the other.
 * - InvalidCharacterInsertedInHeader / …Payload: marked valid, but contain '?', which RFC 7515 §2
 *   base64url does not allow; accepting them would mean a lenient decoder. We reject them.
 * - Figure20 / Figure27 (RFC 7520): the key declares an algorithm the token does not use (PS256 for a
 *   PS384 token; the non-existent "ES521" for an ES512 token); a verifier that binds a key to its
 *   declared algorithm (as ours does) rejects them.
 * They are not skipped: each has its own test asserting what our verifier does and why.
 */
const DEFECTIVE = new Map<string, 'identical-to-valid' | 'non-base64url' | 'key-alg-mismatch'>([
  ['invalidBase64Padding', 'identical-to-valid'],
  ['invalidBase64PaddingInPayload', 'identical-to-valid'],
  ['InvalidCharacterInsertedInHeader', 'non-base64url'],
  ['InvalidCharacterInsertedInPayload', 'non-base64url'],
  ['Figure20', 'key-alg-mismatch'],
  ['Figure27', 'key-alg-mismatch'],
]);

describe('Wycheproof JSON Web Signature vectors through the auth JWS verifier', () => {
  const counts = { accepted: 0, rejected: 0, unsupportedRefused: 0, defective: 0 };
  const validJws = new Set(groups.flatMap((g) => g.tests.filter((t) => t.result === 'valid').map((t) => t.jws)));
  for (const [gi, group] of groups.entries()) {
    const key = keyOf(group);
    const alg = key?.alg ?? (group.public ?? group.private)?.alg ?? 'none';
    const verifier = new JwsVerifier({ algorithms: key ? [key.alg] : [], maxBytes: 64 * 1024 });
    // Wycheproof kids in tokens match the key's kid; a key without kid matches any kid (lookup by group).
    const lookup = (kid: string) => (key && (key.kid === '' || key.kid === kid) ? key : undefined);
    describe(`group ${gi} (${alg}, ${group.tests.length} cases)`, () => {
      for (const tc of group.tests) {
        const defect = DEFECTIVE.get(tc.comment);
        if (defect) {
          it(`tc ${tc.tcId} ${tc.result} — ${tc.comment} (defective upstream: ${defect})`, async () => {
            counts.defective++;
            if (defect === 'identical-to-valid') {
              expect(validJws.has(tc.jws)).toBe(true);
              await expect(verifier.verify(tc.jws, lookup)).resolves.toBeDefined();
            } else {
              if (defect === 'non-base64url') expect(tc.jws).toMatch(/[^A-Za-z0-9_.-]/);
              await expect(verifier.verify(tc.jws, lookup)).rejects.toThrow();
            }
          });
          continue;
        }
        if (tc.result === 'valid' && !key) {
          // A valid case whose key this verifier does not take as a verification key (unsupported alg).
          it(`tc ${tc.tcId} valid ${alg} (unsupported algorithm: refused) — ${tc.comment}`, async () => {
            counts.unsupportedRefused++;
            await expect(verifier.verify(tc.jws, lookup)).rejects.toThrow();
          });
          continue;
        }
        it(`tc ${tc.tcId} ${tc.result} — ${tc.comment}`, async () => {
          if (tc.result === 'valid') {
            const out = await verifier.verify(tc.jws, lookup);
            expect(out.header.alg).toBe(alg);
            counts.accepted++;
          } else {
            await expect(verifier.verify(tc.jws, lookup)).rejects.toThrow();
            counts.rejected++;
          }
        });
      }
    });
  }
  it('covered every case of the file', () => {
    const total = groups.reduce((n, g) => n + g.tests.length, 0);
    expect(total).toBe(401);
    expect(counts.accepted + counts.rejected + counts.unsupportedRefused + counts.defective).toBe(total);
    // Every HS256 and RS256 case (the algorithms the service signs with) was decided on its merits.
    expect(counts.unsupportedRefused).toBe(0);
  });
});
