import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CredentialsMethod, OpenFgaClient } from '@openfga/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthzClient, AuthzClientError } from '@soma/authz-client';
import { initOpenFga } from '../../apps/cli/src/commands/authz.js';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { OPENFGA_API_URL, REPO_ROOT } from '../support/infra.js';
import { waitFor } from '../support/wait.js';
import { startAuthz, type RunningAuthz } from './helpers.js';

/**
 * Every authz endpoint against every kind of bad caller, with AUTHZ_CALLER_AUTH=required and real credentials
 * from a real auth instance: no credential, a bad credential (garbage, tampered JWT, expired JWT), a valid
 * credential of another tenant, a valid credential without the permission — and the good caller, which passes.
 */
const run = randomUUID().slice(0, 8);
const tenant = `matrix-${run}`;
const other = `matrix-other-${run}`;

type Row = 'none' | 'garbage' | 'tampered' | 'expired' | 'wrongTenant' | 'noPermission' | 'good';
const creds: Partial<Record<Row | 'platformRead' | 'tenantRead' | 'platformCheck', string>> = {};

let auth: AuthHarness;
let authz: RunningAuthz;
let direct: OpenFgaClient;
let plain: AuthzClient;

beforeAll(async () => {
  // No clock-skew allowance, so a 1-second JWT is really expired two seconds later.
  auth = await startAuthHarness({ env: { JWT_CLOCK_SKEW_SECONDS: '0' } });
  const init = await initOpenFga({ apiUrl: OPENFGA_API_URL, storeName: `authz-matrix-${run}`, modelPath: join(REPO_ROOT, 'infra/openfga/model.json') });
  direct = new OpenFgaClient({ apiUrl: OPENFGA_API_URL, storeId: init.storeId, authorizationModelId: init.modelId, credentials: { method: CredentialsMethod.None } });
  authz = await startAuthz({
    AUTHZ_CALLER_AUTH: 'required',
    AUTH_GRPC_ADDRESS: auth.grpcAddress,
    OPENFGA_ENABLED: 'true',
    OPENFGA_API_URL,
    OPENFGA_STORE_ID: init.storeId,
    OPENFGA_MODEL_ID: init.modelId,
  });
  plain = authz.client;
  const all = ['authz:check', 'authz:write', 'authz:read'];
  const good = (await auth.issueToken({ tenant, sub: `svc-${run}`, scopes: all })).token;
  creds.good = good;
  creds.garbage = 'not-a-credential';
  // One signature character changed: a JWT auth did not sign.
  creds.tampered = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.at(-1)!;
  creds.expired = (await auth.issueToken({ tenant, sub: `old-${run}`, scopes: all, ttlSeconds: 1 })).token;
  // An API key (the other credential kind) of another tenant holding every authz scope.
  creds.wrongTenant = (await auth.createApiKey({ tenant: other, scopes: all, owner_sub: `other-${run}` })).key;
  creds.noPermission = (await auth.issueToken({ tenant, sub: `nobody-${run}`, scopes: ['agent:chat'] })).token;
  creds.platformRead = (await auth.issueToken({ tenant: '*', sub: `ops-${run}`, scopes: ['authz:read'] })).token;
  creds.tenantRead = (await auth.issueToken({ tenant, sub: `tenant-ops-${run}`, scopes: ['authz:read'] })).token;
  creds.platformCheck = (await auth.issueToken({ tenant: '*', sub: `platform-svc-${run}`, scopes: ['authz:check'] })).token;
  // Let the 1-second JWT expire.
  await new Promise((r) => setTimeout(r, 2_100));
}, 180_000);

afterAll(async () => {
  await authz?.stop();
  await auth?.stop();
  await direct?.deleteStore().catch(() => undefined);
});

const tuple = { user: `user:m-${run}`, relation: 'owner', object: `session:m-${run}` };

/** Each gRPC route with a request about `tenant`. */
const routes: Record<string, (c: AuthzClient, credential: string | undefined) => Promise<unknown>> = {
  CheckTool: (c, credential) => c.checkTool('web_search', { sub: 'u1', tenant, persona_id: '' }, opts(credential)),
  Evaluate: (c, credential) => c.evaluate('tool_policy/allow', { tool: 'web_search', tenant }, { sub: 'u1', tenant, persona_id: '' }, opts(credential)),
  Check: (c, credential) => c.check({ ...tuple, relation: 'viewer' }, { tenant }, opts(credential)),
  BatchCheck: (c, credential) => c.batchCheck([{ correlation_id: 'a', tuple: { ...tuple, relation: 'viewer' } }], { tenant }, opts(credential)),
  ListObjects: (c, credential) => c.listObjects(tuple.user, 'viewer', 'session', { tenant }, opts(credential)),
  WriteTuples: (c, credential) => c.writeTuples([tuple], { tenant }, opts(credential)),
  DeleteTuples: (c, credential) => c.deleteTuples([tuple], { tenant }, opts(credential)),
};

function opts(credential: string | undefined) {
  return credential === undefined ? {} : { credential };
}

async function grpcCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return status.OK;
  } catch (e) {
    if (e instanceof AuthzClientError) return e.code;
    throw e;
  }
}

const expected: Record<Exclude<Row, 'good'>, number> = {
  none: status.UNAUTHENTICATED,
  garbage: status.UNAUTHENTICATED,
  tampered: status.UNAUTHENTICATED,
  expired: status.UNAUTHENTICATED,
  wrongTenant: status.PERMISSION_DENIED,
  noPermission: status.PERMISSION_DENIED,
};

describe('authz security matrix: every gRPC route × every kind of caller', () => {
  for (const [route, call] of Object.entries(routes)) {
    it(`${route}: refuses no / bad / expired credentials, another tenant and a missing permission; serves the good caller`, async () => {
      const got: Record<string, number> = {};
      for (const row of Object.keys(expected) as (keyof typeof expected)[]) got[row] = await grpcCode(call(plain, row === 'none' ? undefined : creds[row]!));
      expect(got).toEqual(expected);
      expect(await grpcCode(call(plain, creds.good!))).toBe(status.OK);
    });
  }

  it('a tenant credential cannot write relationships with only authz:check, nor ask about no tenant; a platform one (tenant *) can ask about any tenant', async () => {
    const checkOnly = (await auth.issueToken({ tenant, sub: `check-only-${run}`, scopes: ['authz:check'] })).token;
    expect(await grpcCode(plain.writeTuples([tuple], { tenant }, { credential: checkOnly }))).toBe(status.PERMISSION_DENIED);
    expect(await grpcCode(plain.check(tuple, {}, { credential: checkOnly }))).toBe(status.PERMISSION_DENIED);
    expect(await grpcCode(plain.evaluate('tool_policy/allow', { tool: 'web_search' }, undefined, { credential: checkOnly }))).toBe(status.PERMISSION_DENIED);
    expect(await grpcCode(plain.checkTool('web_search', { sub: 'u', tenant: other, persona_id: '' }, { credential: creds.platformCheck! }))).toBe(status.OK);
    expect(await grpcCode(plain.evaluate('tool_policy/allow', { tool: 'web_search' }, undefined, { credential: creds.platformCheck! }))).toBe(status.OK);
  });

  it('a refused caller never reaches the decision: bad input from an unauthenticated caller is UNAUTHENTICATED, not INVALID_ARGUMENT', async () => {
    expect(await grpcCode(plain.checkTool('', { sub: '', tenant, persona_id: '' }))).toBe(status.UNAUTHENTICATED);
    expect(await grpcCode(plain.writeTuples([{ user: 'x', relation: '?', object: 'y' }], { tenant }))).toBe(status.UNAUTHENTICATED);
  });
});

describe('authz security matrix: HTTP', () => {
  const header = (credential: string | undefined): Record<string, string> => (credential ? { authorization: `Bearer ${credential}` } : {});

  it('the policy view (/v1/policies, /v1/policies/source) needs authz:read and a platform credential', async () => {
    const list = await waitFor(async () => {
      const r = await fetch(`${authz.httpUrl}/v1/policies`, { headers: header(creds.platformRead) });
      const body = (await r.json()) as { policies: { id: string }[]; revision: string | null };
      return r.status === 200 && body.revision ? body : null;
    }, { what: 'policy view' });
    const id = list.policies.find((p) => p.id.includes('tool_policy'))!.id;
    const paths = ['/v1/policies', `/v1/policies/source?id=${encodeURIComponent(id)}`];
    const rows: [string, string | undefined, number][] = [
      ['none', undefined, 401],
      ['garbage', creds.garbage, 401],
      ['tampered', creds.tampered, 401],
      ['expired', creds.expired, 401],
      ['wrong tenant (tenant credential for a global view)', creds.tenantRead, 403],
      ['missing permission', creds.platformCheck, 403],
      ['good', creds.platformRead, 200],
    ];
    for (const path of paths) {
      const got = await Promise.all(rows.map(async ([, c]) => (await fetch(`${authz.httpUrl}${path}`, { headers: header(c) })).status));
      expect(Object.fromEntries(rows.map(([name], i) => [name, got[i]])), path).toEqual(Object.fromEntries(rows.map(([name, , want]) => [name, want])));
    }
    const refused = await fetch(`${authz.httpUrl}/v1/policies/source?id=${encodeURIComponent(id)}`, { headers: header(creds.tenantRead) });
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(await refused.text()).not.toContain('package tool_policy');
  });

  it('health and metrics are public by design (probes and scrapers) and reveal no policy text or credential', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const r = await fetch(`${authz.httpUrl}${path}`);
      expect(r.status, path).toBe(200);
      const text = await r.text();
      expect(text).not.toContain('package tool_policy');
      expect(text).not.toContain(creds.good!);
    }
  });
});
