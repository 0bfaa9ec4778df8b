/**
 * The caller and decision cache of the secrets service against real auth (revocations through its gRPC admin
 * API), real authz and OPA, real Redis and Kafka: a revoked credential keeps working at most for the TTL (the
 * documented revocation bound) and stops afterwards; with TTL 0 it stops at once. Grants are the credential's
 * scopes (infra/policy/secrets_policy.rego), so removing a permission means revoking the credential and
 * issuing one with fewer scopes: the new credential is another cache key and is denied at once.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { Fernet } from '@soma/fernet';
import { REDIS_URL } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { startAuthz, startCredentialSource, startSecrets, type CredentialSource, type SecretsInstance } from './helpers.js';

const run = randomUUID().slice(0, 8);
const prefix = `test-${run}:llm_cred:`;
const tenant = `secrets-cache-${run}`;
const key = Fernet.generateKey();
/** Short enough to wait out in a test; the wait below is this plus a margin, never a speed assertion. */
const SHORT_TTL_MS = 1000;

let creds: CredentialSource;
let authz: Awaited<ReturnType<typeof startAuthz>>;
let redis: Redis;
let events: TopicCollector;
const instances: SecretsInstance[] = [];

async function secretsWithTtl(ttlMs: number): Promise<SecretsInstance> {
  const s = await startSecrets({
    keys: [key],
    prefix,
    authAddress: creds.address,
    authzAddress: authz.address,
    tenants: [tenant],
    env: { SECRETS_CALLER_CACHE_TTL_MS: String(ttlMs), SECRETS_DECISION_CACHE_TTL_MS: String(ttlMs) },
  });
  instances.push(s);
  return s;
}

const read = (s: SecretsInstance, credential: string) => s.client.call<{ value: string }>('GetSecret', { name: 'llm/openai' }, credential);

beforeAll(async () => {
  creds = await startCredentialSource();
  authz = await startAuthz();
  redis = new Redis(REDIS_URL);
  events = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['service'] === 'secrets' && m.json?.['tenant'] === tenant).start();
  const writerInstance = await secretsWithTtl(0);
  await writerInstance.client.call('PutSecret', { name: 'llm/openai', value: `sk-soma-cache${run}` }, await creds.issue(`admin-${run}`, tenant, ['secrets:admin']));
});

afterAll(async () => {
  await events?.stop();
  for (const s of instances) await s.stop();
  await authz?.service.stop();
  await creds?.stop();
  const keys = await redis.keys(`test-${run}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

describe('secrets caller and decision cache (real auth, authz, OPA, Redis, Kafka)', () => {
  it('reuses auth and authz answers within the TTL, and every read is still recorded, marked cached', async () => {
    const secrets = await secretsWithTtl(60_000);
    const sub = `long-${run}`;
    const jwt = await creds.issue(sub, tenant, ['secret:read']);
    expect((await read(secrets, jwt)).value).toBe(`sk-soma-cache${run}`);
    await creds.revokeToken(tenant, jwt);
    // Revoked at auth, but still trusted here for up to the TTL: the documented revocation delay bound.
    expect((await read(secrets, jwt)).value).toBe(`sk-soma-cache${run}`);

    const mine = () => events.messages.map((m) => m.json!).filter((e) => e['type'] === 'secret_accessed' && (e['actor'] as { user_id: string }).user_id === sub);
    await waitFor(() => mine().length >= 2, { timeoutMs: 60_000, what: 'both secret_accessed events on security.events' });
    expect(mine().map((e) => [e['outcome'], (e['details'] as Record<string, unknown>)['caller_cached'], (e['details'] as Record<string, unknown>)['cached']])).toEqual([
      ['success', false, false],
      ['success', true, true],
    ]);
  });

  it('stops a revoked JWT and a revoked API key once the TTL has passed', async () => {
    const secrets = await secretsWithTtl(SHORT_TTL_MS);
    const jwt = await creds.issue(`short-${run}`, tenant, ['secret:read']);
    const apiKey = await creds.apiKeyWithId(`short-key-${run}`, tenant, ['secret:read']);
    expect((await read(secrets, jwt)).value).toBe(`sk-soma-cache${run}`);
    expect((await read(secrets, apiKey.key)).value).toBe(`sk-soma-cache${run}`);
    await creds.revokeToken(tenant, jwt);
    await creds.revokeApiKey(tenant, apiKey.id);
    await sleep(SHORT_TTL_MS + 200);
    expect((await secrets.client.failure('GetSecret', { name: 'llm/openai' }, jwt)).code).toBe(status.UNAUTHENTICATED);
    expect((await secrets.client.failure('GetSecret', { name: 'llm/openai' }, apiKey.key)).code).toBe(status.UNAUTHENTICATED);
  });

  it('stops a credential whose read permission was removed after the TTL; its replacement without it is denied at once', async () => {
    const secrets = await secretsWithTtl(SHORT_TTL_MS);
    const sub = `demoted-${run}`;
    const before = await creds.apiKeyWithId(sub, tenant, ['secret:read', 'agent:chat']);
    expect((await read(secrets, before.key)).value).toBe(`sk-soma-cache${run}`);
    await creds.revokeApiKey(tenant, before.id);
    const after = await creds.apiKey(sub, tenant, ['agent:chat']);
    expect((await secrets.client.failure('GetSecret', { name: 'llm/openai' }, after)).code).toBe(status.PERMISSION_DENIED);
    await sleep(SHORT_TTL_MS + 200);
    expect((await secrets.client.failure('GetSecret', { name: 'llm/openai' }, before.key)).code).toBe(status.UNAUTHENTICATED);
  });

  it('with TTL 0 a revocation bites on the next call', async () => {
    const secrets = await secretsWithTtl(0);
    const jwt = await creds.issue(`uncached-${run}`, tenant, ['secret:read']);
    expect((await read(secrets, jwt)).value).toBe(`sk-soma-cache${run}`);
    await creds.revokeToken(tenant, jwt);
    expect((await secrets.client.failure('GetSecret', { name: 'llm/openai' }, jwt)).code).toBe(status.UNAUTHENTICATED);
  });
});
