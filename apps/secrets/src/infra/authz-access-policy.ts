import { AuthzClient } from '@soma/authz-client';
import type { AccessDecision, AccessPolicy, Caller, RequestContext, SecretAction } from '../domain/ports.js';

/**
 * Access decisions by authz's generic Evaluate on the secrets policy (infra/policy/secrets_policy.rego).
 * Fails closed: an error, a deadline or a non-true answer is a deny.
 */
export class AuthzAccessPolicy implements AccessPolicy {
  constructor(private readonly client: AuthzClient, private readonly path: string, private readonly deadlineMs: number) {}

  async decide(caller: Caller, action: SecretAction, name: string, ctx: RequestContext): Promise<AccessDecision> {
    const input = {
      action,
      secret: { name },
      subject: { sub: caller.sub, tenant: caller.tenant, persona_id: caller.personaId, scopes: [...caller.scopes], auth_method: caller.method },
    };
    try {
      const { decision } = await this.client.evaluate(this.path, input, { sub: caller.sub, tenant: caller.tenant, persona_id: caller.personaId }, { requestId: ctx.requestId, deadlineMs: this.deadlineMs });
      return { allowed: decision.allowed === true, reason: decision.reason || (decision.allowed ? 'allowed' : 'policy_violation'), decisionId: decision.decision_id };
    } catch {
      return { allowed: false, reason: 'policy_unavailable', decisionId: '' };
    }
  }
}
