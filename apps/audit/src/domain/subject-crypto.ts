import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomFillSync } from 'node:crypto';
import { jsonString } from './json-text.js';

/**
 * Crypto-shredding primitives (ADR 0401): per-subject AES-256 data keys wrapped under the KEK,
 * keyed pseudonyms, and the encrypted personal fields of a row. Every blob is iv(12) ‖ ciphertext ‖ tag(16).
 */
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The 32-byte KEK from the AUDIT_KEK secret (any ≥ 32-byte string): HKDF-SHA256, salt/info fixed. */
export function deriveKek(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('soma-audit-kek'), Buffer.from('v1'), 32));
}

/**
 * Random IVs drawn from a pool refilled 1024 at a time: one CSPRNG call per 1024 rows instead of one per row
 * on the ingest path. Each 12-byte slice is handed out once (random 96-bit GCM nonces, as before).
 */
const IV_POOL_IVS = 1024;
const ivPool = Buffer.alloc(IV_BYTES * IV_POOL_IVS);
let ivNext = IV_POOL_IVS;

/** A view of the next unused IV in the pool: valid until the pool is refilled, so it is used synchronously. */
function nextIv(): Buffer {
  if (ivNext === IV_POOL_IVS) {
    randomFillSync(ivPool);
    ivNext = 0;
  }
  const iv = ivPool.subarray(ivNext * IV_BYTES, (ivNext + 1) * IV_BYTES);
  ivNext += 1;
  return iv;
}

function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = cipher.update(plaintext);
  const rest = cipher.final(); // empty for GCM (a stream mode), kept for form
  // iv, ciphertext and tag copied into the one blob before anything else can draw from the pool.
  return Buffer.concat([iv, ct, rest, cipher.getAuthTag()]);
}

function open(key: Buffer, blob: Buffer, aad: Buffer): Buffer {
  if (blob.length < IV_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
  return Buffer.concat([decipher.update(blob.subarray(IV_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
}

const subjectAad = (tenant: string, userId: string) => Buffer.from(`${tenant}\u0000${userId}`, 'utf8');

export function newSubjectKey(): Buffer {
  return randomBytes(32);
}

/** Wrap a subject key for `audit_subject_keys.key`; bound to (tenant, user_id) so rows cannot be swapped. */
export function wrapSubjectKey(kek: Buffer, tenant: string, userId: string, key: Buffer): Buffer {
  return seal(kek, key, subjectAad(tenant, userId));
}

export function unwrapSubjectKey(kek: Buffer, tenant: string, userId: string, wrapped: Buffer): Buffer {
  const key = open(kek, wrapped, subjectAad(tenant, userId));
  if (key.length !== 32) throw new Error('unwrapped subject key has the wrong length');
  return key;
}

/** The stored `user_id`: hex HMAC-SHA256(subject key, "pseudonym"). Unlinkable once the key is erased. */
const pseudonyms = new WeakMap<Buffer, string>();

export function pseudonymOf(subjectKey: Buffer): string {
  // Memoised per key object: a batch reuses one unwrapped key for all of a subject's events.
  let p = pseudonyms.get(subjectKey);
  if (p === undefined) {
    p = createHmac('sha256', subjectKey).update('pseudonym').digest('hex');
    pseudonyms.set(subjectKey, p);
  }
  return p;
}

export interface PersonalFields {
  user_id: string | null;
  ip_address: string | null;
  user_agent: string | null;
}

/** `pii` column: AES-256-GCM(subject key, canonical JSON of the personal fields), AAD = event id. */
export function encryptPii(subjectKey: Buffer, eventId: string, fields: PersonalFields): Buffer {
  return seal(subjectKey, Buffer.from(personalFieldsJson(fields), 'utf8'), Buffer.from(eventId, 'utf8'));
}

/** RFC 8785 JSON of the three personal fields (fixed keys, in JCS order); the spec checks it against `canonicalize`. */
export function personalFieldsJson(f: PersonalFields): string {
  return `{"ip_address":${jsonString(f.ip_address)},"user_agent":${jsonString(f.user_agent)},"user_id":${jsonString(f.user_id)}}`;
}

export function decryptPii(subjectKey: Buffer, eventId: string, blob: Buffer): PersonalFields {
  return JSON.parse(open(subjectKey, blob, Buffer.from(eventId, 'utf8')).toString('utf8')) as PersonalFields;
}
