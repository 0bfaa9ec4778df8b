import { maskApiKey } from '@soma/masking';
import { AuthError, AuthErrorCode } from './auth.errors.js';
import { generateApiKey, hashApiKey, looksLikeApiKey, newApiKeyId } from './api-key-format.js';
import type { ApiKeyRecord, ApiKeyStore, Clock, RateLimit, UsageBudget } from './ports.js';
import type { Principal } from './principal.js';

export type VerifyApiKeyResult = 'VALID' | 'NOT_FOUND' | 'REVOKED' | 'EXPIRED' | 'RATE_LIMITED' | 'USAGE_EXCEEDED' | 'INSUFFICIENT_SCOPE';

export interface ApiKeyVerification {
  result: VerifyApiKeyResult;
  record?: ApiKeyRecord;
  principal?: Principal;
  remaining?: number;
  retryAfterMs?: number;
}

export interface CreateApiKeyInput {
  tenant: string;
  name: string;
  scopes?: string[];
  expires_at?: string;
  owner_sub?: string;
  persona_id?: string;
  external_id?: string;
  metadata?: Record<string, string>;
  budget?: UsageBudget;
  rate_limit?: RateLimit;
}

export interface ApiKeySettings {
  prefix: string;
  rotationGraceSeconds: number;
  lastUsedResolutionSeconds: number;
}

/**
 * API keys: `<prefix>` + 32 base62 characters, shown once; stored as SHA-256 with its record.
 * Verification order: format → record (cache/Redis) → revoked → rotated past grace → expired →
 * scope → rate limit → budget (so a refused call never spends budget).
 */
export class ApiKeyService {
  /** last_used_at is written at most once per resolution per key and instance: not a write per call. */
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly store: ApiKeyStore,
    private readonly settings: ApiKeySettings,
    private readonly clock: Clock,
  ) {}

  async create(input: CreateApiKeyInput): Promise<{ key: string; record: ApiKeyRecord }> {
    const now = new Date(this.clock.now());
    if (input.expires_at && Date.parse(input.expires_at) <= now.getTime()) throw new AuthError(AuthErrorCode.InvalidArgument, 'expires_at must be in the future');
    const key = generateApiKey(this.settings.prefix);
    const record: ApiKeyRecord = {
      id: newApiKeyId(),
      hash: hashApiKey(key),
      tenant: input.tenant,
      name: input.name,
      scopes: [...new Set(input.scopes ?? [])],
      masked: maskApiKey(key),
      created_at: now.toISOString(),
      ...(input.expires_at ? { expires_at: new Date(input.expires_at).toISOString() } : {}),
      revoked: false,
      ...(input.owner_sub ? { owner_sub: input.owner_sub } : {}),
      persona_id: input.persona_id || 'default',
      ...(input.external_id ? { external_id: input.external_id } : {}),
      metadata: { ...(input.metadata ?? {}) },
      ...(input.budget ? { budget: input.budget } : {}),
      ...(input.rate_limit ? { rate_limit: input.rate_limit } : {}),
    };
    await this.store.create(record);
    return { key, record };
  }

  async verify(key: string, requiredScopes: readonly string[] = []): Promise<ApiKeyVerification> {
    if (!looksLikeApiKey(key, this.settings.prefix)) return { result: 'NOT_FOUND' };
    const record = await this.store.getByHash(hashApiKey(key));
    if (!record) return { result: 'NOT_FOUND' };
    const now = this.clock.now();
    if (record.revoked) return { result: 'REVOKED', record };
    if (record.grace_until && Date.parse(record.grace_until) <= now) return { result: 'REVOKED', record };
    if (record.expires_at && Date.parse(record.expires_at) <= now) return { result: 'EXPIRED', record };
    if (!requiredScopes.every((s) => record.scopes.includes(s))) return { result: 'INSUFFICIENT_SCOPE', record };
    if (record.rate_limit) {
      const r = await this.store.consumeRate(record.id, record.rate_limit);
      if (!r.allowed) return { result: 'RATE_LIMITED', record, retryAfterMs: r.retryAfterMs };
    }
    let remaining: number | undefined;
    if (record.budget) {
      const b = await this.store.consumeBudget(record.id, record.budget, Math.floor(now / 1000));
      if (!b.allowed) return { result: 'USAGE_EXCEEDED', record, remaining: 0 };
      remaining = b.remaining;
    }
    const lastTouched = this.lastTouched.get(record.id) ?? 0;
    if (now - lastTouched >= this.settings.lastUsedResolutionSeconds * 1000) {
      if (this.lastTouched.size > 100_000) this.lastTouched.clear();
      this.lastTouched.set(record.id, now);
      this.store.touchLastUsed(record, new Date(now));
    }
    return { result: 'VALID', record, principal: this.principalOf(record), ...(remaining !== undefined ? { remaining } : {}) };
  }

  principalOf(record: ApiKeyRecord): Principal {
    const exp = [record.expires_at, record.grace_until].filter((x): x is string => !!x).map((x) => Math.floor(Date.parse(x) / 1000));
    return {
      sub: record.owner_sub || `api-key:${record.id}`,
      tenant: record.tenant,
      persona_id: record.persona_id,
      scopes: [...record.scopes],
      method: 'api_key',
      credential_id: record.id,
      ...(exp.length ? { expires_at: Math.min(...exp) } : {}),
    };
  }

  async list(tenant: string, includeRevoked: boolean): Promise<ApiKeyRecord[]> {
    const now = this.clock.now();
    const all = await this.store.listByTenant(tenant);
    return all
      .filter((r) => includeRevoked || (!r.revoked && !(r.grace_until && Date.parse(r.grace_until) <= now)))
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  async get(tenant: string, id: string): Promise<ApiKeyRecord> {
    const r = await this.store.getById(id);
    // Another tenant's key is "not found": no existence oracle across tenants.
    if (!r || r.tenant !== tenant) throw new AuthError(AuthErrorCode.NotFound, 'api key not found');
    return r;
  }

  async revoke(tenant: string, id: string): Promise<ApiKeyRecord> {
    const r = await this.get(tenant, id);
    if (r.revoked) return r;
    const updated: ApiKeyRecord = { ...r, revoked: true, revoked_at: new Date(this.clock.now()).toISOString() };
    await this.store.update(updated);
    return updated;
  }

  async rotate(tenant: string, id: string, graceSeconds?: number): Promise<{ key: string; record: ApiKeyRecord; previous: ApiKeyRecord }> {
    const old = await this.get(tenant, id);
    const now = this.clock.now();
    if (old.revoked || (old.grace_until && Date.parse(old.grace_until) <= now)) throw new AuthError(AuthErrorCode.NotFound, 'api key not found or no longer active');
    if (old.replaced_by) throw new AuthError(AuthErrorCode.InvalidArgument, 'api key was already rotated; rotate its replacement');
    const grace = graceSeconds && graceSeconds > 0 ? Math.min(graceSeconds, this.settings.rotationGraceSeconds || graceSeconds) : this.settings.rotationGraceSeconds;
    const created = await this.create({
      tenant: old.tenant,
      name: old.name,
      scopes: old.scopes,
      ...(old.expires_at && Date.parse(old.expires_at) > now ? { expires_at: old.expires_at } : {}),
      ...(old.owner_sub ? { owner_sub: old.owner_sub } : {}),
      persona_id: old.persona_id,
      ...(old.external_id ? { external_id: old.external_id } : {}),
      metadata: old.metadata,
      ...(old.budget ? { budget: old.budget } : {}),
      ...(old.rate_limit ? { rate_limit: old.rate_limit } : {}),
    });
    const previous: ApiKeyRecord = { ...old, grace_until: new Date(now + grace * 1000).toISOString(), replaced_by: created.record.id };
    await this.store.update(previous);
    return { key: created.key, record: created.record, previous };
  }

  async revokeOwnedBy(tenant: string, sub: string): Promise<ApiKeyRecord[]> {
    const owned = await this.store.listByOwner(tenant, sub);
    const revoked: ApiKeyRecord[] = [];
    for (const r of owned) {
      if (r.revoked) continue;
      const updated: ApiKeyRecord = { ...r, revoked: true, revoked_at: new Date(this.clock.now()).toISOString() };
      await this.store.update(updated);
      revoked.push(updated);
    }
    return revoked;
  }
}
