import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthError, AuthErrorCode } from './auth.errors.js';
import type { AuthEvents, RequestContext } from './auth-events.js';
import type { LoginThrottle } from './ports.js';
import type { IssuedToken, TokenService } from './token-service.js';

export interface LoginSettings {
  enabled: boolean;
  password?: string;
  username: string;
  tenant: string;
  scopes: string[];
  sessionSeconds: number;
}

/** Equal-length digests first, so the comparison time depends on neither input's length nor content. */
function constantTimeEquals(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/**
 * Password login for the UI. Order: flood limit per IP → lockout (per account and per IP) → constant-time
 * compare. A locked-out attempt gets LOGIN_LOCKED whether the password was right or wrong (the password
 * is still compared, so the answer's timing does not tell either).
 */
export class LoginService {
  constructor(
    private readonly settings: LoginSettings,
    private readonly throttle: LoginThrottle,
    private readonly tokens: TokenService,
    private readonly events: AuthEvents,
  ) {}

  async login(username: string | undefined, password: string, ctx: RequestContext & { ip_address: string }): Promise<IssuedToken> {
    if (!this.settings.enabled || !this.settings.password) {
      throw new AuthError(AuthErrorCode.LoginDisabled, 'password login is disabled on this deployment (AUTH_ENABLED=false)');
    }
    const account = (username ?? this.settings.username).toLowerCase();
    const tenant = this.settings.tenant;
    if (!(await this.throttle.allowRequest(ctx.ip_address))) {
      this.events.failed('rate_limited', { tenant, method: 'password', sub: account }, ctx);
      throw new AuthError(AuthErrorCode.LoginRateLimited, 'too many login requests, retry later');
    }
    const locked = await this.throttle.isLocked(account, ctx.ip_address);
    const right = constantTimeEquals(password, this.settings.password) && constantTimeEquals(account, this.settings.username.toLowerCase());
    if (locked) {
      this.events.failed('locked', { tenant, method: 'password', sub: account }, ctx);
      throw new AuthError(AuthErrorCode.LoginLocked, 'too many failed attempts, try again later');
    }
    if (!right) {
      const lockedNow = await this.throttle.recordFailure(account, ctx.ip_address);
      this.events.failed('bad_password', { tenant, method: 'password', sub: account }, ctx);
      if (lockedNow) {
        this.events.emit('login_locked', { tenant, action: 'login', resource: `account:${account}`, outcome: 'denied', reason: 'too_many_failures', actor: account, ctx, details: { account } });
      }
      throw new AuthError(AuthErrorCode.BadPassword, 'invalid username or password');
    }
    await this.throttle.recordSuccess(account);
    const issued = await this.tokens.issue({ tenant, sub: account, scopes: this.settings.scopes, ttl_seconds: this.settings.sessionSeconds });
    this.events.succeeded({ tenant, sub: account, method: 'password', credential_id: issued.jti }, ctx);
    this.events.emit('token_issued', { tenant, action: 'issue_token', resource: `jwt:${issued.jti}`, outcome: 'success', actor: account, ctx, details: { jti: issued.jti, kid: issued.kid, exp: issued.exp, via: 'login' } });
    return issued;
  }
}
