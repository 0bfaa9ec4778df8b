import { createHash, randomBytes } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const API_KEY_RANDOM_LENGTH = 32;

/** n base62 characters from the CSPRNG, by rejection sampling (no modulo bias). */
export function randomBase62(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === n) break;
    }
  }
  return out;
}

export function generateApiKey(prefix: string): string {
  return prefix + randomBase62(API_KEY_RANDOM_LENGTH);
}

/** Only this is stored. A 190-bit random secret needs no slow hash: SHA-256 is preimage-safe here. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function looksLikeApiKey(candidate: string, prefix: string): boolean {
  if (candidate.length !== prefix.length + API_KEY_RANDOM_LENGTH || !candidate.startsWith(prefix)) return false;
  for (let i = prefix.length; i < candidate.length; i++) {
    const c = candidate.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!ok) return false;
  }
  return true;
}

export function newApiKeyId(): string {
  return `ak_${randomBase62(20)}`;
}
