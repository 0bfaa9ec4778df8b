import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infra, OPA_URL } from '../support/infra.js';
import { waitFor } from '../support/wait.js';
import { holdFaultLock, startAuthz, uniqueTenant, type RunningAuthz } from './helpers.js';

/**
 * Stops the shared OPA server. The stop/start window is held under the fault lock
 * (/tmp/soma-infra-fault.lock, taken by the test itself: do not wrap the run in flock too),
 * and OPA is always started again in afterAll.
 */
describe('authz fails closed while the OPA server is down', () => {
  let authz: RunningAuthz;
  let lock: { release(): Promise<void> } | undefined;
  const tenant = uniqueTenant('outage');

  beforeAll(async () => {
    authz = await startAuthz({ OPA_URL, AUTHZ_DECISION_CACHE_TTL_MS: '120000', OPA_POLICY_POLL_MS: '200', OPA_TIMEOUT_MS: '300' });
    await waitFor(async () => ((await (await fetch(`${authz.httpUrl}/v1/policies`)).json()) as { revision: string | null }).revision, { what: 'policy loaded' });
  });

  afterAll(async () => {
    try {
      if (lock) await infra('up', 'opa');
    } finally {
      await lock?.release();
      await authz?.stop();
    }
  });

  it('denies with policy_unavailable (cached grants included), reports not ready, and recovers when OPA is back', async () => {
    const p = { sub: 'u1', tenant };
    expect((await authz.client.checkTool('web_search', p)).allowed).toBe(true);
    expect(await authz.client.checkTool('web_search', p)).toMatchObject({ allowed: true, cached: true });

    lock = await holdFaultLock();
    await infra('down', 'opa');
    await waitFor(async () => ((await (await fetch(`${authz.httpUrl}/v1/policies`)).json()) as { engine_reachable: boolean }).engine_reachable === false, { what: 'outage noticed' });

    // The grant cached before the outage is not served: the policy set is unknown now.
    expect(await authz.client.checkTool('web_search', p)).toMatchObject({ allowed: false, reason: 'policy_unavailable', cached: false });
    expect(await authz.client.checkTool('code_execution', { sub: 'u2', tenant: 'trusted' })).toMatchObject({ allowed: false, reason: 'policy_unavailable' });
    expect((await authz.client.evaluate('tool_policy/allow', { tool: 'web_search' })).decision).toMatchObject({ allowed: false, reason: 'policy_unavailable' });
    expect(await authz.client.allowsTool('web_search', p)).toBe(false);
    expect((await fetch(`${authz.httpUrl}/readyz`)).status).toBe(503);

    await infra('up', 'opa');
    const back = await waitFor(async () => {
      const d = await authz.client.checkTool('web_search', p);
      return d.allowed ? d : null;
    }, { what: 'decisions after OPA restart', timeoutMs: 60_000 });
    expect(back.reason).toBe('allowed');
    expect((await authz.client.checkTool('code_execution', { sub: 'u3', tenant })).reason).toBe('policy_violation');
  }, 660_000); // waiting for the shared fault lock may take a while
});
