import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initOpenFga } from '../../apps/cli/src/commands/authz.js';
import { infra, OPENFGA_API_URL, REPO_ROOT } from '../support/infra.js';
import { waitFor } from '../support/wait.js';
import { holdFaultLock, startAuthz, uniqueTenant, type RunningAuthz } from './helpers.js';

/**
 * Stops the shared OpenFGA server (under /tmp/soma-infra-fault.lock, taken by the test itself) and starts it again
 * in afterAll. The local OpenFGA keeps stores in memory, so its restart loses this test's store: recovery after the
 * restart is shown by a fresh store, not by the old one.
 */
describe('authz fails closed while the OpenFGA server is down', () => {
  let authz: RunningAuthz;
  let lock: { release(): Promise<void> } | undefined;
  const tenant = uniqueTenant('fga-outage');
  const run = randomUUID().slice(0, 8);

  beforeAll(async () => {
    const init = await initOpenFga({ apiUrl: OPENFGA_API_URL, storeName: `authz-outage-${run}`, modelPath: join(REPO_ROOT, 'infra/openfga/model.json') });
    authz = await startAuthz({
      OPENFGA_ENABLED: 'true',
      OPENFGA_API_URL,
      OPENFGA_STORE_ID: init.storeId,
      OPENFGA_MODEL_ID: init.modelId,
      OPENFGA_CHANGES_POLL_MS: '200',
      OPENFGA_TIMEOUT_MS: '500',
      AUTHZ_DECISION_CACHE_TTL_MS: '300000',
    });
  });

  afterAll(async () => {
    try {
      if (lock) await infra('up', 'openfga');
    } finally {
      await lock?.release();
      await authz?.stop();
    }
  });

  it('denies with relationship_unavailable (cached grants included) and reports not ready', async () => {
    const tuple = { user: `user:a-${run}`, relation: 'viewer', object: `session:s-${run}` };
    const w = await authz.client.writeTuples([{ ...tuple, relation: 'owner' }], { tenant });
    expect((await authz.client.check(tuple, { tenant, consistencyToken: w.consistency_token })).allowed).toBe(true);
    expect(await authz.client.check(tuple, { tenant })).toMatchObject({ allowed: true, cached: true });
    await waitFor(async () => (await fetch(`${authz.httpUrl}/readyz`)).status === 200, { what: 'ready before the outage' });

    lock = await holdFaultLock();
    await infra('down', 'openfga');
    await waitFor(async () => (await fetch(`${authz.httpUrl}/readyz`)).status === 503, { what: 'outage noticed' });

    // The grant cached before the outage is not served: revocations can no longer be seen.
    expect(await authz.client.check(tuple, { tenant })).toMatchObject({ allowed: false, reason: 'relationship_unavailable', cached: false });
    const batch = await authz.client.batchCheck([{ correlation_id: 'x', tuple }], { tenant });
    expect(batch[0]!.decision).toMatchObject({ allowed: false, reason: 'relationship_unavailable' });
    expect(await authz.client.allows(tuple, { tenant })).toBe(false);
  }, 660_000);
});
