import { AuthError, AuthErrorCode } from '../domain/auth.errors.js';
import type { SigningKeyInfo } from '../domain/keyring.js';
import type { ApiKeyRecord, RateLimit, UsageBudget } from '../domain/ports.js';
import type { Principal } from '../domain/principal.js';

export const iso = (seconds: number | undefined): string => (seconds ? new Date(seconds * 1000).toISOString() : '');

export function principalToWire(p: Principal) {
  return {
    sub: p.sub,
    tenant: p.tenant,
    persona_id: p.persona_id,
    scopes: p.scopes,
    method: p.method === 'api_key' ? 'AUTH_METHOD_API_KEY' : 'AUTH_METHOD_JWT',
    credential_id: p.credential_id,
    expires_at: iso(p.expires_at),
  };
}

export function apiKeyToWire(r: ApiKeyRecord) {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    scopes: r.scopes,
    masked: r.masked,
    created_at: r.created_at,
    expires_at: r.expires_at ?? '',
    last_used_at: r.last_used_at ?? '',
    revoked: r.revoked,
    revoked_at: r.revoked_at ?? '',
    owner_sub: r.owner_sub ?? '',
    persona_id: r.persona_id,
    external_id: r.external_id ?? '',
    metadata: r.metadata,
    budget: r.budget ? { remaining: String(r.budget.remaining), refill_amount: String(r.budget.refill_amount), refill_interval_seconds: String(r.budget.refill_interval_seconds) } : null,
    rate_limit: r.rate_limit ?? null,
    grace_until: r.grace_until ?? '',
    replaced_by: r.replaced_by ?? '',
  };
}

export function signingKeyToWire(k: SigningKeyInfo) {
  return { kid: k.kid, alg: k.alg, created_at: k.created_at, retire_at: k.retire_at ?? '', signing: k.signing };
}

/** Optional wire messages arrive as null (proto3 defaults); an all-zero rate limit means "none". */
export function budgetFrom(b: { remaining: number | string; refill_amount?: number | string; refill_interval_seconds?: number | string } | null | undefined): UsageBudget | undefined {
  if (!b) return undefined;
  return { remaining: Number(b.remaining), refill_amount: Number(b.refill_amount ?? 0), refill_interval_seconds: Number(b.refill_interval_seconds ?? 0) };
}

export function rateLimitFrom(r: { limit: number; window_seconds: number } | null | undefined): RateLimit | undefined {
  if (!r || !r.limit) return undefined;
  if (!r.window_seconds) throw new AuthError(AuthErrorCode.InvalidArgument, 'rate_limit.window_seconds must be positive');
  return { limit: r.limit, window_seconds: r.window_seconds };
}

export function dateOrUndefined(v: string | undefined, field: string): string | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new AuthError(AuthErrorCode.InvalidArgument, `${field} must be an RFC 3339 date`);
  return new Date(t).toISOString();
}

export function metadataFrom(m: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Object.entries(m ?? {});
  if (entries.length > 32) throw new AuthError(AuthErrorCode.InvalidArgument, 'metadata has more than 32 entries');
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || k.length > 64 || v.length > 512) throw new AuthError(AuthErrorCode.InvalidArgument, 'metadata entries must be strings (key ≤ 64, value ≤ 512 chars)');
    out[k] = v;
  }
  return out;
}
