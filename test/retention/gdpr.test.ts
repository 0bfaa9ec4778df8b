import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_REASON_KEY, grpcClientConstructor, Topics } from '@soma/contracts';
import { buildSecurityEvent } from '@soma/events';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import type { RetentionConfig } from '../../apps/retention/src/retention.config.js';
import { retentionService } from '../../apps/retention/src/retention.service-definition.js';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { POSTGRES_URL } from '../support/infra.js';
import { TopicCollector, type ReceivedMessage } from '../support/kafka.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { createTestSchema, ingestAuditEvents, verifyAuditChains, type TestSchema } from './retention-support.js';

const run = randomBytes(4).toString('hex');
const T = `acme-${run}`;
const T2 = `globex-${run}`;
const A = `user-a-${run}`;
const B = `user-b-${run}`;
const KEK = randomBytes(48).toString('base64url');
const tmp = mkdtempSync(join(tmpdir(), 'soma-retention-gdpr-'));

let schema: TestSchema;
let auth: AuthHarness;
let service: StartedService<RetentionConfig>;
let client: grpc.Client;
let events: TopicCollector;
const tokens: Record<'dpo' | 'self' | 'other' | 'ops' | 'foreignDpo', string> = { dpo: '', self: '', other: '', ops: '', foreignDpo: '' };
const seededIds: Record<string, string[]> = {};
const apiKeyIds: { a: string[]; b: string[] } = { a: [], b: [] };

type Unary = (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
function call<T = Record<string, unknown>>(method: string, req: unknown, token?: string): Promise<T> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    ((client as unknown as Record<string, Unary>)[method]!).call(client, req, md, (e, r) => (e ? reject(e) : resolve(r as T)));
  });
}
async function callError(method: string, req: unknown, token?: string): Promise<{ code: number; reason: unknown }> {
  try {
    await call(method, req, token);
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: err.code, reason: err.metadata?.get(GRPC_REASON_KEY)[0] };
  }
  throw new Error(`${method} unexpectedly succeeded`);
}

async function seedPlatform(tenant: string, user: string, n: { sessions: number; messages: number; events: number }): Promise<void> {
  const s = await schema.pool.query<{ id: string }>(`INSERT INTO sessions (tenant, user_id, title) SELECT $1, $2, 'chat ' || g FROM generate_series(1, $3) g RETURNING id`, [tenant, user, n.sessions]);
  const m = await schema.pool.query<{ id: string }>(
    `INSERT INTO messages (session_id, tenant, user_id, role, content) SELECT $4, $1, $2, 'user', 'hello from ' || $2 || ' #' || g FROM generate_series(1, $3) g RETURNING id`,
    [tenant, user, n.messages, s.rows[0]!.id],
  );
  const e = await schema.pool.query<{ id: string }>(
    `INSERT INTO session_events (session_id, tenant, user_id, event_type, payload) SELECT $4, $1, $2, 'tool_call', jsonb_build_object('n', g, 'who', $2::text) FROM generate_series(1, $3) g RETURNING id`,
    [tenant, user, n.events, s.rows[0]!.id],
  );
  seededIds[`${tenant}/${user}/sessions`] = s.rows.map((r) => r.id);
  seededIds[`${tenant}/${user}/messages`] = m.rows.map((r) => r.id);
  seededIds[`${tenant}/${user}/session_events`] = e.rows.map((r) => r.id);
}

beforeAll(async () => {
  schema = await createTestSchema({ audit: true });
  auth = await startAuthHarness();
  tokens.dpo = (await auth.issueToken({ tenant: T, sub: 'dpo', scopes: ['gdpr:export', 'gdpr:erase', 'consent:read', 'consent:write'] })).token;
  tokens.foreignDpo = (await auth.issueToken({ tenant: T2, sub: 'dpo', scopes: ['gdpr:export', 'gdpr:erase'] })).token;
  tokens.self = (await auth.issueToken({ tenant: T, sub: A })).token;
  tokens.other = (await auth.issueToken({ tenant: T, sub: B })).token;
  tokens.ops = (await auth.issueToken({ tenant: '*', sub: 'ops', scopes: ['retention:admin'] })).token;
  for (const name of ['laptop', 'ci']) apiKeyIds.a.push((await auth.createApiKey({ tenant: T, name, owner_sub: A, scopes: ['agents:run'] })).id);
  apiKeyIds.b.push((await auth.createApiKey({ tenant: T, name: 'b', owner_sub: B })).id);

  await seedPlatform(T, A, { sessions: 3, messages: 7, events: 5 });
  await seedPlatform(T, B, { sessions: 2, messages: 4, events: 3 });
  await seedPlatform(T2, A, { sessions: 1, messages: 2, events: 1 }); // same user id, other tenant
  // Audit rows about A, B and T2/A through the audit service's ingest path (pseudonyms, encrypted PII, chain).
  const ev = (tenant: string, user: string, action: string) =>
    buildSecurityEvent('auth', { type: 'authentication_succeeded', tenant, action, outcome: 'success', actor: { user_id: user, ip_address: '198.51.100.23', user_agent: `agent-of-${user}` } });
  await ingestAuditEvents(schema.pool, KEK, 0, new Date(), [ev(T, A, 'login'), ev(T, B, 'login'), ev(T, A, 'verify_token'), ev(T2, A, 'login'), ev(T, A, 'login')]);

  const dir = tmp;
  const ports = { grpc: await freePort(), http: await freePort() };
  service = await startSomaService(retentionService, {
    ...process.env,
    RETENTION_GRPC_PORT: String(ports.grpc),
    RETENTION_HTTP_PORT: String(ports.http),
    EVENT_BUFFER_PATH: join(dir, 'events.sqlite'),
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
    POSTGRES_URL,
    RETENTION_PLATFORM_SCHEMA: schema.name,
    RETENTION_AUDIT_SCHEMA: schema.name,
    RETENTION_SCHEMA: schema.name,
    RETENTION_AUDIT_ROLE: 'audit_retention',
    RETENTION_SCHEDULER_ENABLED: 'false',
    RETENTION_POLICIES: JSON.stringify([{ table: 'messages', max_age_days: 90 }, { table: 'audit_log', mode: 'drop_partitions' }]),
    AUDIT_KEK: KEK,
    AUTH_GRPC_ADDRESS: auth.grpcAddress,
    RETENTION_AUTH_CREDENTIAL: await auth.adminToken(),
  });
  client = new (grpcClientConstructor('retention'))(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure());
  events = await new TopicCollector(Topics.SecurityEvents, (m) => (m.key === T || m.key === T2) && m.json?.['service'] === 'retention').start();
});

afterAll(async () => {
  client?.close();
  await events?.stop();
  await service?.stop();
  await auth?.stop();
  await schema?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

async function platformRowsOf(tenant: string, user: string): Promise<number> {
  let total = 0;
  for (const table of ['sessions', 'messages', 'session_events']) {
    const { rows } = await schema.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} t WHERE tenant = $1 AND (user_id = $2 OR to_jsonb(t)::text LIKE '%' || $2 || '%')`, [tenant, user]);
    total += Number(rows[0]!.n);
  }
  return total;
}

const ids = (rows: Array<Record<string, unknown>>) => rows.map((r) => String(r['id'])).sort();

describe('GDPR requests over gRPC (real PostgreSQL, auth, Kafka)', () => {
  it('refuses callers without a credential, other users, other tenants, and non-admin policy runs', async () => {
    expect(await callError('ExportUserData', { tenant: T, user_id: A })).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(await callError('ExportUserData', { tenant: T, user_id: A }, 'not-a-token')).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(await callError('ExportUserData', { tenant: T, user_id: A }, tokens.other)).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'PERMISSION_DENIED' });
    expect(await callError('ExportUserData', { tenant: T, user_id: A }, tokens.foreignDpo)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await callError('EraseUserData', { tenant: T, user_id: A, reason: '' }, tokens.self)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await callError('RunPolicy', { policy: '', dry_run: true }, tokens.dpo)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await callError('ExportUserData', { tenant: 'bad tenant', user_id: A }, tokens.dpo)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(await callError('RunPolicy', { policy: 'nope', dry_run: true }, tokens.ops)).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'UNKNOWN_POLICY' });
  });

  it('records explicit opt-in consent with history; absent means not granted', async () => {
    const none = await call<{ current: Array<Record<string, unknown>> }>('GetConsent', { tenant: T, user_id: A, purpose: 'marketing', include_history: false }, tokens.self);
    expect(none.current).toMatchObject([{ purpose: 'marketing', granted: false, recorded_at: '' }]);
    await call('RecordConsent', { tenant: T, user_id: A, purpose: 'marketing', granted: true, source: 'web:settings', policy_version: '2026-01' }, tokens.self);
    await call('RecordConsent', { tenant: T, user_id: A, purpose: 'analytics', granted: true, source: 'web:onboarding', policy_version: '2026-01' }, tokens.self);
    await call('RecordConsent', { tenant: T, user_id: A, purpose: 'marketing', granted: false, source: 'support', policy_version: '2026-01' }, tokens.dpo);
    await call('RecordConsent', { tenant: T, user_id: B, purpose: 'marketing', granted: true, source: 'web', policy_version: '2026-01' }, tokens.other);
    const got = await call<{ current: Array<Record<string, unknown>>; history: Array<Record<string, unknown>> }>('GetConsent', { tenant: T, user_id: A, purpose: '', include_history: true }, tokens.dpo);
    expect(got.current.map((c) => [c['purpose'], c['granted'], c['recorded_by']])).toEqual([
      ['analytics', true, 'self'],
      ['marketing', false, `${T}/dpo`],
    ]);
    expect(got.history.map((c) => [c['purpose'], c['granted']])).toEqual([['marketing', true], ['analytics', true], ['marketing', false]]);
    expect(await callError('GetConsent', { tenant: T, user_id: A, purpose: '', include_history: false }, tokens.other)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });

  it('exports every row of the user and nothing of anyone else, with API keys, consent and decrypted audit entries', async () => {
    const res = await call<{ format: string; document_json: string; sha256: string }>('ExportUserData', { tenant: T, user_id: A }, tokens.dpo);
    expect(res.format).toBe('soma.gdpr.export/v1');
    const doc = JSON.parse(res.document_json) as {
      tenant: string;
      user_id: string;
      platform: Record<string, Array<Record<string, unknown>>>;
      api_keys: Array<Record<string, unknown>>;
      consent: { history: unknown[] };
      audit: { pseudonym: string; entries: Array<{ action: string; personal: Record<string, unknown> | null; ip_network: string }> };
      counts: Record<string, number>;
    };
    expect(doc).toMatchObject({ tenant: T, user_id: A });
    for (const table of ['sessions', 'messages', 'session_events']) {
      expect(ids(doc.platform[table]!)).toEqual([...seededIds[`${T}/${A}/${table}`]!].sort());
      expect(doc.platform[table]!.every((r) => r['tenant'] === T && r['user_id'] === A)).toBe(true);
    }
    expect(doc.platform['messages']![0]).toMatchObject({ role: 'user', content: expect.stringContaining(A) });
    expect(doc.api_keys.map((k) => k['id']).sort()).toEqual([...apiKeyIds.a].sort());
    expect(JSON.stringify(doc.api_keys)).not.toMatch(/sk-soma-[A-Za-z0-9_-]{20,}/); // metadata only, never a secret
    expect(doc.consent.history).toHaveLength(3);
    expect(doc.audit.entries.map((e) => e.action).sort()).toEqual(['login', 'login', 'verify_token']);
    expect(doc.audit.entries.every((e) => e.personal?.['user_id'] === A && e.personal?.['user_agent'] === `agent-of-${A}` && e.ip_network === '198.51.100.0/24')).toBe(true);
    expect(doc.counts).toMatchObject({ sessions: 3, messages: 7, session_events: 5, api_keys: 2, consent_records: 3, audit_entries: 3 });
    expect(res.document_json).not.toContain(B);
    expect(res.document_json).not.toContain(T2);

    // The subject may export themself.
    const mine = await call<{ document_json: string }>('ExportUserData', { tenant: T, user_id: A }, tokens.self);
    expect(JSON.parse(mine.document_json).counts.messages).toBe(7);
  });

  it('erases the user: no trace in the platform tables, credentials revoked, audit rows unreadable, chain intact', async () => {
    const auditBefore = await schema.pool.query<{ id: string; hash: Buffer; pii: Buffer | null; user_id: string | null }>('SELECT id, hash, pii, user_id FROM audit_log ORDER BY id');
    expect((await verifyAuditChains(schema.pool)).intact).toBe(true);

    const res = await call<Record<string, unknown>>('EraseUserData', { tenant: T, user_id: A, reason: 'ticket-4711' }, tokens.dpo);
    expect(res).toMatchObject({ consent_records_deleted: '3', api_keys_revoked: 2, audit_key_destroyed: true });
    expect(res['audit_pseudonym']).toMatch(/^[0-9a-f]{64}$/);
    expect(res['rows_deleted']).toEqual([
      { table: 'sessions', rows: '3' },
      { table: 'messages', rows: '7' },
      { table: 'session_events', rows: '5' },
    ]);

    // Platform tables: nothing of A in T; B and A-in-another-tenant untouched.
    expect(await platformRowsOf(T, A)).toBe(0);
    expect(await platformRowsOf(T, B)).toBe(2 + 4 + 3);
    expect(await platformRowsOf(T2, A)).toBe(1 + 2 + 1);
    const { rows: consent } = await schema.pool.query('SELECT 1 FROM consent_records WHERE tenant = $1 AND user_id = $2', [T, A]);
    expect(consent).toHaveLength(0);

    // Credentials: A's keys revoked and A's token refused by auth; B's key still active.
    const keys = await auth.client({ adminCredential: await auth.adminToken() }).listApiKeys(T, true);
    expect(keys.filter((k) => apiKeyIds.a.includes(k.id)).every((k) => k.revoked)).toBe(true);
    expect(keys.find((k) => k.id === apiKeyIds.b[0])?.revoked).toBe(false);
    expect(await callError('GetConsent', { tenant: T, user_id: A, purpose: '', include_history: false }, tokens.self)).toMatchObject({ code: grpc.status.UNAUTHENTICATED });

    // Audit log: the subject key is gone, every row (and so the chain) is byte-for-byte unchanged.
    const { rows: keyRows } = await schema.pool.query('SELECT 1 FROM audit_subject_keys WHERE tenant = $1 AND user_id = $2', [T, A]);
    expect(keyRows).toHaveLength(0);
    const auditAfter = await schema.pool.query<{ id: string; hash: Buffer; pii: Buffer | null; user_id: string | null }>('SELECT id, hash, pii, user_id FROM audit_log ORDER BY id');
    expect(auditAfter.rows).toEqual(auditBefore.rows);
    expect(auditAfter.rows.filter((r) => r.user_id === res['audit_pseudonym'])).toHaveLength(3);
    expect(await verifyAuditChains(schema.pool)).toMatchObject({ intact: true });

    // A new export finds nothing about A (B's audit rows and key remain).
    const after = JSON.parse((await call<{ document_json: string }>('ExportUserData', { tenant: T, user_id: A }, tokens.dpo)).document_json);
    expect(after.counts).toMatchObject({ sessions: 0, messages: 0, session_events: 0, consent_records: 0, audit_entries: 0 });
    expect(after.audit.pseudonym).toBeNull();
    const bDoc = JSON.parse((await call<{ document_json: string }>('ExportUserData', { tenant: T, user_id: B }, tokens.dpo)).document_json);
    expect(bDoc.counts).toMatchObject({ sessions: 2, audit_entries: 1, consent_records: 1 });

    // Erasure is idempotent.
    const again = await call<Record<string, unknown>>('EraseUserData', { tenant: T, user_id: A, reason: '' }, tokens.dpo);
    expect(again).toMatchObject({ audit_key_destroyed: false, api_keys_revoked: 0, audit_pseudonym: '' });
  });

  it('audits every request: data_exported, consent_changed, data_erased (the erased person named nowhere in clear)', async () => {
    const byType = (t: string) => events.messages.filter((m: ReceivedMessage) => m.json?.['type'] === t && m.key === T);
    await waitFor(() => byType('data_erased').length >= 2 && byType('data_exported').length >= 4 && byType('consent_changed').length >= 4, { what: 'retention events' });
    const exported = byType('data_exported');
    expect(exported.filter((m) => m.json!['outcome'] === 'denied').length).toBeGreaterThanOrEqual(2);
    const ok = exported.find((m) => m.json!['outcome'] === 'success')!.json!;
    expect(ok).toMatchObject({ service: 'retention', tenant: T, action: 'export_user_data', actor: { user_id: A }, details: { requested_by: `${T}/dpo` } });
    const consent = byType('consent_changed').map((m) => [m.json!['action'], (m.json!['actor'] as Record<string, unknown>)['user_id']]);
    expect(consent).toContainEqual(['withdraw_consent', A]);
    const erased = byType('data_erased').find((m) => m.json!['outcome'] === 'success')!;
    expect(erased.json).toMatchObject({ action: 'erase_user_data', actor: { user_id: null }, details: { requested_by: `${T}/dpo`, request_reason: 'ticket-4711', api_keys_revoked: 2, audit_key_destroyed: true } });
    expect(String(erased.json!['resource'])).toMatch(/^audit_subject:[0-9a-f]{64}$/);
    expect(erased.value!.toString('utf8')).not.toContain(A);
  });

  it('lists policies and runs a dry-run for a * admin', async () => {
    const list = await call<{ policies: Array<Record<string, unknown>> }>('ListPolicies', {}, tokens.ops);
    expect(list.policies.map((p) => [p['name'], p['mode'], p['max_age_days']])).toEqual([
      ['messages', 'batch_delete', 90],
      ['audit_log', 'drop_partitions', 365],
    ]);
    const res = await call<{ results: Array<Record<string, unknown>> }>('RunPolicy', { policy: '', dry_run: true }, tokens.ops);
    expect(res.results.map((r) => [r['policy'], r['outcome'], r['dry_run'], r['rows_deleted']])).toEqual([
      ['messages', 'success', true, '0'],
      ['audit_log', 'success', true, '0'],
    ]);
    const metrics = await (await fetch(`${service.server.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/soma_gdpr_requests_total\{[^}]*kind="erase"[^}]*outcome="success"[^}]*\} 2/);
    expect(metrics).toContain('soma_retention_runs_total');
  });
});
