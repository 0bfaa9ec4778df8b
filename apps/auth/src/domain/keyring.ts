import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPair,
  hkdfSync,
  randomBytes,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { VerificationKey } from './jws-verifier.js';
import type { Clock, JwtAlgorithm, SigningKeyStore, StoredSigningKey } from './ports.js';

/** The configured root of all signing keys: the HS256 secret, or the RS256 private key from JWT_PRIVATE_KEY_FILE. */
export type RootKey = { alg: 'HS256'; secret: Buffer } | { alg: 'RS256'; privateKey: KeyObject };

interface Material {
  sign: KeyObject;
  verify: KeyObject;
  publicJwk?: JsonWebKey;
}

export interface SigningKeyInfo {
  kid: string;
  alg: JwtAlgorithm;
  created_at: string;
  retire_at?: string;
  signing: boolean;
}

const WRAP_AAD_PREFIX = 'soma-auth-signing-key:';

/**
 * The set of signing and verification keys, shared by every instance through a keyring store.
 *
 * Nothing usable alone is stored there: HS256 keys are derived per kid from JWT_SECRET (HKDF), so the
 * ring holds only kids and dates; RS256 keys made by rotation are stored wrapped (AES-256-GCM) under a
 * key derived from the root private key every instance already has. Keys are derived/imported once per
 * kid and kept as KeyObjects; verification looks them up in a Map.
 */
export class Keyring {
  private readonly materials = new Map<string, Material>();
  private verification = new Map<string, VerificationKey>();
  private signingKid = '';
  private infos: SigningKeyInfo[] = [];
  private lastForcedReload = 0;
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly root: RootKey,
    private readonly store: SigningKeyStore,
    /** How long a rotated-out key keeps verifying: the longest token lifetime plus skew. */
    private readonly retireAfterSeconds: number,
    private readonly clock: Clock,
  ) {
    store.onChange(() => void this.reload().catch(() => undefined));
  }

  get alg(): JwtAlgorithm {
    return this.root.alg;
  }

  async init(): Promise<void> {
    const kid = await this.rootKid();
    await this.store.ensureBootstrap({ kid, alg: this.root.alg, created_at: new Date(this.clock.now()).toISOString() });
    await this.reload();
  }

  /** Keyring changed (here or on another instance): rebuild the kid map, importing only new keys. */
  async reload(): Promise<void> {
    const { keys, current } = await this.store.list();
    const now = this.clock.now();
    const verification = new Map<string, VerificationKey>();
    const infos: SigningKeyInfo[] = [];
    for (const k of keys) {
      if (k.alg !== this.root.alg) continue;
      if (k.retire_at && Date.parse(k.retire_at) <= now) continue;
      const material = await this.materialOf(k);
      if (!material) continue;
      verification.set(k.kid, { kid: k.kid, alg: k.alg, key: material.verify });
      infos.push({ kid: k.kid, alg: k.alg, created_at: k.created_at, ...(k.retire_at ? { retire_at: k.retire_at } : {}), signing: k.kid === current });
    }
    if (!current || !verification.has(current)) throw new Error('keyring has no usable current signing key for this configuration');
    this.verification = verification;
    this.signingKid = current;
    this.infos = infos;
    for (const l of this.listeners) l();
  }

  onReload(listener: () => void): void {
    this.listeners.push(listener);
  }

  lookup = (kid: string): VerificationKey | undefined => this.verification.get(kid);

  /**
   * A kid we do not know may have been minted by another instance a few ms ago, before its
   * notification arrived: re-read the ring, at most once a second (so junk kids cannot flood Redis).
   */
  async refreshForUnknownKid(kid: string): Promise<VerificationKey | undefined> {
    const now = this.clock.now();
    if (now - this.lastForcedReload < 1000) return undefined;
    this.lastForcedReload = now;
    await this.reload();
    return this.verification.get(kid);
  }

  signingKey(): { kid: string; alg: JwtAlgorithm; key: KeyObject } {
    const m = this.materials.get(this.signingKid);
    if (!m) throw new Error('no signing key');
    return { kid: this.signingKid, alg: this.root.alg, key: m.sign };
  }

  list(): SigningKeyInfo[] {
    return [...this.infos];
  }

  /** RS256 public keys as a JWKS; HS256 has nothing public to publish. */
  jwks(): { keys: JsonWebKey[] } {
    if (this.root.alg !== 'RS256') return { keys: [] };
    const keys: JsonWebKey[] = [];
    for (const info of this.infos) {
      const jwk = this.materials.get(info.kid)?.publicJwk;
      if (jwk) keys.push({ ...jwk, kid: info.kid, alg: 'RS256', use: 'sig' } as JsonWebKey);
    }
    return { keys };
  }

  async rotate(): Promise<{ signing: SigningKeyInfo; previous: string }> {
    const now = this.clock.now();
    const kid = `${this.root.alg.toLowerCase()}-${randomBytes(12).toString('base64url')}`;
    const next: StoredSigningKey = { kid, alg: this.root.alg, created_at: new Date(now).toISOString() };
    if (this.root.alg === 'RS256') {
      // Async: an RSA key generation must not stall verifications on this instance.
      const privateKey = await new Promise<KeyObject>((resolve, reject) => generateKeyPair('rsa', { modulusLength: 2048 }, (e, _pub, priv) => (e ? reject(e) : resolve(priv))));
      next.wrapped_private = this.wrap(kid, privateKey.export({ format: 'der', type: 'pkcs8' }));
    }
    const previous = this.signingKid;
    const retireAt = new Date(now + this.retireAfterSeconds * 1000).toISOString();
    await this.store.rotate(next, retireAt, new Date(now).toISOString());
    await this.reload();
    const signing = this.infos.find((i) => i.kid === kid);
    if (!signing) throw new Error('rotated key not found after reload');
    return { signing, previous };
  }

  private async rootKid(): Promise<string> {
    if (this.root.alg === 'HS256') {
      // Public, stable per secret, reveals nothing about it (HMAC of a constant).
      return `hs256-${createHmac('sha256', this.root.secret).update('soma-auth-root-kid').digest('base64url').slice(0, 16)}`;
    }
    const jwk = createPublicKey(this.root.privateKey).export({ format: 'jwk' });
    return `rs256-${(await calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0])).slice(0, 16)}`;
  }

  private async materialOf(k: StoredSigningKey): Promise<Material | undefined> {
    const cached = this.materials.get(k.kid);
    if (cached) return cached;
    let material: Material | undefined;
    if (this.root.alg === 'HS256') {
      const key = createSecretKey(Buffer.from(hkdfSync('sha256', this.root.secret, 'soma-auth-jwt-hs256', k.kid, 32)));
      material = { sign: key, verify: key };
    } else {
      let priv: KeyObject | undefined;
      if (k.kid === (await this.rootKid())) priv = this.root.privateKey;
      else if (k.wrapped_private) priv = this.unwrap(k.kid, k.wrapped_private);
      if (!priv) return undefined;
      const pub = createPublicKey(priv);
      material = { sign: priv, verify: pub, publicJwk: pub.export({ format: 'jwk' }) };
    }
    this.materials.set(k.kid, material);
    return material;
  }

  private kek(): Buffer {
    if (this.root.alg !== 'RS256') throw new Error('no key wrapping for HS256');
    const der = this.root.privateKey.export({ format: 'der', type: 'pkcs8' });
    return Buffer.from(hkdfSync('sha256', der, 'soma-auth-kek', 'signing-key-wrap', 32));
  }

  private wrap(kid: string, der: Buffer): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.kek(), iv);
    c.setAAD(Buffer.from(WRAP_AAD_PREFIX + kid));
    const ct = Buffer.concat([c.update(der), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
  }

  /** A key wrapped under another root (the root key was replaced) cannot be used: skipped, not fatal. */
  private unwrap(kid: string, wrapped: string): KeyObject | undefined {
    try {
      const buf = Buffer.from(wrapped, 'base64url');
      const d = createDecipheriv('aes-256-gcm', this.kek(), buf.subarray(0, 12));
      d.setAAD(Buffer.from(WRAP_AAD_PREFIX + kid));
      d.setAuthTag(buf.subarray(12, 28));
      const der = Buffer.concat([d.update(buf.subarray(28)), d.final()]);
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } catch {
      return undefined;
    }
  }
}
