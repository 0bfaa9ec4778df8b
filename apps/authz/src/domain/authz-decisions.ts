import { isIP } from 'node:net';
import { newDecisionId } from './decision-id.js';
import { AuthzError, AuthzErrorCode } from './authz.errors.js';
import { parseConsistencyToken, mintConsistencyToken } from './consistency-token.js';
import { DecisionCache } from './decision-cache.js';
import { isAllow, normalizePolicyPath, toolInputJson, validateInputJson, type ToolPrincipal } from './policy-input.js';
import {
  RelationshipRequestInvalid,
  RelationshipStoreUnavailable,
  type AuditSink,
  type PolicyEvaluator,
  type RelationshipStore,
  type RelationshipTuple,
} from './ports.js';

export type DenyReason = 'policy_violation' | 'undefined' | 'policy_unavailable' | 'relationship_missing' | 'relationship_unavailable';
export type Reason = 'allowed' | DenyReason;

export interface Decision {
  decision_id: string;
  allowed: boolean;
  reason: Reason;
  cached: boolean;
}

interface PolicyEntry {
  allowed: boolean;
  reason: Reason;
  resultJson: string;
}

interface RelationEntry {
  allowed: boolean;
}

export interface AuthzDecisionsOptions {
  policy: PolicyEvaluator;
  /** undefined when OPENFGA_ENABLED=false: relationship calls are FAILED_PRECONDITION. */
  relationships: RelationshipStore | undefined;
  audit: AuditSink;
  toolPolicyPath: string;
  cacheTtlMs: number;
  cacheMax: number;
  grantedEvents: 'all' | 'sampled' | 'none';
  grantedSampleRate: number;
  /** Called for every decision (metrics); must not throw. */
  onDecision?: (kind: 'tool' | 'evaluate' | 'relationship', reason: Reason, cached: boolean) => void;
  /** Called when an audit event could not be buffered for a denial (the deny stands). */
  onAuditFailure?: (error: unknown, eventType: string) => void;
  random?: () => number;
}

/** The end user's address and agent as the calling service saw them. */
export interface ToolClient {
  ip_address?: string;
  user_agent?: string;
}

/** Who the decision is about, for audit events. */
interface AuditSubject {
  tenant: string;
  userId: string | null;
  /** The end user's address and agent, when the caller passed them on (audit only). */
  client?: ToolClient;
  action: string;
  resource: string;
  details?: Record<string, unknown>;
}

const SYSTEM_TENANT = 'system';
const TYPE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const OBJECT = /^[A-Za-z_][A-Za-z0-9_-]{0,63}:[^\s#:*][^\s#]{0,255}$/;
const USER = /^[A-Za-z_][A-Za-z0-9_-]{0,63}:(\*|[^\s#:*][^\s#]{0,255}(#[A-Za-z_][A-Za-z0-9_-]{0,63})?)$/;
const RELATION = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
export const MAX_BATCH_CHECKS = 50;
export const MAX_TUPLES_PER_WRITE = 100;

/**
 * The authz decisions: policy (OPA) and relationship (OpenFGA) checks with a fail-closed contract.
 * Nothing here throws for an engine failure: an engine that cannot answer yields a deny with a
 * reason. Only malformed requests (INVALID_ARGUMENT) and disabled relationships (FAILED_PRECONDITION)
 * are errors.
 */
export class AuthzDecisions {
  private readonly policyCache: DecisionCache<PolicyEntry>;
  private readonly relationCache: DecisionCache<RelationEntry>;
  private readonly random: () => number;
  private policyRevision: string | null = null;

  constructor(private readonly o: AuthzDecisionsOptions) {
    this.policyCache = new DecisionCache(o.cacheTtlMs, o.cacheMax);
    this.relationCache = new DecisionCache(o.cacheTtlMs, o.cacheMax);
    this.random = o.random ?? Math.random;
  }

  get relationshipsEnabled(): boolean {
    return this.o.relationships !== undefined;
  }

  get revision(): string | null {
    return this.policyRevision;
  }

  get cacheSizes(): { policy: number; relationships: number } {
    return { policy: this.policyCache.size, relationships: this.relationCache.size };
  }

  // ---------------------------------------------------------------- policies (OPA)

  /** The hot path: a cache hit does no I/O besides the (sync, denial-only by default) audit append. */
  async checkTool(tool: string, principal: ToolPrincipal, client: ToolClient = {}): Promise<Decision> {
    if (!tool || tool.length > 128) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'tool must be 1..128 characters');
    if (!principal.tenant || principal.tenant.length > 128) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'principal.tenant must be 1..128 characters');
    if (principal.sub.length > 256 || principal.persona_id.length > 256) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'principal.sub / persona_id must be at most 256 characters');
    const key = `t\u001f${tool}\u001f${principal.tenant}\u001f${principal.sub}\u001f${principal.persona_id}`;
    const subject: AuditSubject = {
      tenant: principal.tenant,
      userId: principal.sub || null,
      client,
      action: 'check_tool',
      resource: tool,
      details: principal.persona_id ? { persona_id: principal.persona_id } : undefined,
    };
    const hit = this.policyCache.get(key);
    if (hit) return this.decide('tool', hit.allowed, hit.reason, true, subject);
    const entry = await this.askPolicy(key, this.o.toolPolicyPath, toolInputJson(tool, principal));
    return this.decide('tool', entry.allowed, entry.reason, false, subject);
  }

  async evaluate(path: string, inputJson: string, principal?: { sub: string; tenant: string } | null): Promise<{ decision: Decision; resultJson: string }> {
    const normalized = normalizePolicyPath(path);
    const input = validateInputJson(inputJson);
    const key = `e\u001f${normalized}\u001f${input}`;
    const subject: AuditSubject = {
      tenant: principal?.tenant || SYSTEM_TENANT,
      userId: principal?.sub || null,
      action: 'evaluate',
      resource: normalized,
    };
    const hit = this.policyCache.get(key);
    const entry = hit ?? (await this.askPolicy(key, normalized, input));
    return { decision: this.decide('evaluate', entry.allowed, entry.reason, hit !== undefined, subject), resultJson: entry.resultJson };
  }

  /** The loaded policy set changed (or OPA became unreachable): no cached decision may outlive it. */
  policyChanged(revision: string | null, policies: string[]): void {
    const previous = this.policyRevision;
    this.policyCache.clear();
    this.policyRevision = revision;
    if (revision === null || previous === null) return;
    this.emit({
      type: 'policy_reloaded',
      tenant: SYSTEM_TENANT,
      action: 'policy_reload',
      resource: revision,
      outcome: 'success',
      reason: null,
      details: { decision_id: newDecisionId(), revision, previous_revision: previous, policies },
    });
  }

  /** First fingerprint of the policy set (start-up, or OPA back after an outage): no event. */
  policyObserved(revision: string): void {
    if (this.policyRevision === null) this.policyCache.clear();
    this.policyRevision = revision;
  }

  private async askPolicy(key: string, path: string, inputJson: string): Promise<PolicyEntry> {
    const generation = this.policyCache.generation;
    const outcome = await this.o.policy.evaluate(path, inputJson);
    let entry: PolicyEntry;
    switch (outcome.kind) {
      case 'unavailable':
        // Never cached: the next call tries the engine again.
        return { allowed: false, reason: 'policy_unavailable', resultJson: '' };
      case 'undefined':
        entry = { allowed: false, reason: 'undefined', resultJson: '' };
        break;
      case 'result': {
        const allowed = isAllow(outcome.value);
        entry = { allowed, reason: allowed ? 'allowed' : 'policy_violation', resultJson: JSON.stringify(outcome.value) };
        break;
      }
    }
    this.policyCache.set(key, entry, generation);
    return entry;
  }

  // ---------------------------------------------------------------- relationships (OpenFGA)

  async check(tuple: RelationshipTuple, consistencyToken: string, tenant: string): Promise<Decision> {
    const store = this.requireRelationships();
    validateTuple(tuple);
    const fresh = parseConsistencyToken(consistencyToken) !== undefined;
    const subject = relationSubject(tuple, tenant, 'check');
    const key = tupleKey(tuple);
    if (!fresh) {
      const hit = this.relationCache.get(key);
      if (hit) return this.decide('relationship', hit.allowed, hit.allowed ? 'allowed' : 'relationship_missing', true, subject);
    }
    const generation = this.relationCache.generation;
    try {
      const allowed = await store.check(tuple, fresh);
      this.relationCache.set(key, { allowed }, generation);
      return this.decide('relationship', allowed, allowed ? 'allowed' : 'relationship_missing', false, subject);
    } catch (e) {
      if (e instanceof RelationshipRequestInvalid) throw new AuthzError(AuthzErrorCode.InvalidArgument, e.message);
      return this.decide('relationship', false, 'relationship_unavailable', false, { ...subject, details: { error: errorText(e) } });
    }
  }

  async batchCheck(items: { correlation_id: string; tuple: RelationshipTuple }[], consistencyToken: string, tenant: string): Promise<{ correlation_id: string; decision: Decision }[]> {
    const store = this.requireRelationships();
    if (items.length === 0 || items.length > MAX_BATCH_CHECKS) throw new AuthzError(AuthzErrorCode.InvalidArgument, `checks must hold 1..${MAX_BATCH_CHECKS} items`);
    const ids = new Set<string>();
    for (const item of items) {
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(item.correlation_id)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'correlation_id must be 1..64 of [A-Za-z0-9_.:-]');
      if (ids.has(item.correlation_id)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'correlation_id must be unique within the batch');
      ids.add(item.correlation_id);
      validateTuple(item.tuple);
    }
    const fresh = parseConsistencyToken(consistencyToken) !== undefined;
    const results = new Map<string, Decision>();
    const misses: { id: string; tuple: RelationshipTuple }[] = [];
    for (const item of items) {
      const hit = fresh ? undefined : this.relationCache.get(tupleKey(item.tuple));
      if (hit) results.set(item.correlation_id, this.decide('relationship', hit.allowed, hit.allowed ? 'allowed' : 'relationship_missing', true, relationSubject(item.tuple, tenant, 'batch_check')));
      else misses.push({ id: item.correlation_id, tuple: item.tuple });
    }
    if (misses.length) {
      const generation = this.relationCache.generation;
      let answers: Map<string, boolean | Error>;
      try {
        answers = await store.batchCheck(misses, fresh);
      } catch (e) {
        answers = new Map(misses.map((m) => [m.id, e as Error]));
      }
      for (const m of misses) {
        const a = answers.get(m.id) ?? new RelationshipStoreUnavailable('no answer for this item');
        const subject = relationSubject(m.tuple, tenant, 'batch_check');
        if (typeof a === 'boolean') {
          this.relationCache.set(tupleKey(m.tuple), { allowed: a }, generation);
          results.set(m.id, this.decide('relationship', a, a ? 'allowed' : 'relationship_missing', false, subject));
        } else {
          results.set(m.id, this.decide('relationship', false, 'relationship_unavailable', false, { ...subject, details: { error: errorText(a) } }));
        }
      }
    }
    return items.map((i) => ({ correlation_id: i.correlation_id, decision: results.get(i.correlation_id)! }));
  }

  /** Never cached (lists are not invalidated per object); `fresh` picks higher consistency. */
  async listObjects(user: string, relation: string, type: string, consistencyToken: string): Promise<{ objects: string[]; truncated: boolean; decision_id: string }> {
    const store = this.requireRelationships();
    if (!USER.test(user)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'user must look like type:id or type:id#relation');
    if (!RELATION.test(relation)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'relation must be an identifier');
    if (!TYPE.test(type)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'type must be an identifier');
    const fresh = parseConsistencyToken(consistencyToken) !== undefined;
    try {
      const r = await store.listObjects(user, relation, type, fresh);
      return { ...r, decision_id: newDecisionId() };
    } catch (e) {
      if (e instanceof RelationshipRequestInvalid) throw new AuthzError(AuthzErrorCode.InvalidArgument, e.message);
      throw new AuthzError(AuthzErrorCode.Unavailable, 'the relationship store is unavailable', { error: errorText(e) });
    }
  }

  async writeTuples(tuples: RelationshipTuple[], tenant: string, actor: string): Promise<{ consistency_token: string; decision_id: string; count: number }> {
    return this.mutate('write', tuples, tenant, actor);
  }

  async deleteTuples(tuples: RelationshipTuple[], tenant: string, actor: string): Promise<{ consistency_token: string; decision_id: string; count: number }> {
    return this.mutate('delete', tuples, tenant, actor);
  }

  /** OpenFGA's change feed reported changes (ours or another instance's): drop relationship answers. */
  relationshipsChanged(): void {
    this.relationCache.clear();
  }

  private async mutate(op: 'write' | 'delete', tuples: RelationshipTuple[], tenant: string, actor: string) {
    const store = this.requireRelationships();
    if (tuples.length === 0 || tuples.length > MAX_TUPLES_PER_WRITE) throw new AuthzError(AuthzErrorCode.InvalidArgument, `tuples must hold 1..${MAX_TUPLES_PER_WRITE} items`);
    tuples.forEach(validateTuple);
    if (tenant.length > 128 || actor.length > 256) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'tenant / actor too long');
    try {
      if (op === 'write') await store.write(tuples);
      else await store.delete(tuples);
    } catch (e) {
      if (e instanceof RelationshipRequestInvalid) throw new AuthzError(AuthzErrorCode.InvalidArgument, e.message);
      throw new AuthzError(AuthzErrorCode.RelationshipWriteFailed, `the relationship store did not accept the ${op}`, { error: errorText(e) });
    } finally {
      // Even a failed write may have landed; this instance never serves an answer older than it.
      this.relationCache.clear();
    }
    const decisionId = newDecisionId();
    const token = mintConsistencyToken();
    try {
      this.o.audit.publish({
        type: op === 'write' ? 'relationship_written' : 'relationship_deleted',
        tenant: tenant || SYSTEM_TENANT,
        action: op === 'write' ? 'write_tuples' : 'delete_tuples',
        resource: tuples.length === 1 ? tuples[0]!.object : `${tuples.length} tuples`,
        outcome: 'success',
        reason: null,
        actor: { user_id: actor || null },
        details: { decision_id: decisionId, count: tuples.length, tuples: tuples.slice(0, 20) },
      });
    } catch (e) {
      throw new AuthzError(AuthzErrorCode.AuditUnavailable, 'the change was applied but could not be audited; retry', { error: errorText(e) });
    }
    return { consistency_token: token, decision_id: decisionId, count: tuples.length };
  }

  private requireRelationships(): RelationshipStore {
    if (!this.o.relationships) {
      throw new AuthzError(AuthzErrorCode.RelationshipsDisabled, 'relationship checks are disabled (OPENFGA_ENABLED=false); set OPENFGA_ENABLED, OPENFGA_STORE_ID and OPENFGA_API_URL');
    }
    return this.o.relationships;
  }

  // ---------------------------------------------------------------- decisions and audit

  private decide(kind: 'tool' | 'evaluate' | 'relationship', allowed: boolean, reason: Reason, cached: boolean, s: AuditSubject): Decision {
    const decision: Decision = { decision_id: newDecisionId(), allowed, reason, cached };
    this.o.onDecision?.(kind, reason, cached);
    if (!allowed) {
      // The deny stands whether or not its event can be buffered: a refusal needs no audit to be safe.
      try {
        this.publishDecision('authorization_denied', decision, s);
      } catch (e) {
        this.o.onAuditFailure?.(e, 'authorization_denied');
      }
    } else if (this.o.grantedEvents === 'all' || (this.o.grantedEvents === 'sampled' && this.random() < this.o.grantedSampleRate)) {
      // An audited grant that cannot be audited is not granted.
      try {
        this.publishDecision('authorization_granted', decision, s);
      } catch (e) {
        throw new AuthzError(AuthzErrorCode.AuditUnavailable, 'the decision could not be audited', { error: errorText(e) });
      }
    }
    return decision;
  }

  private publishDecision(type: 'authorization_denied' | 'authorization_granted', d: Decision, s: AuditSubject): void {
    this.o.audit.publish({
      type,
      tenant: s.tenant,
      action: s.action,
      resource: s.resource,
      outcome: d.allowed ? 'success' : 'denied',
      reason: d.reason,
      actor: {
        user_id: s.userId,
        // Not an address: dropped rather than letting the event fail validation downstream.
        ip_address: s.client?.ip_address && isIP(s.client.ip_address) ? s.client.ip_address : null,
        user_agent: s.client?.user_agent ? s.client.user_agent.slice(0, 1024) : null,
      },
      details: { decision_id: d.decision_id, cached: d.cached, ...s.details },
    });
  }

  private emit(event: Parameters<AuditSink['publish']>[0]): void {
    try {
      this.o.audit.publish(event);
    } catch (e) {
      this.o.onAuditFailure?.(e, event.type);
    }
  }
}

function validateTuple(t: RelationshipTuple | null | undefined): void {
  if (!t) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'tuple is required');
  if (!USER.test(t.user)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'tuple.user must look like type:id or type:id#relation');
  if (!RELATION.test(t.relation)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'tuple.relation must be an identifier');
  if (!OBJECT.test(t.object)) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'tuple.object must look like type:id');
}

function tupleKey(t: RelationshipTuple): string {
  return `${t.user}\u001f${t.relation}\u001f${t.object}`;
}

function relationSubject(t: RelationshipTuple, tenant: string, action: string): AuditSubject {
  return { tenant: tenant || SYSTEM_TENANT, userId: t.user, action, resource: t.object, details: { relation: t.relation } };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message.slice(0, 200) : String(e).slice(0, 200);
}

export { RelationshipStoreUnavailable };
