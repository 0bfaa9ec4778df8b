import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { OPA_URL, REPO_ROOT } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { rejection, startAuthz, uniqueTenant, type RunningAuthz } from './helpers.js';

/** Against the real OPA server (infra/policy served with --watch) and the real Kafka. */
describe('authz policies against the real OPA server', () => {
  let authz: RunningAuthz;
  let events: TopicCollector;
  const acme = uniqueTenant('acme');
  const trusted = 'trusted';

  beforeAll(async () => {
    events = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['service'] === 'authz').start();
    authz = await startAuthz({
      OPA_URL,
      // Long TTL: any fresh answer after a policy change below is due to invalidation, not expiry.
      AUTHZ_DECISION_CACHE_TTL_MS: '120000',
      OPA_POLICY_POLL_MS: '200',
    });
    await waitFor(async () => (await fetch(`${authz.httpUrl}/v1/policies`).then((r) => r.json()) as { revision: string | null }).revision, { what: 'policy set loaded' });
  });

  afterAll(async () => {
    await authz?.stop();
    await events?.stop();
  });

  it('applies the seed examples: code_execution denied for acme, allowed for trusted; web_search allowed', async () => {
    const denied = await authz.client.checkTool('code_execution', { sub: 'u-acme', tenant: acme, persona_id: 'p1' });
    expect(denied).toMatchObject({ allowed: false, reason: 'policy_violation' });
    expect(denied.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await authz.client.checkTool('code_execution', { sub: 'u-t', tenant: trusted })).toMatchObject({ allowed: true, reason: 'allowed' });
    expect(await authz.client.checkTool('web_search', { sub: 'u-acme', tenant: acme })).toMatchObject({ allowed: true, reason: 'allowed' });
    expect(await authz.client.checkTool('file_delete', { sub: 'u-t', tenant: trusted })).toMatchObject({ allowed: false, reason: 'policy_violation' });
  });

  it('audits grants per AUTHZ_GRANTED_EVENTS: all and sampled (rate 1) emit authorization_granted with the decision_id; sampled at rate 0 emits none', async () => {
    const byDecision = (id: string) => () => events.messages.map((m) => m.json!).find((e) => (e['details'] as Record<string, unknown>)['decision_id'] === id);
    for (const [mode, rate, audited] of [['all', '0', true], ['sampled', '1', true], ['sampled', '0', false]] as const) {
      const other = await startAuthz({ OPA_URL, AUTHZ_GRANTED_EVENTS: mode, AUTHZ_GRANTED_SAMPLE_RATE: rate });
      try {
        const g = await other.client.checkTool('web_search', { sub: `granted-${mode}-${rate}`, tenant: acme });
        expect(g.allowed).toBe(true);
        await other.service.events.flush();
        if (audited) {
          expect(await waitFor(byDecision(g.decision_id), { what: `authorization_granted (${mode} ${rate})` })).toMatchObject({
            type: 'authorization_granted', tenant: acme, action: 'check_tool', resource: 'web_search', outcome: 'success', reason: 'allowed', actor: { user_id: `granted-${mode}-${rate}` },
          });
        } else {
          // A denial sent after the grant arrives, so the grant would have arrived before it had it been sent.
          const d = await other.client.checkTool('code_execution', { sub: 'marker', tenant: acme });
          await other.service.events.flush();
          await waitFor(byDecision(d.decision_id), { what: 'marker denial' });
          expect(byDecision(g.decision_id)()).toBeUndefined();
        }
      } finally {
        await other.stop();
      }
    }
  });

  it('audits the denial on Kafka with the same decision_id the caller got', async () => {
    const d = await authz.client.checkTool('code_execution', { sub: 'audited-user', tenant: acme, persona_id: 'persona-9' });
    const event = await waitFor(() => events.messages.map((m) => m.json!).find((e) => (e['details'] as Record<string, unknown>)['decision_id'] === d.decision_id), { what: 'authorization_denied event' });
    expect(event).toMatchObject({
      type: 'authorization_denied',
      service: 'authz',
      tenant: acme,
      action: 'check_tool',
      resource: 'code_execution',
      outcome: 'denied',
      reason: 'policy_violation',
      actor: { user_id: 'audited-user' },
    });
    // Grants are not audited by default (AUTHZ_GRANTED_EVENTS=none).
    const g = await authz.client.checkTool('web_search', { sub: 'granted-user', tenant: acme });
    await authz.service.events.flush();
    expect(events.messages.some((m) => (m.json?.['details'] as Record<string, unknown>)['decision_id'] === g.decision_id)).toBe(false);
  });

  it('answers Evaluate with the raw result and the same decision as CheckTool', async () => {
    const r = await authz.client.evaluate('tool_policy.allow', { tool: 'code_execution', tenant: 'trusted' });
    expect(r.decision).toMatchObject({ allowed: true, reason: 'allowed' });
    expect(JSON.parse(r.result_json)).toBe(true);
    const reason = await authz.client.evaluate('tool_policy/reason', { tool: 'code_execution', tenant: acme });
    expect(JSON.parse(reason.result_json)).toBe('policy_violation');
    expect(reason.decision.allowed).toBe(false);
    const undef = await authz.client.evaluate(`no_such_package_${randomUUID().slice(0, 8)}/allow`, { a: 1 });
    expect(undef.decision).toMatchObject({ allowed: false, reason: 'undefined' });
    expect(undef.result_json).toBe('');
  });

  it('refuses malformed input as INVALID_ARGUMENT (not a deny, not a crash)', async () => {
    const call = (method: string, req: unknown) => (authz.client as unknown as { call(m: string, r: unknown): Promise<unknown> }).call(method, req);
    expect(await rejection(call('Evaluate', { path: 'tool_policy/allow', input_json: '{not json' }))).toEqual({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
    expect((await rejection(call('Evaluate', { path: 'tool_policy/allow', input_json: '"a string"' }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(call('Evaluate', { path: '../../v1/policies', input_json: '{}' }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(call('CheckTool', { tool: 'web_search' }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(call('CheckTool', { tool: '', principal: { sub: 'x', tenant: acme } }))).code).toBe(status.INVALID_ARGUMENT);
    // Still serving afterwards.
    expect((await authz.client.checkTool('web_search', { sub: 'x', tenant: acme })).allowed).toBe(true);
  });

  it('answers relationship calls with FAILED_PRECONDITION while OpenFGA is disabled', async () => {
    const r = await rejection(authz.client.check({ user: 'user:a', relation: 'viewer', object: 'session:s' }));
    expect(r).toEqual({ code: status.FAILED_PRECONDITION, reason: 'RELATIONSHIPS_DISABLED' });
  });

  it('serves a read-only view of the loaded policies over HTTP', async () => {
    const view = (await (await fetch(`${authz.httpUrl}/v1/policies`)).json()) as { mode: string; revision: string; policies: { id: string }[] };
    expect(view.mode).toBe('server');
    const tool = view.policies.find((p) => p.id.endsWith('infra/policy/tool_policy.rego'));
    expect(tool).toBeDefined();
    const src = (await (await fetch(`${authz.httpUrl}/v1/policies/source?id=${encodeURIComponent(tool!.id)}`)).json()) as { raw: string };
    expect(src.raw).toContain('package tool_policy');
    expect((await fetch(`${authz.httpUrl}/v1/policies/source?id=nope`)).status).toBe(404);
    expect((await fetch(`${authz.httpUrl}/v1/policies`, { method: 'POST' })).status).toBe(404);
    const metrics = await (await fetch(`${authz.httpUrl}/metrics`)).text();
    expect(metrics).toContain('soma_authz_decisions_total');
  });

  it('drops cached decisions when the policy set changes, without a restart', async () => {
    const pkg = `authz_it_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const file = join(REPO_ROOT, 'infra/policy', `${pkg}.rego`);
    const input = { user: 'cache-probe' };
    try {
      // Undefined now, and cached (the TTL is two minutes).
      expect((await authz.client.evaluate(`${pkg}/allow`, input)).decision.reason).toBe('undefined');
      expect((await authz.client.evaluate(`${pkg}/allow`, input)).decision.cached).toBe(true);
      const before = (await (await fetch(`${authz.httpUrl}/v1/policies`)).json()) as { revision: string };

      await writeFile(file, `package ${pkg}\n\ndefault allow := false\n\nallow if input.user == "cache-probe"\n`);
      // OPA --watch reloads the folder; authz sees a new revision and answers from the new policy.
      const granted = await waitFor(async () => {
        const r = await authz.client.evaluate(`${pkg}/allow`, input);
        return r.decision.allowed ? r : null;
      }, { what: 'new policy answered', timeoutMs: 30_000 });
      expect(granted.decision).toMatchObject({ allowed: true, cached: false });
      const reloaded = await waitFor(() => events.messages.map((m) => m.json!).find((e) => e['type'] === 'policy_reloaded' && e['resource'] !== before.revision), { what: 'policy_reloaded event' });
      expect((reloaded['details'] as Record<string, unknown>)['previous_revision']).toBeTruthy();

      // A change that flips the decision is seen too.
      await writeFile(file, `package ${pkg}\n\ndefault allow := false\n`);
      await waitFor(async () => !(await authz.client.evaluate(`${pkg}/allow`, input)).decision.allowed, { what: 'flipped policy answered', timeoutMs: 30_000 });
    } finally {
      await rm(file, { force: true });
    }
    await waitFor(async () => (await authz.client.evaluate(`${pkg}/allow`, input)).decision.reason === 'undefined', { what: 'removed policy', timeoutMs: 30_000 });
    // The OPA server itself agrees the temporary package is gone.
    const direct = (await (await fetch(`${OPA_URL}/v1/data/${pkg}/allow`, { method: 'POST', body: '{"input":{}}' })).json()) as { result?: unknown };
    expect(direct.result).toBeUndefined();
  });
});

describe('authz against an OPA that does not answer in time', () => {
  it('denies with policy_unavailable after OPA_TIMEOUT_MS', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    // Accepts connections and never answers: a hung policy engine.
    const hung = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as { port: number }).port;
    const authz = await startAuthz({ OPA_URL: `http://127.0.0.1:${port}`, OPA_TIMEOUT_MS: '200', OPA_POLICY_POLL_MS: '60000' });
    try {
      expect(await authz.client.checkTool('web_search', { sub: 'u', tenant: 'trusted' })).toMatchObject({ allowed: false, reason: 'policy_unavailable' });
      expect((await authz.client.evaluate('tool_policy/allow', { tool: 'web_search' })).decision.reason).toBe('policy_unavailable');
    } finally {
      await authz.stop();
      sockets.forEach((s) => s.destroy());
      hung.close();
    }
  });
});

describe('authz configuration', () => {
  it('refuses to start with OpenFGA enabled and no store id, naming the variable', async () => {
    await expect(startAuthz({ OPENFGA_ENABLED: 'true', OPENFGA_STORE_ID: '' })).rejects.toThrow(/OPENFGA_STORE_ID/);
  });
});
