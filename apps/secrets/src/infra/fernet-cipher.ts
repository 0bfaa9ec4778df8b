import { MultiFernet } from '@soma/fernet';
import type { SecretCipher } from '../domain/ports.js';

/** Encryption at rest with MultiFernet: the newest key encrypts, any configured key decrypts. */
export class FernetCipher implements SecretCipher {
  readonly primaryKeyId: string;

  constructor(private readonly keys: MultiFernet) {
    this.primaryKeyId = keys.primary.fingerprint();
  }

  /** Fingerprints of every configured key, newest first (for the start-up log; never the keys). */
  get keyIds(): string[] {
    return this.keys.keys.map((k) => k.fingerprint());
  }

  encrypt(plaintext: string): string {
    return this.keys.encrypt(Buffer.from(plaintext, 'utf8'));
  }

  decrypt(token: string): { plaintext: string; keyIndex: number } {
    const { plaintext, keyIndex } = this.keys.decryptWithIndex(token);
    return { plaintext: plaintext.toString('utf8'), keyIndex };
  }

  rotate(token: string): string {
    return this.keys.rotate(token);
  }
}
