import { describe, it, expect, beforeEach } from 'vitest';
import { AuthzDecisions } from './authz-decisions.js';
import { AuthzError, AuthzErrorCode } from './authz.errors.js';
import { mintConsistencyToken } from './consistency-token.js';
import { RelationshipRequestInvalid, RelationshipStoreUnavailable, type AuditSink, type PolicyEvaluator, type PolicyOutcome, type RelationshipStore, type RelationshipTuple } from './ports.js';

type Published = Parameters<AuditSink['publish']>[0];

class FakePolicy implements PolicyEvaluator {
  readonly mode = 'server' as const;
  calls: { path: string; input: unknown }[] = [];
  next: (path: string, input: Record<string, unknown>) => PolicyOutcome = (_p, input) => ({
    kind: 'result',
    value: input['tool'] === 'web_search' || (input['tool'] === 'code_execution' && input['tenant'] === 'trusted'),
  });
  async evaluate(path: string, inputJson: string): Promise<PolicyOutcome> {
    const input = JSON.parse(inputJson) as Record<string, unknown>;
    this.calls.push({ path, input });
    return this.next(path, input);
  }
}

class FakeStore implements RelationshipStore {
  tuples = new Set<string>();
  down = false;
  freshCalls = 0;
  checks = 0;
  private has(t: RelationshipTuple): boolean {
    if (this.tuples.has(`${t.user}|${t.relation}|${t.object}`)) return true;
    return t.relation === 'viewer' && this.tuples.has(`${t.user}|owner|${t.object}`);
  }
  async check(t: RelationshipTuple, fresh: boolean): Promise<boolean> {
    this.checks++;
    if (fresh) this.freshCalls++;
    if (this.down) throw new RelationshipStoreUnavailable('connect ECONNREFUSED');
    if (t.relation === 'bogus') throw new RelationshipRequestInvalid('relation bogus not found');
    return this.has(t);
  }
  async batchCheck(items: { id: string; tuple: RelationshipTuple }[]): Promise<Map<string, boolean | Error>> {
    if (this.down) throw new RelationshipStoreUnavailable('down');
    return new Map(items.map((i) => [i.id, this.has(i.tuple)]));
  }
  async listObjects(user: string, relation: string, type: string, fresh: boolean) {
    if (fresh) this.freshCalls++;
    const objects = [...this.tuples].map((s) => s.split('|')).filter(([u, r, o]) => u === user && (r === relation || (relation === 'viewer' && r === 'owner')) && o!.startsWith(`${type}:`)).map((x) => x[2]!);
    return { objects, truncated: false };
  }
  async write(ts: RelationshipTuple[]) {
    if (this.down) throw new RelationshipStoreUnavailable('down');
    ts.forEach((t) => this.tuples.add(`${t.user}|${t.relation}|${t.object}`));
  }
  async delete(ts: RelationshipTuple[]) {
    ts.forEach((t) => this.tuples.delete(`${t.user}|${t.relation}|${t.object}`));
  }
}

class FakeAudit implements AuditSink {
  events: Published[] = [];
  full = false;
  publish(e: Published) {
    if (this.full) throw new Error('event buffer full');
    this.events.push(e);
    return e;
  }
}

const alice = { sub: 'alice', tenant: 'acme', persona_id: '' };
const trusted = { sub: 'bob', tenant: 'trusted', persona_id: 'p1' };

function make(over: Partial<ConstructorParameters<typeof AuthzDecisions>[0]> = {}) {
  const policy = new FakePolicy();
  const store = new FakeStore();
  const audit = new FakeAudit();
  const authz = new AuthzDecisions({
    policy,
    relationships: store,
    audit,
    toolPolicyPath: 'tool_policy/allow',
    cacheTtlMs: 60_000,
    cacheMax: 1000,
    grantedEvents: 'none',
    grantedSampleRate: 0,
    ...over,
  });
  return { policy, store, audit, authz };
}

async function expectCode(p: Promise<unknown>, code: AuthzErrorCode) {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(AuthzError);
  expect((e as AuthzError).code).toBe(code);
}

describe('AuthzDecisions: tool policy', () => {
  let t: ReturnType<typeof make>;
  beforeEach(() => {
    t = make();
  });

  it('applies the seed examples and builds the input from the principal', async () => {
    const denied = await t.authz.checkTool('code_execution', alice);
    expect(denied).toMatchObject({ allowed: false, reason: 'policy_violation', cached: false });
    expect((await t.authz.checkTool('code_execution', trusted)).allowed).toBe(true);
    expect((await t.authz.checkTool('web_search', alice)).allowed).toBe(true);
    expect(t.policy.calls[0]).toEqual({
      path: 'tool_policy/allow',
      input: { tool: 'code_execution', tenant: 'acme', user: 'alice', persona_id: '', principal: { sub: 'alice', tenant: 'acme', persona_id: '' } },
    });
  });

  it('audits every denial with the decision id, and no grant by default', async () => {
    const d = await t.authz.checkTool('code_execution', alice);
    await t.authz.checkTool('web_search', alice);
    expect(t.audit.events).toHaveLength(1);
    expect(t.audit.events[0]).toMatchObject({
      type: 'authorization_denied',
      tenant: 'acme',
      action: 'check_tool',
      resource: 'code_execution',
      outcome: 'denied',
      reason: 'policy_violation',
      actor: { user_id: 'alice' },
      details: { decision_id: d.decision_id },
    });
    expect(d.decision_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  });

  it('audits grants when configured all, and fails closed when a grant cannot be audited', async () => {
    const all = make({ grantedEvents: 'all' });
    const g = await all.authz.checkTool('web_search', alice);
    expect(all.audit.events[0]).toMatchObject({ type: 'authorization_granted', outcome: 'success', details: { decision_id: g.decision_id } });
    all.audit.full = true;
    await expectCode(all.authz.checkTool('web_search', alice), AuthzErrorCode.AuditUnavailable);
  });

  it('samples grants at the configured rate', async () => {
    let n = 0;
    const s = make({ grantedEvents: 'sampled', grantedSampleRate: 0.5, random: () => (n++ % 2 === 0 ? 0.1 : 0.9) });
    for (let i = 0; i < 10; i++) await s.authz.checkTool('web_search', { ...alice, sub: `u${i}` });
    expect(s.audit.events.filter((e) => e.type === 'authorization_granted')).toHaveLength(5);
  });

  it('keeps denying when the denial cannot be audited', async () => {
    t.audit.full = true;
    const failures: string[] = [];
    const x = make({ onAuditFailure: (_e, type) => failures.push(type) });
    x.audit.full = true;
    expect((await x.authz.checkTool('code_execution', alice)).allowed).toBe(false);
    expect(failures).toEqual(['authorization_denied']);
  });

  it('fails closed: unavailable and undefined are denies with their reasons, never cached when unavailable', async () => {
    t.policy.next = () => ({ kind: 'unavailable', detail: 'ECONNREFUSED' });
    expect(await t.authz.checkTool('web_search', alice)).toMatchObject({ allowed: false, reason: 'policy_unavailable', cached: false });
    expect(await t.authz.checkTool('web_search', alice)).toMatchObject({ allowed: false, cached: false });
    expect(t.policy.calls).toHaveLength(2);
    t.policy.next = () => ({ kind: 'undefined' });
    expect(await t.authz.checkTool('web_search', trusted)).toMatchObject({ allowed: false, reason: 'undefined' });
  });

  it('allows only an exact true (or {allow: true})', async () => {
    for (const value of [1, 'true', [true], { allow: 'yes' }, null]) {
      t.policy.next = () => ({ kind: 'result', value });
      const r = await t.authz.evaluate('x.y', JSON.stringify({ v: String(value) }));
      expect(r.decision.allowed).toBe(false);
      expect(r.decision.reason).toBe('policy_violation');
    }
    t.policy.next = () => ({ kind: 'result', value: { allow: true, why: 'ok' } });
    const ok = await t.authz.evaluate('x/y', '{"a":1}');
    expect(ok.decision.allowed).toBe(true);
    expect(JSON.parse(ok.resultJson)).toEqual({ allow: true, why: 'ok' });
  });

  it('caches decisions and drops them when the policy changes, with a policy_reloaded event', async () => {
    t.authz.policyObserved('rev1');
    await t.authz.checkTool('web_search', alice);
    const hit = await t.authz.checkTool('web_search', alice);
    expect(hit.cached).toBe(true);
    expect(t.policy.calls).toHaveLength(1);
    t.authz.policyChanged('rev2', ['tool_policy.rego']);
    expect((await t.authz.checkTool('web_search', alice)).cached).toBe(false);
    expect(t.audit.events.find((e) => e.type === 'policy_reloaded')).toMatchObject({ resource: 'rev2', details: { revision: 'rev2', previous_revision: 'rev1' } });
  });

  it('does not store an answer that started before an invalidation', async () => {
    let release!: () => void;
    t.policy.next = () => ({ kind: 'result', value: true });
    const slow = new Promise<void>((r) => (release = r));
    const original = t.policy.evaluate.bind(t.policy);
    t.policy.evaluate = async (p, i) => {
      await slow;
      return original(p, i);
    };
    const inflight = t.authz.checkTool('web_search', alice);
    t.authz.policyChanged('rev9', []);
    release();
    await inflight;
    t.policy.evaluate = original;
    expect((await t.authz.checkTool('web_search', alice)).cached).toBe(false);
  });

  it('refuses malformed input as INVALID_ARGUMENT', async () => {
    await expectCode(t.authz.checkTool('', alice), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.checkTool('web_search', { ...alice, tenant: '' }), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.evaluate('tool_policy/allow', 'not json'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.evaluate('tool_policy/allow', '[1,2]'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.evaluate('../etc/passwd', '{}'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.evaluate('a//b', '{}'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.evaluate('a', JSON.stringify({ big: 'x'.repeat(70_000) })), AuthzErrorCode.InvalidArgument);
    expect(t.policy.calls).toHaveLength(0);
  });
});

describe('AuthzDecisions: relationships', () => {
  let t: ReturnType<typeof make>;
  const owner = { user: 'user:anne', relation: 'owner', object: 'session:s1' };
  const viewer = { ...owner, relation: 'viewer' };
  beforeEach(() => {
    t = make();
  });

  it('answers FAILED_PRECONDITION when OpenFGA is disabled', async () => {
    const off = make({ relationships: undefined });
    await expectCode(off.authz.check(viewer, '', 'acme'), AuthzErrorCode.RelationshipsDisabled);
    await expectCode(off.authz.writeTuples([owner], 'acme', 'admin'), AuthzErrorCode.RelationshipsDisabled);
    await expectCode(off.authz.listObjects('user:anne', 'viewer', 'session', ''), AuthzErrorCode.RelationshipsDisabled);
  });

  it('writes with an event and a token; a check with the token is fresh and skips the cache', async () => {
    expect((await t.authz.check(viewer, '', 'acme')).allowed).toBe(false);
    const w = await t.authz.writeTuples([owner], 'acme', 'admin');
    expect(w.count).toBe(1);
    expect(t.audit.events.at(-1)).toMatchObject({ type: 'relationship_written', tenant: 'acme', actor: { user_id: 'admin' }, details: { decision_id: w.decision_id } });
    const fresh = await t.authz.check(viewer, w.consistency_token, 'acme');
    expect(fresh).toMatchObject({ allowed: true, cached: false });
    expect(t.store.freshCalls).toBe(1);
    expect((await t.authz.check(viewer, '', 'acme')).cached).toBe(true);
    expect((await t.authz.check(viewer, w.consistency_token, 'acme')).cached).toBe(false);
  });

  it('drops cached relationship answers on a change-feed signal', async () => {
    await t.authz.check(viewer, '', 'acme');
    t.store.tuples.add('user:anne|owner|session:s1');
    expect((await t.authz.check(viewer, '', 'acme')).allowed).toBe(false);
    t.authz.relationshipsChanged();
    expect(await t.authz.check(viewer, '', 'acme')).toMatchObject({ allowed: true, cached: false });
  });

  it('denies when OpenFGA is unreachable, and refuses malformed tuples and tokens', async () => {
    t.store.down = true;
    expect(await t.authz.check(viewer, '', 'acme')).toMatchObject({ allowed: false, reason: 'relationship_unavailable' });
    expect(t.audit.events.at(-1)).toMatchObject({ type: 'authorization_denied', reason: 'relationship_unavailable' });
    await expectCode(t.authz.writeTuples([owner], 'acme', 'a'), AuthzErrorCode.RelationshipWriteFailed);
    await expectCode(t.authz.check({ ...viewer, object: 'nocolon' }, '', 'acme'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.check({ ...viewer, user: 'anne' }, '', 'acme'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.check(viewer, 'garbage', 'acme'), AuthzErrorCode.InvalidArgument);
    t.store.down = false;
    await expectCode(t.authz.check({ ...viewer, relation: 'bogus' }, '', 'acme'), AuthzErrorCode.InvalidArgument);
    expect(mintConsistencyToken()).toMatch(/^ct1\./);
  });

  it('batch checks keep caller correlation ids and refuse duplicates', async () => {
    await t.authz.writeTuples([owner], 'acme', 'admin');
    const r = await t.authz.batchCheck(
      [
        { correlation_id: 'a', tuple: viewer },
        { correlation_id: 'b', tuple: { ...viewer, user: 'user:zed' } },
      ],
      '',
      'acme',
    );
    expect(r.map((x) => [x.correlation_id, x.decision.allowed])).toEqual([['a', true], ['b', false]]);
    await expectCode(t.authz.batchCheck([{ correlation_id: 'a', tuple: viewer }, { correlation_id: 'a', tuple: viewer }], '', 'acme'), AuthzErrorCode.InvalidArgument);
    await expectCode(t.authz.batchCheck([], '', 'acme'), AuthzErrorCode.InvalidArgument);
  });

  it('lists objects, fresh with a token', async () => {
    const w = await t.authz.writeTuples([owner], 'acme', 'admin');
    const r = await t.authz.listObjects('user:anne', 'viewer', 'session', w.consistency_token);
    expect(r.objects).toEqual(['session:s1']);
    expect(r.truncated).toBe(false);
    expect(t.store.freshCalls).toBe(1);
  });
});
