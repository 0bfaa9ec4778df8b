import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Ip, Param, Post, Query, Header } from '@nestjs/common';
import { decodeInput } from '@soma/service-runtime';
import { AUTH_RUNTIME, type AuthRuntime } from '../../auth.runtime.js';
import { AuthError, AuthErrorCode } from '../../domain/auth.errors.js';
import type { RequestContext } from '../../domain/auth-events.js';
import { CreateApiKeyDto, LoginDto, RotateTenantApiKeysDto } from '../dto.js';
import { apiKeyToWire, budgetFrom, dateOrUndefined, iso, metadataFrom, rateLimitFrom } from '../mappers.js';

const TENANT = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const KEY_ID = /^ak_[A-Za-z0-9]{1,64}$/;

function checkParam(value: string, re: RegExp, name: string): string {
  if (!re.test(value)) throw new AuthError(AuthErrorCode.InvalidArgument, `invalid ${name}`);
  return value;
}

/** POST /v1/login and the JWKS. */
@Controller()
export class AuthHttpController {
  constructor(@Inject(AUTH_RUNTIME) private readonly rt: AuthRuntime) {}

  @Post('v1/login')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async login(@Body() body: unknown, @Ip() ip: string, @Headers('user-agent') ua?: string) {
    const req = decodeInput(LoginDto, body);
    const t = await this.rt.login.login(req.username, req.password, { ip_address: ip || 'unknown', user_agent: ua ?? null });
    return { access_token: t.token, token_type: 'Bearer', expires_in: t.exp - t.iat, expires_at: iso(t.exp) };
  }

  @Get('.well-known/jwks.json')
  @Header('Cache-Control', 'public, max-age=60')
  jwks() {
    return this.rt.keyring.jwks();
  }
}

/** REST admin API for API keys: every route requires a bearer credential with auth:admin for the tenant. */
@Controller('v1/tenants/:tenant/api-keys')
export class ApiKeysHttpController {
  constructor(@Inject(AUTH_RUNTIME) private readonly rt: AuthRuntime) {}

  private async admin(authorization: string | undefined, tenant: string, ctx: RequestContext) {
    return this.rt.authenticator.requireAdmin(authorization, checkParam(tenant, TENANT, 'tenant'), ctx);
  }

  @Post()
  @Header('Cache-Control', 'no-store')
  async create(@Param('tenant') tenant: string, @Body() body: unknown, @Headers('authorization') authz: string | undefined, @Ip() ip: string, @Headers('user-agent') ua?: string) {
    const ctx = { ip_address: ip, user_agent: ua ?? null };
    const actor = await this.admin(authz, tenant, ctx);
    const req = decodeInput(CreateApiKeyDto, { ...(body as object), tenant });
    const budget = budgetFrom(req.budget);
    const rateLimit = rateLimitFrom(req.rate_limit);
    const expires = dateOrUndefined(req.expires_at, 'expires_at');
    const out = await this.rt.admin.createApiKey(actor, {
      tenant, name: req.name, scopes: req.scopes ?? [],
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

  @Get()
  async list(@Param('tenant') tenant: string, @Query('include_revoked') includeRevoked: string | undefined, @Headers('authorization') authz: string | undefined, @Ip() ip: string) {
    await this.admin(authz, tenant, { ip_address: ip });
    return { api_keys: (await this.rt.apiKeys.list(tenant, includeRevoked === 'true')).map(apiKeyToWire) };
  }

  @Delete(':id')
  async revoke(@Param('tenant') tenant: string, @Param('id') id: string, @Headers('authorization') authz: string | undefined, @Ip() ip: string) {
    const actor = await this.admin(authz, tenant, { ip_address: ip });
    return { api_key: apiKeyToWire(await this.rt.admin.revokeApiKey(actor, tenant, checkParam(id, KEY_ID, 'id'), { ip_address: ip })) };
  }

  @Post(':id/rotate')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async rotate(@Param('tenant') tenant: string, @Param('id') id: string, @Body() body: unknown, @Headers('authorization') authz: string | undefined, @Ip() ip: string) {
    const actor = await this.admin(authz, tenant, { ip_address: ip });
    const req = decodeInput(RotateTenantApiKeysDto, { ...((body as object) ?? {}), tenant });
    const out = await this.rt.admin.rotateApiKey(actor, tenant, checkParam(id, KEY_ID, 'id'), req.grace_seconds || undefined, { ip_address: ip });
    return { key: out.key, api_key: apiKeyToWire(out.record), previous: apiKeyToWire(out.previous) };
  }
}
