import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_REASON_KEY, Topics } from '@soma/contracts';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { TopicCollector, type ReceivedMessage } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { createTestSchema, startRetention, type RetentionUnderTest, type TestSchema } from './retention-support.js';

/**
 * Security matrix of every retention endpoint, table-driven: each gRPC method × {no credential, malformed
 * header, garbage bearer, tampered JWT, unknown API key, revoked API key, wrong tenant, missing permission,
 * same-tenant user without scopes}, then a positive control per method proving the refusals were about the
 * credential and nothing else. Refused calls change nothing. GetServiceInfo and the HTTP endpoints are
 * public by design (health checks, Prometheus): the matrix shows every credential gets the same answer and
 * that the answers hold no tenant or personal data.
 */
const run = randomBytes(4).toString('hex');
const T = `acme-${run}`;
const T2 = `globex-${run}`;
const VICTIM = `victim-${run}`;
const ALL_SCOPES = ['retention:admin', 'gdpr:export', 'gdpr:erase', 'consent:read', 'consent:write'];
const KEK = randomBytes(48).toString('base64url');

let schema: TestSchema;
let auth: AuthHarness;
let svc: RetentionUnderTest;
let events: TopicCollector;

interface Endpoint {
  rpc: string;
  request: Record<string, unknown>;
  /** Scopes any one of which grants the call. */
  scopes: string[];
  /** Cross-tenant: only tenant `*` may call it. */
  global: boolean;
  /** The data subject themself may call it. */
  allowSelf: boolean;
}

const ENDPOINTS: Endpoint[] = [
  { rpc: 'ListPolicies', request: {}, scopes: ['retention:admin'], global: true, allowSelf: false },
  // dry_run false: a refused run must not delete anything.
  { rpc: 'RunPolicy', request: { policy: '', dry_run: false }, scopes: ['retention:admin'], global: true, allowSelf: false },
  { rpc: 'ExportUserData', request: { tenant: T, user_id: VICTIM }, scopes: ['gdpr:export'], global: false, allowSelf: true },
  { rpc: 'EraseUserData', request: { tenant: T, user_id: VICTIM, reason: 'matrix' }, scopes: ['gdpr:erase'], global: false, allowSelf: false },
  { rpc: 'RecordConsent', request: { tenant: T, user_id: VICTIM, purpose: 'marketing', granted: true, source: 'matrix', policy_version: 'v1' }, scopes: ['consent:write'], global: false, allowSelf: true },
  { rpc: 'GetConsent', request: { tenant: T, user_id: VICTIM, purpose: '', include_history: true }, scopes: ['consent:read', 'consent:write'], global: false, allowSelf: true },
];

/** The authorization header value a row sends (undefined = no header). */
type Credential = (e: Endpoint) => string | undefined;
const cred: Record<string, string> = {};
const UNAUTHENTICATED_ROWS: Array<[string, Credential]> = [
  ['no credential', () => undefined],
  ['malformed header (Basic scheme)', () => `Basic ${Buffer.from('admin:admin').toString('base64')}`],
  ['garbage bearer', () => 'Bearer not-a-credential'],
  ['tampered JWT (all scopes, tenant *)', () => `Bearer ${cred['tampered']}`],
  ['unknown API key', () => `Bearer sk-soma-${randomBytes(24).toString('base64url')}`],
  ['revoked API key (all scopes, tenant *)', () => `Bearer ${cred['revoked']}`],
];
const DENIED_ROWS: Array<[string, Credential]> = [
  // Every scope, but in another tenant (for the cross-tenant methods: not tenant `*`).
  ['wrong tenant (all scopes)', () => `Bearer ${cred['wrongTenant']}`],
  // Tenant `*` (so the tenant is never the reason) with every scope except the ones the method accepts.
  ['missing permission (tenant *, every other scope)', (e) => `Bearer ${cred[`missing:${e.rpc}`]}`],
  ['same-tenant user without scopes', () => `Bearer ${cred['plainUser']}`],
];

function call(rpc: string, request: unknown, authorization: string | undefined): Promise<{ code: number; reason: string; details: string; response?: Record<string, unknown> }> {
  const md = new grpc.Metadata();
  if (authorization !== undefined) md.set('authorization', authorization);
  type Unary = (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
  return new Promise((resolve) => {
    (svc.client as unknown as Record<string, Unary>)[rpc]!.call(svc.client, request, md, (e, r) => {
      if (!e) return resolve({ code: grpc.status.OK, reason: '', details: '', response: r as Record<string, unknown> });
      resolve({ code: e.code, reason: String(e.metadata?.get(GRPC_REASON_KEY)[0] ?? ''), details: e.details });
    });
  });
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await schema.pool.query<{ n: string }>(sql, params);
  return Number(rows[0]!.n);
}

beforeAll(async () => {
  schema = await createTestSchema({ audit: true });
  auth = await startAuthHarness();
  const admin = auth.client({ adminCredential: await auth.adminToken() });
  const token = async (tenant: string, sub: string, scopes: string[]) => (await auth.issueToken({ tenant, sub, scopes })).token;
  const good = await token('*', 'root', ALL_SCOPES);
  // Flip one character of the signature: same header and claims, signature no longer verifies.
  const sig = good.slice(good.lastIndexOf('.') + 1);
  cred['tampered'] = `${good.slice(0, good.lastIndexOf('.') + 1)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
  const revoked = await auth.createApiKey({ tenant: '*', name: 'revoked', owner_sub: 'old-ops', scopes: ALL_SCOPES });
  await admin.revokeApiKey('*', revoked.id);
  cred['revoked'] = revoked.key;
  cred['wrongTenant'] = await token(T2, 'dpo', ALL_SCOPES);
  for (const e of ENDPOINTS) cred[`missing:${e.rpc}`] = await token('*', 'ops', ALL_SCOPES.filter((s) => !e.scopes.includes(s)));
  cred['plainUser'] = await token(T, `colleague-${run}`, ['agents:run']);
  cred['ops'] = await token('*', 'ops', ['retention:admin']);
  cred['dpo'] = (await auth.createApiKey({ tenant: T, name: 'dpo', owner_sub: 'dpo', scopes: ['gdpr:export', 'gdpr:erase', 'consent:read', 'consent:write'] })).key;
  cred['self'] = await token(T, VICTIM, []);

  // The victim's rows (fresh) and other rows 100 days old (expired under the seed's 90-day policies).
  await schema.pool.query(`INSERT INTO sessions (tenant, user_id, title) SELECT $1, $2, 'chat' FROM generate_series(1, 3)`, [T, VICTIM]);
  await schema.pool.query(`INSERT INTO messages (session_id, tenant, user_id, role, content) SELECT 1, $1, $2, 'user', 'hi' FROM generate_series(1, 4)`, [T, VICTIM]);
  await schema.pool.query(`INSERT INTO messages (session_id, tenant, user_id, role, content, created_at) SELECT 1, $1, 'someone', 'user', 'old', now() - interval '100 days' FROM generate_series(1, 6)`, [T]);
  events = await new TopicCollector(Topics.SecurityEvents, (m: ReceivedMessage) => m.key === T || m.key === T2 || m.key === '*').start();
  svc = await startRetention(schema, auth, { kek: KEK });
});

afterAll(async () => {
  await events?.stop();
  await svc?.stop();
  await auth?.stop();
  await schema?.drop();
});

const rows = (table: Array<[string, Credential]>, code: grpc.status, reason: string) =>
  ENDPOINTS.flatMap((e) => table.map(([who, credential]) => ({ rpc: e.rpc, who, endpoint: e, credential, code, reason })));

describe('retention gRPC security matrix', () => {
  it.each(rows(UNAUTHENTICATED_ROWS, grpc.status.UNAUTHENTICATED, 'UNAUTHENTICATED'))('$rpc × $who → UNAUTHENTICATED', async ({ endpoint, credential, code, reason }) => {
    const header = credential(endpoint);
    const r = await call(endpoint.rpc, endpoint.request, header);
    expect(r).toMatchObject({ code, reason });
    // The refusal never echoes the credential.
    if (header) expect(r.details).not.toContain(header.replace(/^\S+ /, ''));
  });

  it.each(rows(DENIED_ROWS, grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED'))('$rpc × $who → PERMISSION_DENIED', async ({ endpoint, credential, code, reason }) => {
    const r = await call(endpoint.rpc, endpoint.request, credential(endpoint));
    expect(r).toMatchObject({ code, reason });
    // Never which rule would have let it pass.
    expect(r.details).toMatch(/^PERMISSION_DENIED: caller may not perform this operation \(request_id=[0-9a-f-]{36}\)$/);
  });

  it('refused calls changed nothing: no rows deleted, no consent recorded; authenticated refusals of changes and exports were audited as denied', async () => {
    expect(await count('SELECT count(*) AS n FROM sessions WHERE tenant = $1 AND user_id = $2', [T, VICTIM])).toBe(3);
    expect(await count('SELECT count(*) AS n FROM messages WHERE tenant = $1 AND user_id = $2', [T, VICTIM])).toBe(4);
    expect(await count(`SELECT count(*) AS n FROM messages WHERE content = 'old'`)).toBe(6); // RunPolicy (dry_run false) was refused
    expect(await count('SELECT count(*) AS n FROM consent_records')).toBe(0);
    // Wrong tenant, missing permission and the plain user, for export, erase, consent writes and policy runs: 3 × 4.
    const denied = await waitFor(
      () => {
        const d = events.messages.filter((m) => m.json?.['outcome'] === 'denied' && m.json?.['service'] === 'retention');
        return d.length >= 12 ? d : undefined;
      },
      { what: 'denied events' },
    );
    expect(denied.map((m) => m.json!['type']).sort()).toEqual(['consent_changed', 'data_erased', 'data_exported', 'retention_run'].flatMap((t) => [t, t, t]));
    for (const m of denied) {
      expect(m.json).toMatchObject({ reason: 'permission_denied', actor: { user_id: null } });
      expect(m.value!.toString('utf8')).not.toContain(VICTIM);
    }
    // GDPR refusals are filed under the targeted tenant, refused policy runs under the caller's.
    expect(denied.filter((m) => m.json!['type'] !== 'retention_run').every((m) => m.json!['tenant'] === T)).toBe(true);
    expect(denied.filter((m) => m.json!['type'] === 'retention_run').map((m) => m.json!['tenant']).sort()).toEqual(['*', T, T2].sort());
    expect(denied.map((m) => (m.json!['details'] as Record<string, unknown>)['requested_by']).sort()).toEqual(
      ['*/ops', `${T}/colleague-${run}`, `${T2}/dpo`].flatMap((r) => [r, r, r, r]).sort(),
    );
    // Refusals never reach the tables; the unauthenticated ones left no trace of their credentials anywhere.
    const all = events.messages.map((m) => m.value!.toString('utf8')).join('\n');
    for (const secret of [cred['tampered']!, cred['revoked']!]) expect(all).not.toContain(secret);
  });

  it.each([
    { rpc: 'ListPolicies', who: 'ops (tenant *, retention:admin)' },
    { rpc: 'RunPolicy', who: 'ops (tenant *, retention:admin)' },
    { rpc: 'ExportUserData', who: 'the data subject' },
    { rpc: 'ExportUserData', who: 'dpo API key (gdpr:export)' },
    { rpc: 'RecordConsent', who: 'the data subject' },
    { rpc: 'RecordConsent', who: 'dpo API key (consent:write)' },
    { rpc: 'GetConsent', who: 'the data subject' },
    { rpc: 'GetConsent', who: 'dpo API key (consent:write)' },
    { rpc: 'EraseUserData', who: 'dpo API key (gdpr:erase)' },
  ])('positive control: $rpc × $who → OK', async ({ rpc, who }) => {
    const endpoint = ENDPOINTS.find((e) => e.rpc === rpc)!;
    const bearer = who.startsWith('ops') ? cred['ops'] : who.startsWith('dpo') ? cred['dpo'] : cred['self'];
    const r = await call(rpc, endpoint.request, `Bearer ${bearer}`);
    expect(r).toMatchObject({ code: grpc.status.OK });
    if (rpc === 'RunPolicy') expect(await count(`SELECT count(*) AS n FROM messages WHERE content = 'old'`)).toBe(0);
    if (rpc === 'EraseUserData') expect(await count('SELECT count(*) AS n FROM sessions WHERE tenant = $1 AND user_id = $2', [T, VICTIM])).toBe(0);
  });
});

describe('public endpoints: GetServiceInfo (gRPC), /healthz, /readyz, /metrics (HTTP)', () => {
  const headers: Array<[string, () => string | undefined]> = [
    ['no credential', () => undefined],
    ['garbage bearer', () => 'Bearer not-a-credential'],
    ['tampered JWT', () => `Bearer ${cred['tampered']}`],
    ['wrong tenant', () => `Bearer ${cred['wrongTenant']}`],
    ['same-tenant user without scopes', () => `Bearer ${cred['plainUser']}`],
    ['valid admin', () => `Bearer ${cred['ops']}`],
  ];

  it.each(headers)('GetServiceInfo × %s → the same non-sensitive answer', async (_who, header) => {
    const r = await call('GetServiceInfo', {}, header());
    expect(r.code).toBe(grpc.status.OK);
    expect(Object.keys(r.response!).sort()).toEqual(['instance_id', 'service', 'started_at', 'version']);
    expect(r.response).toMatchObject({ service: 'retention', instance_id: expect.stringMatching(/^retention-test-\d+$/) });
  });

  it.each(headers.flatMap(([who, header]) => ['/healthz', '/readyz', '/metrics'].map((path) => ({ who, header, path }))))(
    'GET $path × $who → 200, no tenant, personal or credential data',
    async ({ header, path }) => {
      const h = header();
      const res = await fetch(`${svc.httpUrl}${path}`, { headers: h ? { authorization: h } : {} });
      expect(res.status).toBe(200);
      const body = await res.text();
      for (const needle of [T, T2, VICTIM, 'someone', cred['dpo']!, cred['ops']!]) expect(body).not.toContain(needle);
    },
  );

  it.each([
    ['POST', '/metrics'],
    ['DELETE', '/healthz'],
    ['GET', '/v1/gdpr/export'],
    ['POST', '/v1/retention/run'],
  ])('no other HTTP surface: %s %s → 404', async (method, path) => {
    const res = await fetch(`${svc.httpUrl}${path}`, { method, headers: { authorization: `Bearer ${cred['ops']}` } });
    expect(res.status).toBe(404);
  });
});
