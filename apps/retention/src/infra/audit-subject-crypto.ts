import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';

/**
 * The read side of the audit log's crypto-shredding scheme (ADR 0401), implemented here because a
 * service never imports another: KEK = HKDF-SHA256(AUDIT_KEK, salt "soma-audit-kek", info "v1");
 * blobs are iv(12) ‖ ciphertext ‖ tag(16); subject keys are bound to (tenant, user_id) by their AAD,
 * personal fields to the event id. test/retention checks interoperability with the audit service's code.
 */
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function deriveAuditKek(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('soma-audit-kek'), Buffer.from('v1'), 32));
}

function open(key: Buffer, blob: Buffer, aad: Buffer): Buffer {
  if (blob.length < IV_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
  return Buffer.concat([decipher.update(blob.subarray(IV_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
}

export function unwrapSubjectKey(kek: Buffer, tenant: string, userId: string, wrapped: Buffer): Buffer {
  const key = open(kek, wrapped, Buffer.from(`${tenant}\u0000${userId}`, 'utf8'));
  if (key.length !== 32) throw new Error('unwrapped subject key has the wrong length');
  return key;
}

export function subjectPseudonym(subjectKey: Buffer): string {
  return createHmac('sha256', subjectKey).update('pseudonym').digest('hex');
}

export function decryptPersonalFields(subjectKey: Buffer, eventId: string, blob: Buffer): Record<string, unknown> {
  const parsed: unknown = JSON.parse(open(subjectKey, blob, Buffer.from(eventId, 'utf8')).toString('utf8'));
  return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
}
