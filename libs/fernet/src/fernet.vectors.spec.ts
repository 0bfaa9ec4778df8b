import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Fernet, InvalidTokenError, MultiFernet } from './fernet.js';

/** The spec's vectors, shared beside the repository (../shared from the repo root). */
function vectorsDir(): string {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const candidates = [join(repoRoot, '../shared/vectors/fernet'), '/work/shared/vectors/fernet'];
  const found = candidates.find((c) => existsSync(join(c, 'generate.json')));
  if (!found) throw new Error(`Fernet vectors not found in ${candidates.join(' or ')}`);
  return found;
}

interface GenerateVector { token: string; now: string; iv: number[]; src: string; secret: string }
interface VerifyVector { token: string; now: string; ttl_sec: number; src: string; secret: string }
interface InvalidVector { desc: string; token: string; now: string; ttl_sec: number; secret: string }

const load = <T>(name: string): T[] => JSON.parse(readFileSync(join(vectorsDir(), name), 'utf8')) as T[];
const seconds = (rfc3339: string): number => Math.floor(Date.parse(rfc3339) / 1000);

const generate = load<GenerateVector>('generate.json');
const verify = load<VerifyVector>('verify.json');
const invalid = load<InvalidVector>('invalid.json');

describe('Fernet spec vectors', () => {
  it('has every vector file populated', () => {
    expect(generate.length).toBeGreaterThan(0);
    expect(verify.length).toBeGreaterThan(0);
    expect(invalid.length).toBeGreaterThanOrEqual(8);
  });

  it.each(generate.map((v, i) => [i, v] as const))('generate.json #%i is reproduced byte for byte', (_i, v) => {
    const token = new Fernet(v.secret).encrypt(v.src, { currentTime: seconds(v.now), iv: Buffer.from(v.iv) });
    expect(token).toBe(v.token);
    expect(new MultiFernet([Fernet.generateKey(), v.secret]).decrypt(token).toString('utf8')).toBe(v.src);
  });

  it.each(verify.map((v, i) => [i, v] as const))('verify.json #%i decrypts within its TTL', (_i, v) => {
    const plaintext = new Fernet(v.secret).decrypt(v.token, { ttlSeconds: v.ttl_sec, currentTime: seconds(v.now) });
    expect(plaintext.toString('utf8')).toBe(v.src);
  });

  it.each(invalid.map((v) => [v.desc, v] as const))('invalid.json "%s" is rejected', (_desc, v) => {
    const key = new Fernet(v.secret);
    expect(() => key.decrypt(v.token, { ttlSeconds: v.ttl_sec, currentTime: seconds(v.now) })).toThrow(InvalidTokenError);
    expect(() => new MultiFernet([Fernet.generateKey(), key]).decrypt(v.token, { ttlSeconds: v.ttl_sec, currentTime: seconds(v.now) })).toThrow(InvalidTokenError);
  });

  it('rejects each invalid vector for the reason its description gives', () => {
    const reasons = Object.fromEntries(
      invalid.map((v) => {
        try {
          new Fernet(v.secret).decrypt(v.token, { ttlSeconds: v.ttl_sec, currentTime: seconds(v.now) });
          return [v.desc, 'accepted'];
        } catch (e) {
          return [v.desc, (e as InvalidTokenError).reason];
        }
      }),
    );
    expect(reasons).toMatchObject({
      'incorrect mac': 'bad_signature',
      'too short': 'malformed',
      'invalid base64': 'malformed',
      'payload size not multiple of block size': 'malformed',
      'payload padding error': 'bad_padding',
      'far-future TS (unacceptable clock skew)': 'future_timestamp',
      'expired TTL': 'expired',
      'incorrect IV (causes padding error)': 'bad_padding',
    });
  });
});
