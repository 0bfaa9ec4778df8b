import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import type { RequestContext } from '../../domain/auth-events.js';
import { decodeInput } from '@soma/service-runtime';
import { AUTH_RUNTIME, type AuthRuntime } from '../../auth.runtime.js';
import { AuthError, AuthErrorCode } from '../../domain/auth.errors.js';
import { ALL_TENANTS, type Principal } from '../../domain/principal.js';
import {
  ApiKeyRefDto, CreateApiKeyDto, IssueTokenDto, ListApiKeysDto, RevokeSubjectDto, RevokeTokenDto,
  RotateApiKeyDto, RotateTenantApiKeysDto,
} from '../dto.js';
import { decodeAuthenticate, decodeVerifyApiKey, decodeVerifyToken } from './fast-decode.js';
import { apiKeyToWire, budgetFrom, dateOrUndefined, iso, metadataFrom, principalToWire, rateLimitFrom, signingKeyToWire } from '../mappers.js';

const SERVICE = 'AuthService';

function bearerOf(md: Metadata | undefined): string | undefined {
  const v = md?.get('authorization')[0];
  return typeof v === 'string' ? v : undefined;
}

/** The calling peer's address and agent, for the events of administrative calls. */
function ctxOf(md: Metadata | undefined, call: ServerUnaryCall<unknown, unknown> | undefined): RequestContext {
  const peer = call?.getPeer?.() ?? '';
  const m = /^(?:ipv[46]:)?\[?([0-9A-Fa-f:.]+?)\]?:\d+$/.exec(peer);
  const ua = md?.get('user-agent')[0];
  return { ip_address: m ? m[1]! : null, user_agent: typeof ua === 'string' ? ua : null };
}

/** Thin: decode → (admin check) → one domain call → map. Errors leave through the global filter. */
@Controller()
export class AuthGrpcController {
  constructor(@Inject(AUTH_RUNTIME) private readonly rt: AuthRuntime) {}

  private admin(md: Metadata | undefined, tenant: string, ctx?: RequestContext): Promise<Principal> {
    return this.rt.authenticator.requireAdmin(bearerOf(md), tenant, ctx);
  }

  @GrpcMethod(SERVICE, 'IssueToken')
  async issueToken(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(IssueTokenDto, payload);
    const actor = await this.admin(md, req.tenant, ctx);
    const t = await this.rt.admin.issueToken(actor, { tenant: req.tenant, sub: req.sub, persona_id: req.persona_id || 'default', scopes: req.scopes ?? [], ttl_seconds: req.ttl_seconds ?? 0 }, ctx);
    return { token: t.token, token_type: 'Bearer', jti: t.jti, kid: t.kid, issued_at: iso(t.iat), expires_at: iso(t.exp) };
  }

  @GrpcMethod(SERVICE, 'VerifyToken')
  async verifyToken(payload: unknown) {
    const req = decodeVerifyToken(payload);
    const v = await this.rt.authenticator.verifyToken(req.token, req.required_scopes ?? []);
    return { principal: principalToWire(v.principal), jti: v.jti, kid: v.kid, issued_at: iso(v.iat), expires_at: iso(v.exp) };
  }

  @GrpcMethod(SERVICE, 'RevokeToken')
  async revokeToken(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(RevokeTokenDto, payload);
    const actor = await this.admin(md, req.tenant, ctx);
    const exp = dateOrUndefined(req.expires_at, 'expires_at');
    const r = await this.rt.admin.revokeToken(actor, req.tenant, {
      ...(req.jti ? { jti: req.jti } : {}),
      ...(req.token ? { token: req.token } : {}),
      ...(exp ? { expires_at_seconds: Math.floor(Date.parse(exp) / 1000) } : {}),
    }, ctx);
    return { jti: r.jti, revoked_until: iso(r.until) };
  }

  @GrpcMethod(SERVICE, 'CreateApiKey')
  async createApiKey(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(CreateApiKeyDto, payload);
    const actor = await this.admin(md, req.tenant, ctx);
    const budget = budgetFrom(req.budget);
    const rateLimit = rateLimitFrom(req.rate_limit);
    const expires = dateOrUndefined(req.expires_at, 'expires_at');
    const out = await this.rt.admin.createApiKey(actor, {
      tenant: req.tenant, name: req.name, scopes: req.scopes ?? [],
      ...(expires ? { expires_at: expires } : {}),
      ...(req.owner_sub ? { owner_sub: req.owner_sub } : {}),
      ...(req.persona_id ? { persona_id: req.persona_id } : {}),
      ...(req.external_id ? { external_id: req.external_id } : {}),
      metadata: metadataFrom(req.metadata),
      ...(budget ? { budget } : {}),
      ...(rateLimit ? { rate_limit: rateLimit } : {}),
    }, ctx);
    return { key: out.key, api_key: apiKeyToWire(out.record) };
  }

  @GrpcMethod(SERVICE, 'VerifyApiKey')
  async verifyApiKey(payload: unknown) {
    const req = decodeVerifyApiKey(payload);
    const v = await this.rt.authenticator.verifyApiKey(req.key, req.required_scopes ?? []);
    return {
      result: v.result,
      principal: v.principal ? principalToWire(v.principal) : null,
      remaining: String(v.remaining ?? 0),
      retry_after_ms: String(v.retryAfterMs ?? 0),
    };
  }

  @GrpcMethod(SERVICE, 'ListApiKeys')
  async listApiKeys(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(ListApiKeysDto, payload);
    await this.admin(md, req.tenant, ctx);
    const keys = await this.rt.apiKeys.list(req.tenant, req.include_revoked ?? false);
    return { api_keys: keys.map(apiKeyToWire) };
  }

  @GrpcMethod(SERVICE, 'RevokeApiKey')
  async revokeApiKey(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(ApiKeyRefDto, payload);
    const actor = await this.admin(md, req.tenant, ctx);
    return { api_key: apiKeyToWire(await this.rt.admin.revokeApiKey(actor, req.tenant, req.id, ctx)) };
  }

  @GrpcMethod(SERVICE, 'RotateApiKey')
  async rotateApiKey(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(RotateApiKeyDto, payload);
    const actor = await this.admin(md, req.tenant, ctx);
    const out = await this.rt.admin.rotateApiKey(actor, req.tenant, req.id, req.grace_seconds || undefined, ctx);
    return { key: out.key, api_key: apiKeyToWire(out.record), previous: apiKeyToWire(out.previous) };
  }

  @GrpcMethod(SERVICE, 'RotateTenantApiKeys')
  async rotateTenantApiKeys(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(RotateTenantApiKeysDto, payload);
    const actor = await this.admin(md, req.tenant, ctx);
    const out = await this.rt.admin.rotateTenantApiKeys(actor, req.tenant, req.grace_seconds || undefined, ctx);
    return { rotated: out.map((o) => ({ key: o.key, api_key: apiKeyToWire(o.record), previous: apiKeyToWire(o.previous) })) };
  }

  @GrpcMethod(SERVICE, 'Authenticate')
  async authenticate(payload: unknown) {
    const req = decodeAuthenticate(payload);
    const p = await this.rt.authenticator.authenticate(req.bearer, req.required_scopes ?? [], { ip_address: req.ip_address || null, user_agent: req.user_agent || null });
    return { principal: principalToWire(p) };
  }

  @GrpcMethod(SERVICE, 'RevokeSubject')
  async revokeSubject(payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const req = decodeInput(RevokeSubjectDto, payload);
    if (req.tenant === ALL_TENANTS) throw new AuthError(AuthErrorCode.InvalidArgument, 'tenant must be a concrete tenant');
    const actor = await this.admin(md, req.tenant, ctx);
    const r = await this.rt.admin.revokeSubject(actor, req.tenant, req.sub, ctx);
    return { api_keys_revoked: r.apiKeysRevoked, tokens_revoked_before: iso(r.tokensRevokedBefore) };
  }

  @GrpcMethod(SERVICE, 'RotateSigningKey')
  async rotateSigningKey(_payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    const actor = await this.admin(md, ALL_TENANTS, ctx);
    const out = await this.rt.admin.rotateSigningKey(actor, ctx);
    return { signing_key: signingKeyToWire(out.signing), verification_keys: out.keys.map(signingKeyToWire) };
  }

  @GrpcMethod(SERVICE, 'ListSigningKeys')
  async listSigningKeys(_payload: unknown, md: Metadata, call?: ServerUnaryCall<unknown, unknown>) {
    const ctx = ctxOf(md, call);
    await this.admin(md, ALL_TENANTS, ctx);
    return { keys: this.rt.keyring.list().map(signingKeyToWire) };
  }
}
