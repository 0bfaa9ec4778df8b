import type { SecurityEventInput } from '@soma/contracts';

export type JwtAlgorithm = 'HS256' | 'RS256';

/** A signing key as stored in the shared keyring: public metadata, plus the wrapped private key for RS256. */
export interface StoredSigningKey {
  kid: string;
  alg: JwtAlgorithm;
  created_at: string;
  /** Once set, the key no longer signs and verifies only until then. */
  retire_at?: string;
  /** RS256 keys made by rotation: PKCS#8 private key, AES-256-GCM-wrapped under a key derived from the root key. */
  wrapped_private?: string;
}

export interface SigningKeyStore {
  list(): Promise<{ keys: StoredSigningKey[]; current: string | null }>;
  /** Add the root key; make it current only when no key is current yet. Idempotent and race-safe. */
  ensureBootstrap(key: StoredSigningKey): Promise<void>;
  /** Atomically: add `next`, make it current, give the previous current key its retire_at; notify every instance. */
  rotate(next: StoredSigningKey, previousRetireAt: string, pruneBefore: string): Promise<void>;
  /** Called when another instance changed the keyring. */
  onChange(listener: () => void): void;
}

/** The deny-list. Implementations answer from an exact local mirror while it is in sync, from Redis otherwise. */
export interface RevocationStore {
  revokeToken(jti: string, expiresAtSeconds: number): Promise<void>;
  /** Tokens of (tenant, sub) issued at or before `cutoffSeconds` are refused until `untilSeconds`. */
  revokeSubject(tenant: string, sub: string, cutoffSeconds: number, untilSeconds: number): Promise<void>;
  /** Remember which tenant a token id was issued to (until it expires), so revocation by jti can be tenant-checked. */
  recordIssued(jti: string, tenant: string, expiresAtSeconds: number): Promise<void>;
  /** The tenant a still-valid token id was issued to, or undefined (unknown, or expired). */
  tenantOfIssued(jti: string): Promise<string | undefined>;
  /** Throws AuthError(Unavailable) when it cannot know (fail closed). */
  isRevoked(jti: string, tenant: string, sub: string, iatSeconds: number): Promise<boolean>;
  /** Called whenever local caches must be dropped (mirror lost or rebuilt). */
  onResync(listener: () => void): void;
}

export interface UsageBudget {
  remaining: number;
  refill_amount: number;
  refill_interval_seconds: number;
}

export interface RateLimit {
  limit: number;
  window_seconds: number;
}

/** An API key's stored record. The secret itself is never stored: only its SHA-256 `hash`. */
export interface ApiKeyRecord {
  id: string;
  hash: string;
  tenant: string;
  name: string;
  scopes: string[];
  masked: string;
  created_at: string;
  expires_at?: string;
  last_used_at?: string;
  revoked: boolean;
  revoked_at?: string;
  owner_sub?: string;
  persona_id: string;
  external_id?: string;
  metadata: Record<string, string>;
  budget?: UsageBudget;
  rate_limit?: RateLimit;
  grace_until?: string;
  replaced_by?: string;
}

export interface ApiKeyStore {
  create(record: ApiKeyRecord): Promise<void>;
  /** Hot path: served from a cache kept exact by pub/sub invalidation while it is in sync. */
  getByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  getById(id: string): Promise<ApiKeyRecord | undefined>;
  listByTenant(tenant: string): Promise<ApiKeyRecord[]>;
  listByOwner(tenant: string, sub: string): Promise<ApiKeyRecord[]>;
  /** Replace the record and invalidate it on every instance. */
  update(record: ApiKeyRecord): Promise<void>;
  /** Best effort, off the hot path. */
  touchLastUsed(record: ApiKeyRecord, at: Date): void;
  consumeRate(id: string, limit: RateLimit): Promise<{ allowed: boolean; retryAfterMs: number }>;
  consumeBudget(id: string, budget: UsageBudget, nowSeconds: number): Promise<{ allowed: boolean; remaining: number }>;
}

export interface LoginThrottle {
  /** Per-IP flood limit on the login endpoint, counted before anything else. */
  allowRequest(ip: string): Promise<boolean>;
  isLocked(account: string, ip: string): Promise<boolean>;
  /** Count a failure; true when this failure started a lockout. */
  recordFailure(account: string, ip: string): Promise<boolean>;
  recordSuccess(account: string): Promise<void>;
}

export interface SecurityEventSink {
  publish(input: SecurityEventInput): unknown;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
