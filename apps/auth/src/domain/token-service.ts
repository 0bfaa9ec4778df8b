import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { AuthError, AuthErrorCode } from './auth.errors.js';
import { JwsRejected, JwsVerifier, type JwsRejection } from './jws-verifier.js';
import type { Keyring } from './keyring.js';
import type { Clock, RevocationStore } from './ports.js';
import type { Principal } from './principal.js';

export interface TokenSettings {
  issuer: string;
  audience: string;
  expirySeconds: number;
  maxExpirySeconds: number;
  skewSeconds: number;
  maxTokenBytes: number;
  cacheSize: number;
}

export interface IssueTokenInput {
  tenant: string;
  sub: string;
  persona_id?: string;
  scopes?: string[];
  ttl_seconds?: number;
}

export interface IssuedToken {
  token: string;
  jti: string;
  kid: string;
  iat: number;
  exp: number;
}

export interface VerifiedToken {
  principal: Principal;
  jti: string;
  kid: string;
  iat: number;
  exp: number;
}

const MAX_CLAIM_LENGTH = 256;
const MAX_SCOPES = 100;

/** Public reason codes of a refused token (the `soma-reason`); the precise cause goes to logs and events. */
function invalid(reason: JwsRejection | string): AuthError {
  return new AuthError(AuthErrorCode.InvalidToken, 'invalid token', { reason });
}

/** Error detail of a signature-checked token (for logs and failure events; never the token). */
function identify(v: VerifiedToken): { tenant: string; sub: string; jti: string } {
  return { tenant: v.principal.tenant, sub: v.principal.sub, jti: v.jti };
}

function isNumericDate(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function isClaimString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_CLAIM_LENGTH;
}

/**
 * Issues and verifies Soma JWTs. Verification: the JWS layer (pinned alg, closed kid set, no
 * key-bearing headers) then the claims (exp, nbf, iat with skew; iss; aud; sub, tenant, jti present),
 * then the deny-list. Verified tokens are cached (bounded LRU, never past exp); the deny-list is
 * consulted on every call, cached or not.
 */
export class TokenService {
  private readonly verifier: JwsVerifier;
  private readonly cache: LRUCache<string, VerifiedToken> | undefined;

  constructor(
    private readonly keyring: Keyring,
    private readonly revocation: RevocationStore,
    private readonly settings: TokenSettings,
    private readonly clock: Clock,
  ) {
    this.verifier = new JwsVerifier({ algorithms: [keyring.alg], maxBytes: settings.maxTokenBytes });
    this.cache = settings.cacheSize > 0 ? new LRUCache<string, VerifiedToken>({ max: settings.cacheSize }) : undefined;
    keyring.onReload(() => this.cache?.clear());
    revocation.onResync(() => this.cache?.clear());
  }

  async issue(input: IssueTokenInput): Promise<IssuedToken> {
    const ttl = input.ttl_seconds && input.ttl_seconds > 0 ? input.ttl_seconds : this.settings.expirySeconds;
    if (ttl > this.settings.maxExpirySeconds) throw new AuthError(AuthErrorCode.InvalidArgument, 'ttl_seconds exceeds the maximum token lifetime');
    const iat = Math.floor(this.clock.now() / 1000);
    const exp = iat + ttl;
    const jti = randomUUID();
    const { kid, alg, key } = this.keyring.signingKey();
    const scopes = [...new Set(input.scopes ?? [])];
    const token = await new SignJWT({ tenant: input.tenant, persona_id: input.persona_id || 'default', ...(scopes.length ? { scope: scopes.join(' ') } : {}) })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setSubject(input.sub)
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setJti(jti)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .sign(key);
    await this.revocation.recordIssued(jti, input.tenant, exp);
    return { token, jti, kid, iat, exp };
  }

  /** Verify signature and claims only (no deny-list): used to read jti/exp of a token being revoked. */
  async verifySignatureAndClaims(token: string): Promise<VerifiedToken> {
    const cached = this.cache?.get(token);
    if (cached) {
      this.checkTimes(cached.exp, undefined, undefined, cached);
      return cached;
    }
    let verified;
    try {
      verified = await this.verifier.verify(token, this.keyring.lookup);
    } catch (e) {
      if (e instanceof JwsRejected && e.reason === 'unknown_kid') verified = await this.retryUnknownKid(token);
      else throw invalid(e instanceof JwsRejected ? e.reason : 'malformed');
    }
    const out = this.checkClaims(verified.payload, verified.header.kid);
    this.cache?.set(token, out, { ttl: Math.max(1, (out.exp + this.settings.skewSeconds) * 1000 - this.clock.now()) });
    return out;
  }

  async verify(token: string, requiredScopes: readonly string[] = []): Promise<VerifiedToken> {
    const out = await this.verifySignatureAndClaims(token);
    if (await this.revocation.isRevoked(out.jti, out.principal.tenant, out.principal.sub, out.iat)) {
      throw new AuthError(AuthErrorCode.TokenRevoked, 'token revoked', identify(out));
    }
    if (!requiredScopes.every((s) => out.principal.scopes.includes(s))) {
      throw new AuthError(AuthErrorCode.InsufficientScope, 'insufficient scope', identify(out));
    }
    return out;
  }

  /**
   * What a revocation request is about: from the token itself (signature and claims checked), or from a
   * bare jti (tenant from the issuance record, undefined when unknown or already expired).
   */
  async revocationTarget(input: { jti?: string; token?: string; expires_at_seconds?: number }): Promise<{ jti: string; exp?: number; tenant?: string; sub?: string }> {
    if (input.token) {
      const v = await this.verifySignatureAndClaims(input.token);
      return { jti: v.jti, exp: v.exp, tenant: v.principal.tenant, sub: v.principal.sub };
    }
    if (!input.jti) throw new AuthError(AuthErrorCode.InvalidArgument, 'jti or token is required');
    const tenant = await this.revocation.tenantOfIssued(input.jti);
    return { jti: input.jti, ...(input.expires_at_seconds ? { exp: input.expires_at_seconds } : {}), ...(tenant ? { tenant } : {}) };
  }

  /** Deny-list the token id until the token's own expiry (plus skew, so no instance still accepts it). */
  async revoke(target: { jti: string; exp?: number; tenant?: string; sub?: string }): Promise<{ jti: string; until: number; tenant?: string; sub?: string }> {
    const { jti, exp, tenant, sub } = target;
    const now = Math.floor(this.clock.now() / 1000);
    const until = (exp && exp > now ? Math.min(exp, now + this.settings.maxExpirySeconds) : now + this.settings.maxExpirySeconds) + this.settings.skewSeconds;
    await this.revocation.revokeToken(jti, until);
    return { jti, until, ...(tenant ? { tenant } : {}), ...(sub ? { sub } : {}) };
  }

  clearCache(): void {
    this.cache?.clear();
  }

  private async retryUnknownKid(token: string) {
    const kid = this.verifier.inspectKid(token);
    if (!kid || !(await this.keyring.refreshForUnknownKid(kid))) throw invalid('unknown_kid');
    try {
      return await this.verifier.verify(token, this.keyring.lookup);
    } catch (e) {
      throw invalid(e instanceof JwsRejected ? e.reason : 'malformed');
    }
  }

  /** `who` is known only for signature-checked tokens: it lets failure events name the tenant and jti. */
  private checkTimes(exp: number, nbf: number | undefined, iat: number | undefined, who: VerifiedToken): void {
    const now = this.clock.now() / 1000;
    const skew = this.settings.skewSeconds;
    if (now - skew >= exp) throw new AuthError(AuthErrorCode.TokenExpired, 'token expired', identify(who));
    // No token this service issues outlives the maximum lifetime: a later exp is forged or corrupt (and not representable as a date).
    if (exp > now + this.settings.maxExpirySeconds + skew) throw invalid('exp_beyond_max_lifetime');
    if (nbf !== undefined && nbf > now + skew) throw new AuthError(AuthErrorCode.TokenNotYetValid, 'token not yet valid', identify(who));
    if (iat !== undefined && iat > now + skew) throw new AuthError(AuthErrorCode.TokenNotYetValid, 'token issued in the future', identify(who));
  }

  private checkClaims(payload: Uint8Array, kid: string): VerifiedToken {
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      throw invalid('payload_not_json');
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw invalid('payload_not_object');
    const c = claims as Record<string, unknown>;
    if (!isNumericDate(c['exp'])) throw invalid('missing_exp');
    if (c['nbf'] !== undefined && !isNumericDate(c['nbf'])) throw invalid('bad_nbf');
    if (c['iat'] !== undefined && !isNumericDate(c['iat'])) throw invalid('bad_iat');
    if (c['iss'] !== this.settings.issuer) throw invalid('bad_iss');
    const aud = c['aud'];
    if (!(aud === this.settings.audience || (Array.isArray(aud) && aud.length <= 10 && aud.includes(this.settings.audience)))) throw invalid('bad_aud');
    if (!isClaimString(c['sub'])) throw invalid('missing_sub');
    if (!isClaimString(c['tenant'])) throw invalid('missing_tenant');
    if (!isClaimString(c['jti'])) throw invalid('missing_jti');
    if (c['persona_id'] !== undefined && !isClaimString(c['persona_id'])) throw invalid('bad_persona_id');
    if (c['scope'] !== undefined && typeof c['scope'] !== 'string') throw invalid('bad_scope');
    const scopes = typeof c['scope'] === 'string' && c['scope'] ? c['scope'].split(' ').filter(Boolean) : [];
    if (scopes.length > MAX_SCOPES) throw invalid('too_many_scopes');
    const exp = c['exp'];
    const iat = (c['iat'] as number | undefined) ?? 0;
    const out: VerifiedToken = {
      principal: { sub: c['sub'], tenant: c['tenant'], persona_id: (c['persona_id'] as string | undefined) ?? 'default', scopes, method: 'jwt', credential_id: c['jti'], expires_at: exp },
      jti: c['jti'],
      kid,
      iat,
      exp,
    };
    this.checkTimes(exp, c['nbf'] as number | undefined, c['iat'] as number | undefined, out);
    return out;
  }
}
