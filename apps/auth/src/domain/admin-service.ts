import type { ApiKeyService, CreateApiKeyInput } from './api-key-service.js';
import type { AuthEvents, RequestContext } from './auth-events.js';
import { AuthError, AuthErrorCode } from './auth.errors.js';
import type { Keyring } from './keyring.js';
import type { ApiKeyRecord, Clock, RevocationStore } from './ports.js';
import { ALL_TENANTS, type Principal } from './principal.js';
import type { IssueTokenInput, TokenService } from './token-service.js';

/**
 * The administrative operations, shared by gRPC and the REST admin API. The caller (already checked
 * to be an admin of the tenant) is recorded as the actor of every event. No secret enters an event.
 */
export class AdminService {
  constructor(
    private readonly tokens: TokenService,
    private readonly apiKeys: ApiKeyService,
    private readonly revocation: RevocationStore,
    private readonly keyring: Keyring,
    private readonly events: AuthEvents,
    private readonly clock: Clock,
    private readonly maxTokenLifetimeSeconds: number,
  ) {}

  async issueToken(actor: Principal | null, input: IssueTokenInput, ctx?: RequestContext) {
    const t = await this.tokens.issue(input);
    this.events.emit('token_issued', { tenant: input.tenant, action: 'issue_token', resource: `jwt:${t.jti}`, outcome: 'success', actor: actor?.sub ?? null, ctx, details: { jti: t.jti, kid: t.kid, sub: input.sub, exp: t.exp, scopes: input.scopes ?? [] } });
    return t;
  }

  async revokeToken(actor: Principal, tenant: string, input: { jti?: string; token?: string; expires_at_seconds?: number }, ctx?: RequestContext) {
    const target = await this.tokens.revocationTarget(input);
    // A tenant admin revokes only its own tenant's tokens; an unknown/foreign jti is "not found" (no
    // cross-tenant oracle). Platform admins (tenant *) may deny-list any jti.
    if (actor.tenant !== ALL_TENANTS && target.tenant !== tenant) throw new AuthError(AuthErrorCode.NotFound, 'token not found');
    const r = await this.tokens.revoke(target);
    this.events.emit('token_revoked', { tenant, action: 'revoke_token', resource: `jwt:${r.jti}`, outcome: 'success', actor: actor.sub, ctx, details: { jti: r.jti, revoked_until: new Date(r.until * 1000).toISOString() } });
    return r;
  }

  async createApiKey(actor: Principal | null, input: CreateApiKeyInput, ctx?: RequestContext) {
    const out = await this.apiKeys.create(input);
    this.events.emit('api_key_created', { tenant: input.tenant, action: 'create_api_key', resource: `api_key:${out.record.id}`, outcome: 'success', actor: actor?.sub ?? null, ctx, details: this.keyDetails(out.record) });
    return out;
  }

  async revokeApiKey(actor: Principal, tenant: string, id: string, ctx?: RequestContext) {
    const r = await this.apiKeys.revoke(tenant, id);
    this.events.emit('api_key_revoked', { tenant, action: 'revoke_api_key', resource: `api_key:${id}`, outcome: 'success', actor: actor.sub, ctx, details: this.keyDetails(r) });
    return r;
  }

  async rotateApiKey(actor: Principal, tenant: string, id: string, graceSeconds: number | undefined, ctx?: RequestContext) {
    const out = await this.apiKeys.rotate(tenant, id, graceSeconds);
    this.events.emit('api_key_rotated', { tenant, action: 'rotate_api_key', resource: `api_key:${id}`, outcome: 'success', actor: actor.sub, ctx, details: { ...this.keyDetails(out.record), previous_id: id, grace_until: out.previous.grace_until } });
    return out;
  }

  async rotateTenantApiKeys(actor: Principal, tenant: string, graceSeconds: number | undefined, ctx?: RequestContext) {
    const active = await this.apiKeys.list(tenant, false);
    const rotated = [];
    for (const k of active) {
      if (k.replaced_by) continue;
      rotated.push(await this.rotateApiKey(actor, tenant, k.id, graceSeconds, ctx));
    }
    return rotated;
  }

  async revokeSubject(actor: Principal, tenant: string, sub: string, ctx?: RequestContext) {
    const now = Math.floor(this.clock.now() / 1000);
    await this.revocation.revokeSubject(tenant, sub, now, now + this.maxTokenLifetimeSeconds + 60);
    const keys = await this.apiKeys.revokeOwnedBy(tenant, sub);
    for (const k of keys) {
      this.events.emit('api_key_revoked', { tenant, action: 'revoke_api_key', resource: `api_key:${k.id}`, outcome: 'success', reason: 'subject_revoked', actor: actor.sub, ctx, details: this.keyDetails(k) });
    }
    this.events.emit('token_revoked', { tenant, action: 'revoke_subject', resource: `subject:${sub}`, outcome: 'success', reason: 'subject_revoked', actor: actor.sub, ctx, details: { sub, tokens_issued_before: new Date(now * 1000).toISOString(), api_keys_revoked: keys.length } });
    return { apiKeysRevoked: keys.length, tokensRevokedBefore: now };
  }

  async rotateSigningKey(actor: Principal | null, ctx?: RequestContext) {
    const out = await this.keyring.rotate();
    this.events.emit('signing_key_rotated', { tenant: ALL_TENANTS, action: 'rotate_signing_key', resource: `signing_key:${out.signing.kid}`, outcome: 'success', actor: actor?.sub ?? null, ctx, details: { kid: out.signing.kid, previous_kid: out.previous, alg: out.signing.alg } });
    return { signing: out.signing, keys: this.keyring.list() };
  }

  private keyDetails(r: ApiKeyRecord): Record<string, unknown> {
    return { key_id: r.id, masked: r.masked, name: r.name, scopes: r.scopes, ...(r.owner_sub ? { owner_sub: r.owner_sub } : {}), ...(r.external_id ? { external_id: r.external_id } : {}) };
  }
}
