import { isIP } from 'node:net';
import type { SecurityEventType } from '@soma/contracts';
import { AuthError, AuthErrorCode } from './auth.errors.js';
import type { Clock, SecurityEventSink } from './ports.js';

export interface RequestContext {
  ip_address?: string | null;
  user_agent?: string | null;
}

const UNKNOWN_TENANT = 'unknown';

type EmitInput = { tenant?: string; action: string; resource?: string; outcome: 'success' | 'failure' | 'denied' | 'error'; reason?: string | null; actor?: string | null; ctx?: RequestContext; details?: Record<string, unknown> };

/** Caller-supplied addresses (Authenticate's ip_address) that are not an IP are recorded as unknown, not refused. */
function ipOrNull(ip: string | null | undefined): string | null {
  if (!ip) return null;
  const bare = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  return isIP(bare) ? bare : null;
}

/**
 * Security events of the auth service. Credentials never enter: only ids (jti, key id, kid) and
 * reasons. `authentication_succeeded` is on the hot path, so it is emitted at most once per
 * credential per window (details.sampled = true); every failure is emitted, except identical
 * failures (same reason, tenant, ip) within one second, which are folded into the next event's
 * `details.suppressed` count so a flood cannot fill the event buffer.
 */
export class AuthEvents {
  private readonly successSeen = new Map<string, number>();
  private readonly failureSeen = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly sink: SecurityEventSink,
    private readonly clock: Clock,
    private readonly successWindowMs: number,
  ) {}

  emit(type: SecurityEventType, input: EmitInput): void {
    try {
      this.publish(type, input);
    } catch (e) {
      // Buffer at its bound: refuse the action rather than perform it unaudited (fail closed).
      if ((e as Error)?.name === 'EventBufferFullError') throw new AuthError(AuthErrorCode.Unavailable, 'security event buffer full', { type });
      throw e;
    }
  }

  private publish(type: SecurityEventType, input: EmitInput): void {
    this.sink.publish({
      type,
      tenant: input.tenant || UNKNOWN_TENANT,
      action: input.action,
      resource: input.resource ?? '',
      outcome: input.outcome,
      reason: input.reason ?? null,
      actor: { user_id: input.actor?.slice(0, 256) ?? null, ip_address: ipOrNull(input.ctx?.ip_address), user_agent: input.ctx?.user_agent?.slice(0, 1024) ?? null },
      details: input.details ?? {},
    });
  }

  succeeded(p: { tenant: string; sub: string; method: string; credential_id: string }, ctx?: RequestContext): void {
    const now = this.clock.now();
    const key = `${p.method}:${p.credential_id}`;
    const last = this.successSeen.get(key);
    if (last !== undefined && now - last < this.successWindowMs) return;
    this.emit('authentication_succeeded', {
      tenant: p.tenant, action: 'authenticate', resource: `${p.method}:${p.credential_id}`, outcome: 'success', actor: p.sub, ctx,
      details: { method: p.method, credential_id: p.credential_id, sampled: this.successWindowMs > 0, window_seconds: this.successWindowMs / 1000 },
    });
    // Only once the event is buffered: a refused event must not open a window of unaudited successes.
    if (this.successSeen.size > 100_000) this.successSeen.clear();
    this.successSeen.set(key, now);
  }

  failed(reason: string, input: { tenant?: string; method: string; credential_id?: string; sub?: string }, ctx?: RequestContext): void {
    const now = this.clock.now();
    const key = `${reason}|${input.tenant ?? ''}|${ctx?.ip_address ?? ''}`;
    const seen = this.failureSeen.get(key);
    if (seen && now - seen.at < 1000) {
      seen.suppressed++;
      return;
    }
    this.emit('authentication_failed', {
      tenant: input.tenant, action: 'authenticate', resource: input.credential_id ? `${input.method}:${input.credential_id}` : input.method, outcome: 'failure', reason,
      actor: input.sub ?? null, ctx, details: { method: input.method, ...(input.credential_id ? { credential_id: input.credential_id } : {}), suppressed_before: seen?.suppressed ?? 0 },
    });
    if (this.failureSeen.size > 100_000) this.failureSeen.clear();
    this.failureSeen.set(key, { at: now, suppressed: 0 });
  }
}
