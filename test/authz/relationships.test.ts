import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CredentialsMethod, OpenFgaClient } from '@openfga/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { initOpenFga } from '../../apps/cli/src/commands/authz.js';
import { OPENFGA_API_URL, REPO_ROOT } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { rejection, startAuthz, uniqueTenant, type RunningAuthz } from './helpers.js';

/** Against the real OpenFGA server, in a store created for this run by the CLI's init. */
describe('authz relationships against the real OpenFGA server', () => {
  let authz: RunningAuthz;
  let events: TopicCollector;
  let storeId: string;
  let modelId: string;
  let direct: OpenFgaClient;
  const tenant = uniqueTenant('fga');
  const run = randomUUID().slice(0, 8);
  const anne = `user:anne-${run}`;
  const beth = `user:beth-${run}`;
  const s1 = `session:s1-${run}`;
  const s2 = `session:s2-${run}`;

  beforeAll(async () => {
    const init = await initOpenFga({ apiUrl: OPENFGA_API_URL, storeName: `authz-it-${run}`, modelPath: join(REPO_ROOT, 'infra/openfga/model.json') });
    expect(init.created).toBe(true);
    ({ storeId, modelId } = init);
    direct = new OpenFgaClient({ apiUrl: OPENFGA_API_URL, storeId, authorizationModelId: modelId, credentials: { method: CredentialsMethod.None } });
    events = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['tenant'] === tenant).start();
    authz = await startAuthz({
      OPENFGA_ENABLED: 'true',
      OPENFGA_API_URL,
      OPENFGA_STORE_ID: storeId,
      OPENFGA_MODEL_ID: modelId,
      OPENFGA_CHANGES_POLL_MS: '200',
      AUTHZ_DECISION_CACHE_TTL_MS: '120000',
    });
  });

  afterAll(async () => {
    await authz?.stop();
    await events?.stop();
    await direct?.deleteStore().catch(() => undefined);
  });

  it('owner implies viewer, read-your-write with the consistency token', async () => {
    const viewer = { user: anne, relation: 'viewer', object: s1 };
    expect(await authz.client.check(viewer, { tenant })).toMatchObject({ allowed: false, reason: 'relationship_missing' });
    const w = await authz.client.writeTuples([{ user: anne, relation: 'owner', object: s1 }], { tenant, actor: 'admin-1' });
    expect(w.count).toBe(1);
    expect(w.consistency_token).toMatch(/^ct1\./);
    const after = await authz.client.check(viewer, { tenant, consistencyToken: w.consistency_token });
    expect(after).toMatchObject({ allowed: true, reason: 'allowed', cached: false });
    expect(await authz.client.check({ user: beth, relation: 'viewer', object: s1 }, { tenant, consistencyToken: w.consistency_token })).toMatchObject({ allowed: false });
    // Viewer does not imply owner.
    await authz.client.writeTuples([{ user: beth, relation: 'viewer', object: s2 }], { tenant });
    expect((await authz.client.check({ user: beth, relation: 'owner', object: s2 }, { tenant })).allowed).toBe(false);
    expect((await authz.client.check({ user: beth, relation: 'viewer', object: s2 }, { tenant })).allowed).toBe(true);
  });

  it('emits relationship_written / relationship_deleted and denials with their decision ids', async () => {
    const t = { user: anne, relation: 'owner', object: `session:evt-${run}` };
    const w = await authz.client.writeTuples([t], { tenant, actor: 'admin-2' });
    const d = await authz.client.deleteTuples([t], { tenant, actor: 'admin-2' });
    const denied = await authz.client.check({ user: anne, relation: 'viewer', object: t.object }, { tenant, consistencyToken: d.consistency_token });
    expect(denied.allowed).toBe(false);
    const byDecision = (id: string) => () => events.messages.map((m) => m.json!).find((e) => (e['details'] as Record<string, unknown>)['decision_id'] === id);
    expect(await waitFor(byDecision(w.decision_id), { what: 'relationship_written' })).toMatchObject({ type: 'relationship_written', actor: { user_id: 'admin-2' }, resource: t.object, outcome: 'success' });
    expect(await waitFor(byDecision(d.decision_id), { what: 'relationship_deleted' })).toMatchObject({ type: 'relationship_deleted', resource: t.object });
    expect(await waitFor(byDecision(denied.decision_id), { what: 'authorization_denied' })).toMatchObject({
      type: 'authorization_denied',
      action: 'check',
      resource: t.object,
      reason: 'relationship_missing',
      actor: { user_id: anne },
    });
  });

  it('BatchCheck answers each item under its correlation id', async () => {
    const r = await authz.client.batchCheck(
      [
        { correlation_id: 'a', tuple: { user: anne, relation: 'viewer', object: s1 } },
        { correlation_id: 'b', tuple: { user: anne, relation: 'owner', object: s2 } },
        { correlation_id: 'c', tuple: { user: beth, relation: 'viewer', object: s2 } },
      ],
      { tenant },
    );
    expect(r.map((x) => [x.correlation_id, x.decision.allowed])).toEqual([['a', true], ['b', false], ['c', true]]);
    expect(new Set(r.map((x) => x.decision.decision_id)).size).toBe(3);
  });

  it('ListObjects includes owned objects for viewer and says whether it was truncated', async () => {
    const w = await authz.client.writeTuples([{ user: anne, relation: 'viewer', object: s2 }], { tenant });
    const r = await authz.client.listObjects(anne, 'viewer', 'session', { tenant, consistencyToken: w.consistency_token });
    expect([...r.objects].sort()).toEqual([s1, s2].sort());
    expect(r.truncated).toBe(false);
  });

  it('ListObjects reports a result cut at OpenFGA\'s cap (1000) as truncated', async () => {
    const many = `user:many-${run}`;
    const all = Array.from({ length: 1005 }, (_, i) => ({ user: many, relation: 'viewer', object: `session:m${i}-${run}` }));
    for (let i = 0; i < all.length; i += 100) await direct.writeTuples(all.slice(i, i + 100));
    const r = await authz.client.listObjects(many, 'viewer', 'session', { tenant, consistencyToken: 'ct1.0.abcdefgh' });
    expect(r.objects.length).toBe(1000);
    expect(r.truncated).toBe(true);
    const few = await authz.client.listObjects(beth, 'viewer', 'session', { tenant });
    expect(few.truncated).toBe(false);
  });

  it('drops a cached answer when the change feed reports a write made elsewhere', async () => {
    const t = { user: beth, relation: 'viewer', object: `session:feed-${run}` };
    expect((await authz.client.check(t, { tenant })).allowed).toBe(false);
    // The feed may drop the cache for earlier tests' writes between two checks: wait for an answer from the cache.
    const cached = await waitFor(async () => {
      const d = await authz.client.check(t, { tenant });
      return d.cached ? d : null;
    }, { what: 'a cached answer', timeoutMs: 20_000 });
    expect(cached.allowed).toBe(false);
    // Written directly in OpenFGA, not through this instance: only the change feed can tell it.
    await direct.writeTuples([{ user: t.user, relation: 'owner', object: t.object }]);
    const fresh = await waitFor(async () => {
      const d = await authz.client.check(t, { tenant });
      return d.allowed ? d : null;
    }, { what: 'change feed invalidation', timeoutMs: 20_000 });
    expect(fresh.cached).toBe(false);
  });

  it('refuses malformed tuples, unknown relations and bad tokens as INVALID_ARGUMENT', async () => {
    expect((await rejection(authz.client.check({ user: 'anne', relation: 'viewer', object: s1 }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(authz.client.check({ user: anne, relation: 'viewer', object: s1 }, { consistencyToken: 'zzz' }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(authz.client.check({ user: anne, relation: 'editor', object: s1 }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(authz.client.writeTuples([]))).code).toBe(status.INVALID_ARGUMENT);
  });

  it('fails closed when OpenFGA is unreachable: Check denies, writes are UNAVAILABLE', async () => {
    const closed = await freePort();
    const cut = await startAuthz({ OPENFGA_ENABLED: 'true', OPENFGA_API_URL: `http://127.0.0.1:${closed}`, OPENFGA_STORE_ID: storeId, OPENFGA_TIMEOUT_MS: '300' });
    try {
      const tuple = { user: anne, relation: 'viewer', object: s1 };
      expect(await cut.client.check(tuple, { tenant })).toMatchObject({ allowed: false, reason: 'relationship_unavailable' });
      const batch = await cut.client.batchCheck([{ correlation_id: 'x', tuple }], { tenant });
      expect(batch[0]!.decision).toMatchObject({ allowed: false, reason: 'relationship_unavailable' });
      expect((await rejection(cut.client.writeTuples([{ user: anne, relation: 'owner', object: s2 }], { tenant }))).code).toBe(status.UNAVAILABLE);
      expect((await rejection(cut.client.listObjects(anne, 'viewer', 'session'))).code).toBe(status.UNAVAILABLE);
      expect(await cut.client.allows(tuple)).toBe(false);
    } finally {
      await cut.stop();
    }
  });
});
