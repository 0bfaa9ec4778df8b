import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64UrlDecodeStrict, base64UrlEncode, Fernet, FernetKeyError, InvalidTokenError, MultiFernet, parseFernetKeyList } from './fernet.js';

const reasonOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    return e instanceof InvalidTokenError ? e.reason : `other:${(e as Error).name}`;
  }
};

describe('Fernet', () => {
  it('round-trips any bytes, including empty and multi-block plaintexts', () => {
    const f = new Fernet(Fernet.generateKey());
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const token = f.encrypt(Buffer.from(bytes));
        expect(token.length % 4).toBe(0);
        expect(f.decrypt(token).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('generates 44-character padded URL-safe keys of 32 random bytes', () => {
    const key = Fernet.generateKey();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(base64UrlDecodeStrict(key)?.length).toBe(32);
    expect(Fernet.generateKey()).not.toBe(key);
  });

  it('accepts the unpadded key form and refuses anything but 32 URL-safe bytes', () => {
    const key = Fernet.generateKey();
    expect(() => new Fernet(key.slice(0, 43))).not.toThrow();
    const bad = [
      '', 'short', key.slice(0, 40), `${key}AAAA`, key.replace(/[-_]/g, '+').replace(/^./, '+'),
      base64UrlEncode(randomBytes(16)), base64UrlEncode(randomBytes(33)), `${key.slice(0, 42)}!=`,
    ];
    for (const b of bad) expect(() => new Fernet(b), b).toThrow(FernetKeyError);
    expect(() => new Fernet(randomBytes(31))).toThrow(FernetKeyError);
  });

  it('never puts the key in a key error', () => {
    const almost = `${Fernet.generateKey().slice(0, 42)}$=`;
    try {
      new Fernet(almost);
    } catch (e) {
      expect((e as Error).message).not.toContain(almost.slice(0, 20));
    }
  });

  it('refuses tampering anywhere in the token', () => {
    const f = new Fernet(Fernet.generateKey());
    const token = f.encrypt('sk-soma-the-plaintext-value');
    const raw = base64UrlDecodeStrict(token)!;
    for (let i = 1; i < raw.length; i++) {
      const copy = Buffer.from(raw);
      copy[i] = copy[i]! ^ 0x01;
      expect(() => f.decrypt(base64UrlEncode(copy))).toThrow(InvalidTokenError);
    }
    const wrongVersion = Buffer.from(raw);
    wrongVersion[0] = 0x81;
    expect(reasonOf(() => f.decrypt(base64UrlEncode(wrongVersion)))).toBe('bad_version');
  });

  it('parses strictly: no unpadded, non-canonical, standard-alphabet or whitespace-wrapped tokens', () => {
    const f = new Fernet(Fernet.generateKey());
    const token = f.encrypt('x'.repeat(20));
    expect(token.endsWith('=')).toBe(true);
    expect(reasonOf(() => f.decrypt(token.replace(/=+$/, '')))).toBe('malformed');
    expect(reasonOf(() => f.decrypt(` ${token}`))).toBe('malformed');
    expect(reasonOf(() => f.decrypt(`${token}\n`))).toBe('malformed');
    let withUrlChars = token;
    while (!/[-_]/.test(withUrlChars)) withUrlChars = f.encrypt('x'.repeat(20));
    expect(reasonOf(() => f.decrypt(withUrlChars.replace(/-/g, '+').replace(/_/g, '/')))).toBe('malformed');
    expect(reasonOf(() => f.decrypt(''))).toBe('malformed');
    expect(reasonOf(() => f.decrypt(undefined as unknown as string))).toBe('malformed');
    // Non-canonical: the last character's unused bits set.
    const raw = base64UrlDecodeStrict(token)!;
    const canonical = base64UrlEncode(raw);
    const lastData = canonical.replace(/=+$/, '');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const idx = alphabet.indexOf(lastData.at(-1)!);
    const tweaked = `${lastData.slice(0, -1)}${alphabet[idx + 1]}${canonical.slice(lastData.length)}`;
    expect(reasonOf(() => f.decrypt(tweaked))).toBe('malformed');
  });

  it('applies the TTL and the 60 s clock skew only when a TTL is given (as Python does)', () => {
    const f = new Fernet(Fernet.generateKey());
    const token = f.encrypt('v', { currentTime: 1_000_000 });
    expect(f.decrypt(token, { ttlSeconds: 10, currentTime: 1_000_010 }).toString()).toBe('v');
    expect(reasonOf(() => f.decrypt(token, { ttlSeconds: 10, currentTime: 1_000_011 }))).toBe('expired');
    expect(f.decrypt(token, { ttlSeconds: 10, currentTime: 1_000_000 - 60 }).toString()).toBe('v');
    expect(reasonOf(() => f.decrypt(token, { ttlSeconds: 10, currentTime: 1_000_000 - 61 }))).toBe('future_timestamp');
    expect(f.decrypt(token, { currentTime: 5 }).toString()).toBe('v');
    expect(f.extractTimestamp(token)).toBe(1_000_000);
  });

  it('reports a bad signature before anything the unauthenticated token claims', () => {
    const token = new Fernet(Fernet.generateKey()).encrypt('v', { currentTime: 1 });
    expect(reasonOf(() => new Fernet(Fernet.generateKey()).decrypt(token, { ttlSeconds: 1, currentTime: 1_000_000 }))).toBe('bad_signature');
  });
});

describe('Fernet.fingerprint', () => {
  it('is stable per key, differs between keys and contains no key material', () => {
    const key = Fernet.generateKey();
    const fp = new Fernet(key).fingerprint();
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(new Fernet(key).fingerprint()).toBe(fp);
    expect(new Fernet(Fernet.generateKey()).fingerprint()).not.toBe(fp);
    expect(base64UrlDecodeStrict(key)!.toString('hex')).not.toContain(fp);
  });
});

describe('MultiFernet', () => {
  const [k1, k2, k3] = [Fernet.generateKey(), Fernet.generateKey(), Fernet.generateKey()];

  it('encrypts with the first key and decrypts with any', () => {
    const old = new Fernet(k2).encrypt('old');
    const mf = new MultiFernet([k1, k2]);
    expect(mf.decrypt(old).toString()).toBe('old');
    expect(mf.decryptWithIndex(old).keyIndex).toBe(1);
    const fresh = mf.encrypt('new');
    expect(new Fernet(k1).decrypt(fresh).toString()).toBe('new');
    expect(() => new Fernet(k2).decrypt(fresh)).toThrow(InvalidTokenError);
    expect(() => new MultiFernet([k3]).decrypt(fresh)).toThrow(InvalidTokenError);
  });

  it('rotate() re-encrypts under the newest key and keeps the original timestamp', () => {
    const token = new Fernet(k2).encrypt('value', { currentTime: 1234 });
    const rotated = new MultiFernet([k1, k2]).rotate(token);
    expect(rotated).not.toBe(token);
    expect(new Fernet(k1).decrypt(rotated).toString()).toBe('value');
    expect(new Fernet(k1).extractTimestamp(rotated)).toBe(1234);
    expect(() => new MultiFernet([k3]).rotate(token)).toThrow(InvalidTokenError);
  });

  it('does not try older keys when the newest key says the token expired', () => {
    const token = new Fernet(k1).encrypt('v', { currentTime: 100 });
    const err = reasonOf(() => new MultiFernet([k1, k2]).decrypt(token, { ttlSeconds: 1, currentTime: 200 }));
    expect(err).toBe('expired');
  });

  it('parses FERNET_KEY lists, newest first, naming only the position of a bad entry', () => {
    const mf = parseFernetKeyList(` ${k1} , ${k2}`);
    expect(mf.keys).toHaveLength(2);
    expect(new Fernet(k1).decrypt(mf.encrypt('x')).toString()).toBe('x');
    expect(() => parseFernetKeyList(`${k1},not-a-key`)).toThrow(/entry 2 of 2/);
    expect(() => parseFernetKeyList(`${k1},,${k2}`)).toThrow(/entry 2 of 3 .*empty|entry 2 of the list is empty/);
    expect(() => parseFernetKeyList('')).toThrow(FernetKeyError);
    try {
      parseFernetKeyList(`${k1},${k2.slice(0, 30)}`);
    } catch (e) {
      expect((e as Error).message).not.toContain(k2.slice(0, 30));
      expect((e as Error).message).not.toContain(k1);
    }
  });
});
