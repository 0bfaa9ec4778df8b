import { AccessCache } from './access-cache.js';
import type {
  AccessDecision,
  AccessPolicy,
  Caller,
  CallerAuthenticator,
  Clock,
  ReferenceResolver,
  RequestContext,
  SecretAction,
  SecretCipher,
  SecretMetadata,
  SecretStore,
  SecurityEvents,
  SecretsEvent,
} from './ports.js';
import { assertNamePrefix, assertSecretName, MAX_SECRET_BYTES } from './secret-name.js';
import { SecretsError, SecretsErrorCode } from './secrets.errors.js';

export interface PutSecretInput {
  name: string;
  value: string;
  reference: string;
  expectedVersion: number;
}

export interface RotationResult {
  keyId: string;
  examined: number;
  rotated: number;
  alreadyCurrent: number;
  unreadable: string[];
  complete: boolean;
  resumed: boolean;
}

/** Tenant recorded on events about callers auth did not vouch for. */
const UNKNOWN_TENANT = 'unknown';
const ROTATION_PAGE = 100;
/** Attempts per secret when concurrent writes keep changing it under the rotation. */
const SWAP_ATTEMPTS = 5;

export interface SecretsManagerDeps {
  authenticator: CallerAuthenticator;
  policy: AccessPolicy;
  store: SecretStore;
  cipher: SecretCipher;
  references: ReferenceResolver;
  events: SecurityEvents;
  clock: Clock;
  /** Tenants whose principals may use the service at all; undefined = any (tests of the domain alone). */
  tenants?: readonly string[];
  /** Remembered callers and read allows (see AccessCache); undefined = ask auth and authz on every call. */
  accessCache?: AccessCache;
}

/** A caller let through, and whether that took a round trip to auth / authz (recorded in events). */
interface Authorized {
  caller: Caller;
  /** The allow came from the decision cache, not from authz. */
  cached: boolean;
  /** The principal came from the caller cache, not from auth. */
  callerCached: boolean;
}

/** Only reads reuse an allow: a write, delete or rotation always asks authz (rare, and the higher stake). */
const CACHED_ACTIONS: ReadonlySet<SecretAction> = new Set(['secret:read']);

/**
 * The secrets use cases. Every call: authenticate → authorize (fail closed) → act → security
 * event. A value is handed out only after its `secret_accessed` event is durably buffered; a
 * write is refused when events cannot be recorded. Values never reach events, errors or logs.
 */
export class SecretsManager {
  constructor(private readonly deps: SecretsManagerDeps) {}

  async putSecret(ctx: RequestContext, input: PutSecretInput): Promise<{ metadata: SecretMetadata; created: boolean }> {
    assertSecretName(input.name);
    const hasValue = input.value !== '';
    const hasReference = input.reference !== '';
    if (hasValue === hasReference) throw new SecretsError(SecretsErrorCode.InvalidArgument, 'exactly one of value and reference must be set');
    const plaintext = hasValue ? input.value : input.reference;
    if (Buffer.byteLength(plaintext, 'utf8') > MAX_SECRET_BYTES) throw new SecretsError(SecretsErrorCode.InvalidArgument, `value must be at most ${MAX_SECRET_BYTES} bytes`);
    if (hasReference) this.deps.references.validate(input.reference);
    const access = await this.authorize(ctx, 'secret:write', input.name, 'put_secret');
    const { caller } = access;
    this.assertAuditable();
    const outcome = await this.deps.store.put({
      name: input.name,
      token: this.deps.cipher.encrypt(plaintext),
      kind: hasValue ? 'value' : 'reference',
      keyId: this.deps.cipher.primaryKeyId,
      actor: caller.sub,
      now: this.now(),
      expectedVersion: input.expectedVersion,
    });
    if (!outcome.ok) {
      this.publish(this.event(ctx, access, 'secret_written', 'put_secret', input.name, 'failure', 'version_conflict', { expected_version: input.expectedVersion, current_version: outcome.currentVersion }));
      throw new SecretsError(SecretsErrorCode.VersionConflict, 'the secret changed: its version is not expected_version', { current_version: outcome.currentVersion });
    }
    this.publish(this.event(ctx, access, 'secret_written', 'put_secret', input.name, 'success', null, {
      version: outcome.metadata.version,
      kind: outcome.metadata.kind,
      created: outcome.created,
      key_id: outcome.metadata.keyId,
    }));
    return { metadata: outcome.metadata, created: outcome.created };
  }

  async getSecret(ctx: RequestContext, name: string): Promise<{ value: string; metadata: SecretMetadata }> {
    assertSecretName(name);
    const access = await this.authorize(ctx, 'secret:read', name, 'get_secret');
    const stored = await this.deps.store.get(name);
    if (!stored) {
      this.publish(this.event(ctx, access, 'secret_accessed', 'get_secret', name, 'failure', 'not_found'));
      throw new SecretsError(SecretsErrorCode.NotFound, 'no secret of that name');
    }
    let plaintext: string;
    let keyIndex: number;
    try {
      ({ plaintext, keyIndex } = this.deps.cipher.decrypt(stored.token));
    } catch {
      this.publish(this.event(ctx, access, 'secret_accessed', 'get_secret', name, 'error', 'undecryptable', { key_id: stored.keyId }));
      throw new SecretsError(SecretsErrorCode.SecretUndecryptable, 'the stored secret cannot be decrypted with the configured keys', { key_id: stored.keyId });
    }
    let value = plaintext;
    if (stored.kind === 'reference') {
      try {
        value = await this.deps.references.resolve(name, plaintext);
      } catch (e) {
        this.publish(this.event(ctx, access, 'secret_accessed', 'get_secret', name, 'error', 'reference_unresolved'));
        throw e;
      }
    }
    // Recorded before the value leaves: an unrecordable read is refused (publish throws).
    this.publishOrRefuse(this.event(ctx, access, 'secret_accessed', 'get_secret', name, 'success', null, { version: stored.version, kind: stored.kind, key_index: keyIndex }));
    const { token: _token, ...metadata } = stored;
    return { value, metadata };
  }

  async deleteSecret(ctx: RequestContext, name: string): Promise<boolean> {
    assertSecretName(name);
    const access = await this.authorize(ctx, 'secret:write', name, 'delete_secret');
    this.assertAuditable();
    const deleted = await this.deps.store.delete(name);
    this.publish(this.event(ctx, access, 'secret_deleted', 'delete_secret', name, deleted ? 'success' : 'failure', deleted ? null : 'not_found'));
    if (!deleted) throw new SecretsError(SecretsErrorCode.NotFound, 'no secret of that name');
    return true;
  }

  async listSecrets(ctx: RequestContext, prefix: string, pageSize: number, pageToken: string): Promise<{ secrets: SecretMetadata[]; nextPageToken: string }> {
    assertNamePrefix(prefix);
    const size = pageSize === 0 ? 100 : pageSize;
    if (size < 1 || size > 500) throw new SecretsError(SecretsErrorCode.InvalidArgument, 'page_size must be 1..500');
    const cursor = pageToken === '' ? '0' : decodePageToken(pageToken);
    await this.authorize(ctx, 'secret:read', '*', 'list_secrets');
    const page = await this.deps.store.list(prefix, cursor, size);
    const secrets = [...page.secrets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { secrets, nextPageToken: page.cursor === '0' ? '' : encodePageToken(page.cursor) };
  }

  /**
   * Re-encrypt everything under the newest key, page by page from the saved checkpoint. Each
   * secret is verified (the new token decrypts to the same plaintext) and swapped atomically
   * only if unchanged; a secret written meanwhile is re-read (writes already use the newest key).
   * The checkpoint moves only after a whole page is done, so a crash repeats at most one page,
   * where already-current secrets are recognised by their signature and skipped.
   */
  async rotateEncryptionKey(ctx: RequestContext, maxSecrets: number): Promise<RotationResult> {
    const access = await this.authorize(ctx, 'secret:rotate', '*', 'rotate_encryption_key');
    this.assertAuditable();
    const { store, cipher } = this.deps;
    const keyId = cipher.primaryKeyId;
    const saved = await store.loadCheckpoint();
    const resumed = saved !== null && saved.keyId === keyId && saved.cursor !== '0';
    let cursor = resumed ? saved.cursor : '0';
    const startedAt = resumed ? saved.startedAt : this.now();
    const result: RotationResult = { keyId, examined: 0, rotated: 0, alreadyCurrent: 0, unreadable: [], complete: false, resumed };
    for (;;) {
      const budget = maxSecrets > 0 ? maxSecrets - result.examined : Number.POSITIVE_INFINITY;
      if (budget <= 0) break;
      const page = await store.scanNames(cursor, Math.min(ROTATION_PAGE, budget));
      for (const name of page.names) {
        result.examined += 1;
        const outcome = await this.rotateOne(name);
        if (outcome === 'rotated') result.rotated += 1;
        else if (outcome === 'current') result.alreadyCurrent += 1;
        else if (outcome === 'unreadable') result.unreadable.push(name);
      }
      // Whole pages only: the checkpoint moves past a page once every secret in it is done.
      cursor = page.cursor;
      await store.saveCheckpoint({ keyId, cursor, startedAt, updatedAt: this.now() });
      if (cursor === '0') {
        result.complete = true;
        break;
      }
    }
    this.publish(this.event(ctx, access, 'encryption_key_rotated', 'rotate_encryption_key', '*', result.unreadable.length ? 'failure' : 'success', result.unreadable.length ? 'unreadable_secrets' : null, {
      key_id: keyId,
      examined: result.examined,
      rotated: result.rotated,
      already_current: result.alreadyCurrent,
      unreadable: result.unreadable.length,
      complete: result.complete,
      resumed,
    }));
    return result;
  }

  private async rotateOne(name: string): Promise<'rotated' | 'current' | 'unreadable' | 'gone'> {
    const { store, cipher } = this.deps;
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      const stored = await store.get(name);
      if (!stored) return 'gone';
      let opened: { plaintext: string; keyIndex: number };
      try {
        opened = cipher.decrypt(stored.token);
      } catch {
        return 'unreadable';
      }
      if (opened.keyIndex === 0 && !stored.legacy && stored.keyId === cipher.primaryKeyId) return 'current';
      const fresh = cipher.rotate(stored.token);
      const check = cipher.decrypt(fresh);
      // Never store what would not read back as the same secret under the newest key.
      if (check.keyIndex !== 0 || check.plaintext !== opened.plaintext) throw new SecretsError(SecretsErrorCode.Unavailable, 'rotation self-check failed', { name });
      if (await store.swapToken(name, stored.token, fresh, cipher.primaryKeyId, this.now())) return 'rotated';
    }
    throw new SecretsError(SecretsErrorCode.Unavailable, 'a secret kept changing during rotation; run the rotation again', { name });
  }

  /**
   * Authenticate then ask the policy; any failure is a refusal, and denials are events. With an access
   * cache, a credential auth vouched for and a read authz allowed are reused until their TTL (never past
   * the credential's expiry); a deny or a failure is never reused, so fail closed is unchanged.
   */
  private async authorize(ctx: RequestContext, action: SecretAction, name: string, operation: string): Promise<Authorized> {
    if (!ctx.credential) {
      this.publish(this.anonymousDenial(ctx, operation, name, 'missing_credential'));
      throw new SecretsError(SecretsErrorCode.Unauthenticated, 'an authorization: Bearer credential is required');
    }
    const cache = this.deps.accessCache;
    // One clock reading per call: entries remembered after an await then expire a little early, never late.
    const now = cache ? this.nowMs() : 0;
    const credentialKey = cache?.cachesCallers ? AccessCache.credentialKey(ctx.credential) : '';
    let caller = credentialKey ? cache!.caller(credentialKey, now) : undefined;
    const callerCached = caller !== undefined;
    if (caller === undefined) {
      try {
        caller = await this.deps.authenticator.authenticate(ctx.credential, ctx);
      } catch (e) {
        const unavailable = e instanceof SecretsError && e.code === SecretsErrorCode.Unavailable;
        this.publish(this.anonymousDenial(ctx, operation, name, unavailable ? 'auth_unavailable' : 'unauthenticated'));
        if (e instanceof SecretsError) throw e;
        throw new SecretsError(SecretsErrorCode.Unavailable, 'the credential could not be verified now');
      }
      if (credentialKey) cache!.rememberCaller(credentialKey, caller, now);
    }
    // Checked on every call, cached caller or not: it is a local rule and costs nothing.
    if (this.deps.tenants && !this.deps.tenants.includes(caller.tenant)) {
      this.publish(this.event(ctx, { caller, cached: false, callerCached }, 'secret_access_denied', operation, name, 'denied', 'tenant_not_allowed', { permission: action }));
      throw new SecretsError(SecretsErrorCode.PermissionDenied, 'callers of this tenant may not use the secrets service');
    }
    const cacheable = cache !== undefined && CACHED_ACTIONS.has(action);
    let decision: AccessDecision | undefined = cacheable ? cache.decision(caller, action, name, now) : undefined;
    const cached = decision !== undefined;
    if (decision === undefined) {
      try {
        decision = await this.deps.policy.decide(caller, action, name, ctx);
      } catch {
        decision = { allowed: false, reason: 'policy_unavailable', decisionId: '' };
      }
      if (cacheable) cache.rememberDecision(caller, action, name, decision, now);
    }
    if (decision.allowed !== true) {
      this.publish(this.event(ctx, { caller, cached, callerCached }, 'secret_access_denied', operation, name, 'denied', decision.reason || 'policy_violation', { permission: action, decision_id: decision.decisionId }));
      throw new SecretsError(SecretsErrorCode.PermissionDenied, `${action} is not granted on this secret`, { decision_id: decision.decisionId, reason: decision.reason });
    }
    return { caller, cached, callerCached };
  }

  private assertAuditable(): void {
    const reason = this.deps.events.readiness();
    if (reason) throw new SecretsError(SecretsErrorCode.Unavailable, 'security events cannot be recorded now; refusing to act unaudited', { reason });
  }

  /** Best effort for events that accompany a refusal or a failure: the refusal stands either way. */
  private publish(event: SecretsEvent): void {
    try {
      this.deps.events.publish(event);
    } catch {
      // The caller is refused anyway; the publisher already logged why it could not buffer.
    }
  }

  private publishOrRefuse(event: SecretsEvent): void {
    try {
      this.deps.events.publish(event);
    } catch {
      throw new SecretsError(SecretsErrorCode.Unavailable, 'security events cannot be recorded now; refusing to hand out the secret');
    }
  }

  private event(ctx: RequestContext, access: Authorized, type: SecretsEvent['type'], action: string, resource: string, outcome: SecretsEvent['outcome'], reason: string | null, details: Record<string, unknown> = {}): SecretsEvent {
    const { caller } = access;
    return {
      type,
      tenant: caller.tenant,
      action,
      resource: `secret:${resource}`,
      outcome,
      reason,
      actor: { user_id: caller.sub, ip_address: ctx.ipAddress ?? null, user_agent: ctx.userAgent ?? null },
      details: {
        ...details,
        request_id: ctx.requestId,
        auth_method: caller.method,
        credential_id: caller.credentialId,
        ...(caller.personaId ? { persona_id: caller.personaId } : {}),
        // Whether auth / authz were asked for this call: a reader of the audit trail can tell a fresh decision
        // from one reused within the cache TTL (the revocation delay bound).
        cached: access.cached,
        caller_cached: access.callerCached,
      },
    };
  }

  private anonymousDenial(ctx: RequestContext, action: string, name: string, reason: string): SecretsEvent {
    return {
      type: 'secret_access_denied',
      tenant: UNKNOWN_TENANT,
      action,
      resource: `secret:${name}`,
      outcome: 'denied',
      reason,
      actor: { user_id: null, ip_address: ctx.ipAddress ?? null, user_agent: ctx.userAgent ?? null },
      details: { request_id: ctx.requestId },
    };
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  private nowMs(): number {
    return this.deps.clock.now().getTime();
  }
}

/** Page tokens are opaque to callers; the store cursor inside is validated on the way back. */
function encodePageToken(cursor: string): string {
  return Buffer.from(`v1:${cursor}`, 'utf8').toString('base64url');
}

function decodePageToken(token: string): string {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const match = /^v1:(\d{1,20})$/.exec(text);
  if (!match) throw new SecretsError(SecretsErrorCode.InvalidArgument, 'page_token is not one this service issued');
  return match[1]!;
}
