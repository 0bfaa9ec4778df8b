import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { Fernet } from '@soma/fernet';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { REDIS_URL } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { startAuthz, startSecrets, type CallError, type SecretsInstance } from './helpers.js';

/**
 * Every secrets endpoint against every kind of bad caller, through the whole production chain: secrets
 * authenticates the caller with a real auth instance, then asks authz (which itself requires the secrets
 * service's own credential, AUTHZ_CALLER_AUTH=required) on the real OPA. Rows: no credential, garbage,
 * tampered JWT, expired JWT, a credential of a tenant not allowed to use secrets (holding secrets:admin),
 * a credential of the right tenant without the permission — and the good caller, which passes.
 */
const run = randomUUID().slice(0, 8);
const prefix = `test-${run}:llm_cred:`;
const tenant = `sm-${run}`;
const other = `sm-other-${run}`;
const key = Fernet.generateKey();

type Row = 'none' | 'garbage' | 'tampered' | 'expired' | 'wrongTenant' | 'noPermission';
const creds: Record<string, string> = {};

let auth: AuthHarness;
let authz: Awaited<ReturnType<typeof startAuthz>>;
let secrets: SecretsInstance;
let events: TopicCollector;
let redis: Redis;

beforeAll(async () => {
  auth = await startAuthHarness({ env: { JWT_CLOCK_SKEW_SECONDS: '0' } });
  authz = await startAuthz({ authAddress: auth.grpcAddress });
  // The secrets service's own credential for authz: a platform API key that may only ask authz.
  const serviceKey = (await auth.createApiKey({ tenant: '*', scopes: ['authz:check'], owner_sub: `secrets-svc-${run}` })).key;
  secrets = await startSecrets({ keys: [key], prefix, authAddress: auth.grpcAddress, authzAddress: authz.address, tenants: [tenant], env: { AUTHZ_CREDENTIAL: serviceKey } });
  creds.good = (await auth.issueToken({ tenant, sub: `admin-${run}`, scopes: ['secrets:admin'] })).token;
  creds.garbage = 'not-a-credential';
  creds.tampered = creds.good.slice(0, -2) + (creds.good.at(-2) === 'A' ? 'B' : 'A') + creds.good.at(-1)!;
  creds.expired = (await auth.issueToken({ tenant, sub: `old-${run}`, scopes: ['secrets:admin'], ttlSeconds: 1 })).token;
  creds.wrongTenant = (await auth.createApiKey({ tenant: other, scopes: ['secrets:admin'], owner_sub: `intruder-${run}` })).key;
  creds.noPermission = (await auth.issueToken({ tenant, sub: `nobody-${run}`, scopes: ['agent:chat'] })).token;
  events = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['service'] === 'secrets' && (m.json?.['tenant'] === other || m.json?.['tenant'] === tenant || String(m.json?.['resource']).includes(run))).start();
  redis = new Redis(REDIS_URL);
  await new Promise((r) => setTimeout(r, 2_100));
}, 180_000);

afterAll(async () => {
  await events?.stop();
  await secrets?.stop();
  await authz?.service.stop();
  await auth?.stop();
  const keys = await redis.keys(`test-${run}:*`);
  if (keys.length) await redis.del(...keys);
  await redis?.quit();
});

const name = `matrix/${run}`;
/** Each gRPC route; PutSecret runs first so GetSecret / DeleteSecret of the good caller find the secret. */
const routes: [string, unknown][] = [
  ['PutSecret', { name, value: `v-${run}` }],
  ['GetSecret', { name }],
  ['ListSecrets', { prefix: 'matrix/' }],
  ['RotateEncryptionKey', {}],
  ['DeleteSecret', { name }],
];

const expected: Record<Row, [number, string]> = {
  none: [status.UNAUTHENTICATED, 'UNAUTHENTICATED'],
  garbage: [status.UNAUTHENTICATED, 'UNAUTHENTICATED'],
  tampered: [status.UNAUTHENTICATED, 'UNAUTHENTICATED'],
  expired: [status.UNAUTHENTICATED, 'UNAUTHENTICATED'],
  wrongTenant: [status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
  noPermission: [status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
};

describe('secrets security matrix: every gRPC route × every kind of caller', () => {
  for (const [method, request] of routes) {
    it(`${method}: refuses no / bad / expired credentials, another tenant and a missing permission; serves the good caller`, async () => {
      const got: Record<string, [number, string | undefined]> = {};
      for (const row of Object.keys(expected) as Row[]) {
        const e: CallError = await secrets.client.failure(method, request, row === 'none' ? undefined : creds[row]);
        got[row] = [e.code, e.reason];
      }
      expect(got).toEqual(expected);
      const ok = await secrets.client.call(method, request, creds.good);
      expect(ok).toBeTruthy();
      // Nothing a refused caller sent changed the store: only the good caller's PutSecret wrote (version 1).
      if (method === 'GetSecret') expect((ok as { value: string; metadata: { version: number } }).metadata.version).toBe(1);
    });
  }

  it('a refused caller never sees a value, and each refusal is a secret_access_denied event', async () => {
    const reasons = () => new Set(events.messages.map((m) => m.json!).filter((e) => e['type'] === 'secret_access_denied').map((e) => e['reason']));
    // Anonymous refusals carry tenant "unknown"; they are matched by the secret name (which holds this run's id).
    await waitFor(() => reasons().size >= 4, { what: 'secret_access_denied events of every kind' });
    expect(reasons()).toEqual(new Set(['missing_credential', 'unauthenticated', 'tenant_not_allowed', 'policy_violation']));
    expect(JSON.stringify(events.messages.map((m) => m.json))).not.toContain(`v-${run}`);
  });

  it('fails closed when its own authz credential is missing: authz refuses it, so every call is denied', async () => {
    const blind = await startSecrets({ keys: [key], prefix, authAddress: auth.grpcAddress, authzAddress: authz.address, tenants: [tenant] });
    try {
      const e = await blind.client.failure('ListSecrets', { prefix: '' }, creds.good);
      expect([e.code, e.reason]).toEqual([status.PERMISSION_DENIED, 'PERMISSION_DENIED']);
    } finally {
      await blind.stop();
    }
  });
});

describe('secrets security matrix: HTTP', () => {
  it('serves only health and metrics, public by design, with no value or credential in them; no other route exists', async () => {
    const base = secrets.service.server.httpUrl;
    await secrets.client.call('PutSecret', { name: `${name}-http`, value: `http-${run}` }, creds.good);
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(200);
      const text = await r.text();
      expect(text).not.toContain(`http-${run}`);
      expect(text).not.toContain(creds.good);
    }
    for (const path of ['/v1/secrets', `/v1/secrets/${encodeURIComponent(name)}`, '/secrets']) {
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${creds.good}` } });
      expect(r.status, path).toBe(404);
    }
  });
});
