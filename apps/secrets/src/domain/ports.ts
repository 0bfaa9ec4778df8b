/**
 * What the secrets domain needs from the outside world. Implementations live in infra/; the
 * domain sees none of Redis, gRPC, auth or authz clients, Kafka or the file system.
 */

/** Who is calling, as auth vouched for it. */
export interface Caller {
  sub: string;
  tenant: string;
  personaId: string;
  scopes: readonly string[];
  method: 'jwt' | 'api_key';
  /** jti or API key id, never the credential itself. */
  credentialId: string;
  /** When the credential stops being valid (ms since the epoch); undefined = it does not expire. No cache trusts it past this. */
  expiresAtMs?: number;
}

/** Transport facts about one request, passed through to auth, authz and events. */
export interface RequestContext {
  requestId: string;
  /** The raw `authorization` value (`Bearer …`), or undefined when absent. Never logged. */
  credential: string | undefined;
  ipAddress?: string;
  userAgent?: string;
}

/** Verifies a bearer credential. Throws SecretsError(Unauthenticated | Unavailable); never resolves without a caller. */
export interface CallerAuthenticator {
  authenticate(credential: string, ctx: RequestContext): Promise<Caller>;
}

export type SecretAction = 'secret:read' | 'secret:write' | 'secret:rotate';

export interface AccessDecision {
  allowed: boolean;
  /** `allowed`, `policy_violation`, `undefined`, `policy_unavailable`, … */
  reason: string;
  decisionId: string;
}

/** Asks the policy whether a caller may act on a secret name. Must fail closed: resolve a deny on any error. */
export interface AccessPolicy {
  decide(caller: Caller, action: SecretAction, name: string, ctx: RequestContext): Promise<AccessDecision>;
}

export type SecretKind = 'value' | 'reference';

/** One stored secret: the Fernet token and its metadata (Redis hash `llm_cred:<name>`). */
export interface StoredSecret {
  name: string;
  token: string;
  kind: SecretKind;
  createdAt: string;
  updatedAt: string;
  version: number;
  createdBy: string;
  updatedBy: string;
  keyId: string;
  /** Stored by the seed as a bare token (no metadata); rewritten as a hash by the next write or rotation. */
  legacy: boolean;
}

export type SecretMetadata = Omit<StoredSecret, 'token'>;

export interface PutRecord {
  name: string;
  token: string;
  kind: SecretKind;
  keyId: string;
  actor: string;
  now: string;
  /** 0 = any; N = only when the stored version is N. */
  expectedVersion: number;
}

export type PutOutcome = { ok: true; metadata: SecretMetadata; created: boolean } | { ok: false; currentVersion: number };

export interface RotationCheckpoint {
  keyId: string;
  /** Opaque store cursor; '0' = start of the store. Everything before it is under keyId. */
  cursor: string;
  startedAt: string;
  updatedAt: string;
}

/** The store. Every method is atomic on its own; throws SecretsError(Unavailable) when the store is down. */
export interface SecretStore {
  get(name: string): Promise<StoredSecret | null>;
  put(record: PutRecord): Promise<PutOutcome>;
  delete(name: string): Promise<boolean>;
  /** One page of metadata, by an opaque cursor ('0' = start; '0' returned = end). */
  list(prefix: string, cursor: string, count: number): Promise<{ cursor: string; secrets: SecretMetadata[] }>;
  /** One page of names for a full pass, by an opaque cursor ('0' = start; '0' returned = end). */
  scanNames(cursor: string, count: number): Promise<{ cursor: string; names: string[] }>;
  /**
   * Replace the token only if it is still `expectedToken` (compare-and-set), keeping every
   * other field. False when the secret changed or vanished meanwhile.
   */
  swapToken(name: string, expectedToken: string, newToken: string, keyId: string, now: string): Promise<boolean>;
  loadCheckpoint(): Promise<RotationCheckpoint | null>;
  saveCheckpoint(checkpoint: RotationCheckpoint): Promise<void>;
}

/** Encryption at rest (Fernet / MultiFernet). */
export interface SecretCipher {
  /** Fingerprint of the newest key, the one `encrypt` uses. */
  readonly primaryKeyId: string;
  encrypt(plaintext: string): string;
  /** Throws when no key opens the token. keyIndex 0 = newest key. */
  decrypt(token: string): { plaintext: string; keyIndex: number };
  /** Re-encrypt under the newest key, keeping the token's timestamp. */
  rotate(token: string): string;
}

/** Resolves a stored reference (`vault://…`, `file://…`) to its value. Throws SecretsError(ReferenceUnresolved). */
export interface ReferenceResolver {
  /** Throws SecretsError(InvalidArgument) when the reference is not acceptable (checked at write time). */
  validate(reference: string): void;
  resolve(name: string, reference: string): Promise<string>;
}

export type SecretsEventType = 'secret_accessed' | 'secret_written' | 'secret_deleted' | 'encryption_key_rotated' | 'secret_access_denied';

export interface SecretsEvent {
  type: SecretsEventType;
  tenant: string;
  action: string;
  resource: string;
  outcome: 'success' | 'failure' | 'denied' | 'error';
  reason?: string | null;
  actor?: { user_id?: string | null; ip_address?: string | null; user_agent?: string | null };
  details?: Record<string, unknown>;
}

/** The security-event publisher: durable before it returns; throws when its buffer is full. */
export interface SecurityEvents {
  publish(event: SecretsEvent): unknown;
  /** null when events can be accepted now, else a reason (the buffer is full). */
  readiness(): string | null;
}

export interface Clock {
  now(): Date;
}
