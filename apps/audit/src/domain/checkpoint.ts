import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';

/** A signed statement "chain P had hash H at position N, recorded at T" (ADR 0403). */
export interface Checkpoint {
  chain_partition: number;
  chain_seq: number;
  hash: Buffer;
  row_timestamp: Date;
  signed_at: Date;
  key_id: string;
  signature: Buffer;
}

export type UnsignedCheckpoint = Omit<Checkpoint, 'signature' | 'key_id'>;

/** What is signed: RFC 8785 canonical JSON, so any verifier with the public key can check it. */
export function checkpointPayload(c: UnsignedCheckpoint & { key_id: string }): Buffer {
  return Buffer.from(
    canonicalize({
      v: 1,
      chain_partition: c.chain_partition,
      chain_seq: c.chain_seq,
      hash: c.hash.toString('hex'),
      row_timestamp: c.row_timestamp.toISOString(),
      signed_at: c.signed_at.toISOString(),
      key_id: c.key_id,
    }) ?? '',
    'utf8',
  );
}

export interface CheckpointSigner {
  readonly keyId: string;
  /** SPKI PEM of the verification key (publishable to auditors). */
  readonly publicKeyPem: string;
  sign(c: UnsignedCheckpoint): Checkpoint;
  verify(c: Checkpoint): boolean;
}

/** Key id: the first 16 hex digits of SHA-256 over the SPKI DER of the public key. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** An Ed25519 signer from a PKCS#8 PEM private key (AUDIT_CHECKPOINT_KEY / _FILE). Throws on another key type. */
export function ed25519Signer(privateKeyPem: string): CheckpointSigner {
  const privateKey = createPrivateKey(privateKeyPem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the checkpoint key must be an Ed25519 private key');
  const publicKey = createPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  return {
    keyId,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sign(c) {
      const withKey = { ...c, key_id: keyId };
      return { ...withKey, signature: sign(null, checkpointPayload(withKey), privateKey) };
    },
    verify(c) {
      if (c.key_id !== keyId) return false;
      try {
        return verify(null, checkpointPayload(c), publicKey, c.signature);
      } catch {
        return false;
      }
    },
  };
}
