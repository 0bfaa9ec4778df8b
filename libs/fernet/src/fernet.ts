import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Fernet (spec version 0x80) on Node's own crypto, interoperable with Python's `cryptography`:
 *
 *   token = base64url( 0x80 ‖ timestamp(u64 BE, seconds) ‖ iv(16) ‖ AES-128-CBC(PKCS7) ‖ HMAC-SHA256 )
 *
 * with the HMAC over everything before it, keyed by the first half of the 32-byte key; the second
 * half is the AES key. Tokens are base64url *with* `=` padding, as Python emits them.
 */

const VERSION = 0x80;
const HEADER_LENGTH = 1 + 8 + 16;
const HMAC_LENGTH = 32;
const BLOCK = 16;
/** Python's `_MAX_CLOCK_SKEW`: a token may claim a time this far ahead of ours (checked with a TTL). */
export const MAX_CLOCK_SKEW_SECONDS = 60;
const BASE64URL_PADDED = /^[A-Za-z0-9_-]*={0,2}$/;

/** Why a token was refused. One error class, as in Python; the reason is for diagnostics and tests. */
export type InvalidTokenReason = 'malformed' | 'bad_version' | 'bad_signature' | 'expired' | 'future_timestamp' | 'bad_padding' | 'no_key';

/** The token is not a valid Fernet token for these keys (or is outside its TTL). Never carries key or plaintext. */
export class InvalidTokenError extends Error {
  constructor(readonly reason: InvalidTokenReason) {
    super(`invalid Fernet token (${reason})`);
    this.name = 'InvalidTokenError';
  }
}

/** A Fernet key that is not base64url of exactly 32 bytes. The message never contains the key. */
export class FernetKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FernetKeyError';
  }
}

/** base64url with `=` padding (Python's `urlsafe_b64encode`). */
export function base64UrlEncode(bytes: Buffer): string {
  const unpadded = bytes.toString('base64url');
  return unpadded + '='.repeat((4 - (unpadded.length % 4)) % 4);
}

/**
 * Strict base64url decoding: URL-safe alphabet only, padded to a multiple of four, canonical
 * (re-encoding gives the same text). Anything else is null.
 */
export function base64UrlDecodeStrict(text: string): Buffer | null {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64URL_PADDED.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return base64UrlEncode(bytes) === text ? bytes : null;
}

function decodeKey(key: string | Buffer): Buffer {
  if (Buffer.isBuffer(key)) {
    if (key.length !== 32) throw new FernetKeyError(`a Fernet key must be 32 bytes; got ${key.length}`);
    return Buffer.from(key);
  }
  const text = key.trim();
  // Python emits the 44-character padded form; the unpadded 43-character form is accepted too.
  const padded = text.length === 43 ? `${text}=` : text;
  const bytes = base64UrlDecodeStrict(padded);
  if (!bytes) throw new FernetKeyError('a Fernet key must be URL-safe base64 (44 characters, as Fernet.generate_key() prints)');
  if (bytes.length !== 32) throw new FernetKeyError(`a Fernet key must decode to 32 bytes; got ${bytes.length}`);
  return bytes;
}

export interface EncryptOptions {
  /** Seconds since the epoch to record in the token; now by default (tests inject it). */
  currentTime?: number;
  /** The 16-byte IV; random by default (only the spec's vectors inject it). */
  iv?: Buffer;
}

export interface DecryptOptions {
  /** Refuse tokens older than this many seconds (and more than 60 s in the future), as Python's `ttl`. */
  ttlSeconds?: number;
  /** Seconds since the epoch to judge the TTL against; now by default. */
  currentTime?: number;
}

interface TokenParts {
  timestamp: bigint;
  signed: Buffer;
  signature: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
}

/** Structural parse without any key: what every verification starts from. */
function parseToken(token: string): TokenParts {
  if (typeof token !== 'string') throw new InvalidTokenError('malformed');
  const data = base64UrlDecodeStrict(token);
  if (!data) throw new InvalidTokenError('malformed');
  if (data[0] !== VERSION) throw new InvalidTokenError('bad_version');
  // PKCS7 always adds at least one block, so the shortest token carries one ciphertext block.
  if (data.length < HEADER_LENGTH + BLOCK + HMAC_LENGTH) throw new InvalidTokenError('malformed');
  const ciphertextLength = data.length - HEADER_LENGTH - HMAC_LENGTH;
  if (ciphertextLength % BLOCK !== 0) throw new InvalidTokenError('malformed');
  return {
    timestamp: data.readBigUInt64BE(1),
    signed: data.subarray(0, data.length - HMAC_LENGTH),
    signature: data.subarray(data.length - HMAC_LENGTH),
    iv: data.subarray(9, HEADER_LENGTH),
    ciphertext: data.subarray(HEADER_LENGTH, data.length - HMAC_LENGTH),
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function checkTime(timestamp: bigint, options: DecryptOptions): void {
  if (options.ttlSeconds === undefined) return;
  const now = BigInt(Math.floor(options.currentTime ?? nowSeconds()));
  if (timestamp + BigInt(Math.floor(options.ttlSeconds)) < now) throw new InvalidTokenError('expired');
  if (now + BigInt(MAX_CLOCK_SKEW_SECONDS) < timestamp) throw new InvalidTokenError('future_timestamp');
}

/** One Fernet key: 16 bytes of HMAC-SHA256 signing key, then 16 bytes of AES-128 key. */
export class Fernet {
  private readonly signingKey: Buffer;
  private readonly encryptionKey: Buffer;

  constructor(key: string | Buffer) {
    const bytes = decodeKey(key);
    this.signingKey = bytes.subarray(0, 16);
    this.encryptionKey = bytes.subarray(16, 32);
  }

  /**
   * A short public identifier of this key (16 hex characters): an HMAC of a fixed label under the
   * signing key, so it reveals nothing about the key yet tells operators which key a token uses.
   */
  fingerprint(): string {
    return createHmac('sha256', this.signingKey).update('soma-fernet-key-fingerprint/v1').digest('hex').slice(0, 16);
  }

  /** A new random key, in the form Python's `Fernet.generate_key()` prints. */
  static generateKey(): string {
    return base64UrlEncode(randomBytes(32));
  }

  encrypt(plaintext: Buffer | string, options: EncryptOptions = {}): string {
    const iv = options.iv ?? randomBytes(16);
    if (iv.length !== 16) throw new RangeError('the Fernet IV is 16 bytes');
    return this.encryptFromParts(Buffer.from(plaintext), BigInt(Math.floor(options.currentTime ?? nowSeconds())), iv);
  }

  /** Internal: build a token with an explicit timestamp (MultiFernet.rotate keeps the original one). */
  encryptFromParts(plaintext: Buffer, timestamp: bigint, iv: Buffer): string {
    const cipher = createCipheriv('aes-128-cbc', this.encryptionKey, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const header = Buffer.alloc(9);
    header[0] = VERSION;
    header.writeBigUInt64BE(timestamp, 1);
    const signed = Buffer.concat([header, iv, ciphertext]);
    const mac = createHmac('sha256', this.signingKey).update(signed).digest();
    return base64UrlEncode(Buffer.concat([signed, mac]));
  }

  decrypt(token: string, options: DecryptOptions = {}): Buffer {
    const parts = parseToken(token);
    return this.decryptParts(parts, options);
  }

  /** The time recorded in the token (seconds), after verifying its signature. */
  extractTimestamp(token: string): number {
    const parts = parseToken(token);
    this.verifySignature(parts);
    return Number(parts.timestamp);
  }

  /** Whether this key signed the token (no decryption, no time check). */
  signed(token: string): boolean {
    try {
      this.verifySignature(parseToken(token));
      return true;
    } catch {
      return false;
    }
  }

  /** @internal shared with MultiFernet so a token is parsed once whatever the number of keys. */
  decryptParts(parts: TokenParts, options: DecryptOptions): Buffer {
    // The signature first: nothing about an unauthenticated token (time, padding) is reported.
    this.verifySignature(parts);
    checkTime(parts.timestamp, options);
    try {
      const decipher = createDecipheriv('aes-128-cbc', this.encryptionKey, parts.iv);
      return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
    } catch {
      throw new InvalidTokenError('bad_padding');
    }
  }

  private verifySignature(parts: TokenParts): void {
    const expected = createHmac('sha256', this.signingKey).update(parts.signed).digest();
    if (!timingSafeEqual(expected, parts.signature)) throw new InvalidTokenError('bad_signature');
  }
}

/** The result of a decryption by a MultiFernet: which key (0 = newest) opened the token. */
export interface MultiDecryptResult {
  plaintext: Buffer;
  keyIndex: number;
  timestamp: number;
}

/**
 * Several keys for rotation, newest first: encrypt with the first, decrypt with any, and
 * `rotate(token)` re-encrypts under the first key keeping the token's original timestamp
 * (Python's MultiFernet semantics).
 */
export class MultiFernet {
  readonly keys: readonly Fernet[];

  constructor(keys: readonly (Fernet | string | Buffer)[]) {
    if (keys.length === 0) throw new FernetKeyError('MultiFernet needs at least one key');
    this.keys = keys.map((k) => (k instanceof Fernet ? k : new Fernet(k)));
  }

  get primary(): Fernet {
    return this.keys[0]!;
  }

  encrypt(plaintext: Buffer | string, options: EncryptOptions = {}): string {
    return this.primary.encrypt(plaintext, options);
  }

  decrypt(token: string, options: DecryptOptions = {}): Buffer {
    return this.decryptWithIndex(token, options).plaintext;
  }

  decryptWithIndex(token: string, options: DecryptOptions = {}): MultiDecryptResult {
    const parts = parseToken(token);
    for (const [keyIndex, key] of this.keys.entries()) {
      try {
        return { plaintext: key.decryptParts(parts, options), keyIndex, timestamp: Number(parts.timestamp) };
      } catch (e) {
        // Only a wrong key moves on to the next one; expiry or padding errors are final.
        if (!(e instanceof InvalidTokenError) || e.reason !== 'bad_signature') throw e;
      }
    }
    throw new InvalidTokenError('bad_signature');
  }

  /** Re-encrypt under the newest key, keeping the original timestamp; no TTL applies. */
  rotate(token: string, iv: Buffer = randomBytes(16)): string {
    const parts = parseToken(token);
    const { plaintext } = this.decryptWithIndex(token);
    return this.primary.encryptFromParts(plaintext, parts.timestamp, iv);
  }
}

/**
 * Parse a key list as configured (`FERNET_KEY=newest,older,…`). Errors name the position of the
 * bad entry, never its content.
 */
export function parseFernetKeyList(text: string): MultiFernet {
  const entries = text.split(',').map((s) => s.trim());
  if (entries.length === 0 || entries.every((e) => e === '')) throw new FernetKeyError('no key given');
  const keys = entries.map((entry, i) => {
    if (entry === '') throw new FernetKeyError(`entry ${i + 1} of the list is empty`);
    try {
      return new Fernet(entry);
    } catch (e) {
      throw new FernetKeyError(`entry ${i + 1} of ${entries.length}: ${(e as Error).message}`);
    }
  });
  return new MultiFernet(keys);
}
