import { createHash } from 'node:crypto';
import { ExpiringCache } from '@soma/expiring-cache';
import type { AccessDecision, Caller, SecretAction } from './ports.js';

export interface AccessCacheOptions {
  /** How long auth's answer for a credential is reused (bound of the delay before a revocation bites). 0 = never. */
  callerTtlMs: number;
  /** How long an allow decision is reused (bound of the delay before a removed grant bites). 0 = never. */
  decisionTtlMs: number;
  /** Entry bounds of each map (memory stays bounded whatever callers send). */
  maxCallers: number;
  maxDecisions: number;
}

/**
 * What the secrets service remembers between calls so that a repeated read does not ask auth and authz
 * again: the principal auth returned for a credential, and authz's allow for (caller, action, name).
 *
 * - Credentials are keyed by their SHA-256, never stored; only successful authentications are kept, and
 *   never beyond the credential's own expiry (auth's `expires_at`), so an expired JWT is asked about again.
 * - Only allows are kept. A deny, a refusal and an unavailable authz are asked again on the next call
 *   (fail closed stays: nothing is ever allowed from a failure).
 * - The decision key holds every field the policy input holds (sub, tenant, persona, method, scopes,
 *   action, name): a caller whose scopes changed gets a new key, not the old answer.
 *
 * Revocation delay: a revoked credential keeps working for at most `callerTtlMs`, a removed grant (policy
 * change) for at most `decisionTtlMs` (plus authz's own AUTHZ_DECISION_CACHE_TTL_MS behind it).
 */
export class AccessCache {
  private readonly callers: ExpiringCache<Caller> | undefined;
  private readonly decisions: ExpiringCache<AccessDecision> | undefined;

  constructor(private readonly o: AccessCacheOptions) {
    this.callers = o.callerTtlMs > 0 ? new ExpiringCache(o.maxCallers) : undefined;
    this.decisions = o.decisionTtlMs > 0 ? new ExpiringCache(o.maxDecisions) : undefined;
  }

  /** False when SECRETS_CALLER_CACHE_TTL_MS is 0: the credential need not even be hashed. */
  get cachesCallers(): boolean {
    return this.callers !== undefined;
  }

  /** The cache key of a credential: its SHA-256, so the map never holds a usable credential. */
  static credentialKey(credential: string): string {
    return createHash('sha256').update(credential).digest('base64url');
  }

  caller(credentialKey: string, now: number): Caller | undefined {
    return this.callers?.get(credentialKey, now);
  }

  rememberCaller(credentialKey: string, caller: Caller, now: number): void {
    if (!this.callers) return;
    const until = Math.min(now + this.o.callerTtlMs, caller.expiresAtMs ?? Number.POSITIVE_INFINITY);
    this.callers.set(credentialKey, caller, until, now);
  }

  decision(caller: Caller, action: SecretAction, name: string, now: number): AccessDecision | undefined {
    return this.decisions?.get(decisionKey(caller, action, name), now);
  }

  /** Keeps allows only; anything else is forgotten so that the next call asks again. */
  rememberDecision(caller: Caller, action: SecretAction, name: string, decision: AccessDecision, now: number): void {
    if (!this.decisions || decision.allowed !== true) return;
    const until = Math.min(now + this.o.decisionTtlMs, caller.expiresAtMs ?? Number.POSITIVE_INFINITY);
    this.decisions.set(decisionKey(caller, action, name), decision, until, now);
  }
}

/**
 * Unambiguous: JSON of an array of strings cannot be produced by two different arrays. Scopes are kept in
 * auth's order (a re-ordered scope list is merely a miss).
 */
function decisionKey(caller: Caller, action: SecretAction, name: string): string {
  return JSON.stringify([caller.sub, caller.tenant, caller.personaId, caller.method, action, name, caller.scopes]);
}
