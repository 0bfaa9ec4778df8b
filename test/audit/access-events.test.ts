import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { auditService } from '../../apps/audit/src/audit.service-definition.js';
import type { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { TopicCollector, type ReceivedMessage } from '../support/kafka.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { auditClient, auditEnv, event, EventProducer, exportApiKey, freshGroupAtEnd, TestDatabase } from './audit-harness.js';

/**
 * "Who watched the watchers" (ADR 0408): every read of the audit log — QueryEvents, CountEvents,
 * VerifyChain, the NDJSON export — is itself an `audit_log_accessed` event on security.events, granted
 * or denied, without the credential or clear personal data; a read that cannot be recorded is refused.
 * Real auth service, Kafka and PostgreSQL.
 */
const db = new TestDatabase();
const producer = new EventProducer();
const run = randomUUID().slice(0, 8);
const tenantA = `acc-a-${run}`;
const tenantB = `acc-b-${run}`;
const subject = `alice-${run}@example.com`;
const ALICE_ROWS = 4;
let auth: AuthHarness;
let service: StartedService<AuditConfig>;
let grpcAddress = '';
let httpUrl = '';
let accessEvents: TopicCollector;
const creds = {} as Record<'readerA' | 'readerB' | 'exporterA' | 'adminA' | 'verifierAll', { token: string; sub: string }>;

interface AccessEvent {
  type: string;
  service: string;
  tenant: string;
  actor: { user_id: string | null; ip_address: string | null; user_agent: string | null };
  action: string;
  resource: string;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown> & { filter: Record<string, unknown> };
}

const ours = (m: ReceivedMessage) => m.json?.['type'] === 'audit_log_accessed' && m.json['service'] === 'audit' && Object.values(creds).some((c) => c.sub === (m.json?.['actor'] as { user_id?: string })?.user_id);
/** The access events of one caller, in the order they were published. */
const eventsOf = (sub: string) => accessEvents.messages.filter((m) => (m.json!['actor'] as { user_id: string }).user_id === sub);
const waitForEvent = async (sub: string, match: (e: AccessEvent) => boolean, what: string) =>
  (await waitFor(() => eventsOf(sub).find((m) => match(m.json as unknown as AccessEvent)), { timeoutMs: 30_000, what }));

beforeAll(async () => {
  auth = await startAuthHarness();
  await Promise.all([db.create(), producer.connect()]);
  accessEvents = await new TopicCollector(Topics.SecurityEvents, ours).start();
  const ports = { grpc: await freePort(), http: await freePort() };
  grpcAddress = `127.0.0.1:${ports.grpc}`;
  service = await startSomaService(auditService, auditEnv(db, await freshGroupAtEnd(), ports, { AUTH_GRPC_ADDRESS: auth.grpcAddress }));
  httpUrl = service.server.httpUrl;
  const token = async (tenant: string, scopes: string[]) => {
    const sub = `acc-${randomUUID().slice(0, 8)}`;
    return { token: (await auth.issueToken({ tenant, sub, scopes })).token, sub };
  };
  Object.assign(creds, {
    readerA: await token(tenantA, ['audit:read']),
    readerB: await token(tenantB, ['audit:read']),
    exporterA: await token(tenantA, ['audit:export']),
    adminA: await token(tenantA, ['audit:admin']),
    verifierAll: await token('*', ['audit:verify']),
  });
  const rows = [
    ...Array.from({ length: ALICE_ROWS }, () => event(tenantA, { actor: { user_id: subject, ip_address: '203.0.113.7', user_agent: 'curl/8.0' } })),
    ...Array.from({ length: 6 }, () => event(tenantA, { actor: { user_id: `other-${run}`, ip_address: null, user_agent: null } })),
  ];
  await producer.send(tenantA, rows.map((e) => JSON.stringify(e)));
  await waitFor(async () => Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE tenant = $1 AND event_type = 'authentication_failed'", [tenantA])).rows[0]!.n) === 10, { timeoutMs: 90_000, what: 'events stored' });
});

afterAll(async () => {
  await service?.stop();
  await auth?.stop();
  await Promise.all([accessEvents?.stop(), producer.disconnect()]);
  await db.drop();
});

describe('audit_log_accessed on security.events (real Kafka + PostgreSQL + auth)', () => {
  it('a query by user is recorded with the subject pseudonym, the personal fields revealed and the caller, never the credential or the user id', async () => {
    const client = auditClient(grpcAddress, creds.readerA.token);
    let pseudonym = '';
    try {
      const res = await client.call<{ records: Array<{ personal_revealed: boolean; user_pseudonym: string }> }>('QueryEvents', { filter: { user_id: subject, event_type: 'authentication_failed' }, page_size: 50 });
      expect(res.records).toHaveLength(ALICE_ROWS);
      expect(res.records.every((r) => r.personal_revealed)).toBe(true);
      pseudonym = res.records[0]!.user_pseudonym;
    } finally {
      client.close();
    }
    const m = await waitForEvent(creds.readerA.sub, (e) => e.action === 'query_events', 'the query event');
    const e = m.json as unknown as AccessEvent;
    expect(e).toMatchObject({ type: 'audit_log_accessed', service: 'audit', tenant: tenantA, resource: `audit_log:${tenantA}`, outcome: 'success', reason: null, actor: { user_id: creds.readerA.sub, ip_address: '127.0.0.1' } });
    expect(e.details).toMatchObject({
      operation: 'query_events',
      filter: { tenant: tenantA, event_type: 'authentication_failed', by_user: true, from: null, to: null },
      page_size: 50, continued: false, records_returned: ALICE_ROWS, personal_revealed: true, personal_records: ALICE_ROWS, more: false,
    });
    // The value the subject's rows carry: linkable while their key exists, like the rows themselves.
    expect(pseudonym).toMatch(/^[0-9a-f]{64}$/);
    expect(e.details.filter['user_pseudonym']).toBe(pseudonym);
    const raw = m.value!.toString('utf8');
    expect(raw).not.toContain(creds.readerA.token);
    expect(raw).not.toContain(creds.readerA.token.split('.')[2]!);
    expect(raw).not.toContain(`alice-${run}`);
    expect(m.headers['soma-event-type']?.toString()).toBe('audit_log_accessed');
  });

  it('the access event is itself stored in the tenant log, readable by its auditors (the watcher is watched)', async () => {
    await waitFor(async () => Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE tenant = $1 AND event_type = 'audit_log_accessed' AND action = 'query_events'", [tenantA])).rows[0]!.n) > 0, { timeoutMs: 30_000, what: 'access event stored' });
    const client = auditClient(grpcAddress, creds.adminA.token);
    try {
      const res = await client.call<{ records: Array<{ action: string; outcome: string; user_pseudonym: string; details_json: string }> }>('QueryEvents', { filter: { event_type: 'audit_log_accessed' }, page_size: 100 });
      const stored = res.records.find((r) => r.action === 'query_events' && (JSON.parse(r.details_json) as { filter: { by_user: boolean } }).filter.by_user);
      expect(stored).toMatchObject({ outcome: 'success' });
      expect(stored!.user_pseudonym).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      client.close();
    }
  });

  it('CountEvents is recorded with the count; VerifyChain with its result', async () => {
    const reader = auditClient(grpcAddress, creds.readerA.token);
    const verifier = auditClient(grpcAddress, creds.verifierAll.token);
    try {
      const from = new Date(Date.now() - 3600_000).toISOString();
      const { count } = await reader.call<{ count: string }>('CountEvents', { filter: { event_type: 'authentication_failed', from } });
      expect(count).toBe('10');
      const verified = await verifier.call<{ intact: boolean; rows_checked: string }>('VerifyChain', {});
      const c = (await waitForEvent(creds.readerA.sub, (e) => e.action === 'count_events', 'the count event')).json as unknown as AccessEvent;
      expect(c).toMatchObject({ tenant: tenantA, outcome: 'success', details: { operation: 'count_events', count: 10, records_returned: 0, personal_revealed: false, filter: { tenant: tenantA, from: new Date(from).toISOString(), by_user: false } } });
      const v = (await waitForEvent(creds.verifierAll.sub, (e) => e.action === 'verify_chain', 'the verify event')).json as unknown as AccessEvent;
      expect(v).toMatchObject({ tenant: '*', resource: 'audit_log:*', outcome: 'success', details: { operation: 'verify_chain', intact: verified.intact, rows_checked: Number(verified.rows_checked) } });
    } finally {
      reader.close();
      verifier.close();
    }
  });

  it.each([
    ['QueryEvents of another tenant', 'readerB', 'QueryEvents', { filter: { tenant: tenantA, user_id: subject } }, 'query_events', 'other_tenant', tenantB, tenantA],
    ['CountEvents without audit:read', 'exporterA', 'CountEvents', { filter: {} }, 'count_events', 'missing_scope', tenantA, tenantA],
    ['VerifyChain by a single-tenant admin', 'adminA', 'VerifyChain', {}, 'verify_chain', 'not_all_tenants', tenantA, '*'],
  ] as const)('a refused read is recorded as denied: %s', async (_n, who, method, req, action, reason, tenant, read) => {
    const client = auditClient(grpcAddress, creds[who].token);
    try {
      await expect(client.call(method, req)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    } finally {
      client.close();
    }
    const m = await waitForEvent(creds[who].sub, (e) => e.action === action && e.outcome === 'denied', `the ${action} denial`);
    expect(m.json).toMatchObject({ type: 'audit_log_accessed', tenant, resource: `audit_log:${read}`, outcome: 'denied', reason, details: { operation: action } });
    expect(m.json!['details']).not.toHaveProperty('records_returned');
    expect(m.value!.toString('utf8')).not.toContain(`alice-${run}`);
    expect(m.value!.toString('utf8')).not.toContain(creds[who].token);
  });

  it('the export is recorded before its first record and at its end with the number streamed; a refused one as denied', async () => {
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const url = `${httpUrl}/v1/audit/export?from=${from}&to=${to}`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${creds.exporterA.token}`, 'user-agent': 'siem-puller/1.0' } });
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n');
    const phases = async () => eventsOf(creds.exporterA.sub).map((m) => m.json as unknown as AccessEvent).filter((e) => e.action === 'export_events');
    await waitFor(async () => (await phases()).length >= 2, { timeoutMs: 30_000, what: 'export started + finished' });
    const [started, finished] = await phases();
    expect(started).toMatchObject({ tenant: tenantA, resource: `audit_log:${tenantA}`, outcome: 'success', actor: { user_agent: 'siem-puller/1.0' }, details: { phase: 'started', filter: { tenant: tenantA, from, to } } });
    expect(finished).toMatchObject({ outcome: 'success', details: { phase: 'finished', complete: true, records_returned: lines.length, personal_revealed: false } });

    const refused = await fetch(url, { headers: { authorization: `Bearer ${creds.readerA.token}` } });
    expect(refused.status).toBe(403);
    const denial = await waitForEvent(creds.readerA.sub, (e) => e.action === 'export_events', 'the export denial');
    expect(denial.json).toMatchObject({ outcome: 'denied', reason: 'missing_scope', details: { needed_scope: 'audit:export' } });
  });
});

describe('fail closed: a read whose event cannot be buffered is refused', () => {
  let isolated: StartedService<AuditConfig> | undefined;
  afterAll(async () => {
    await isolated?.stop();
  });

  it('with the event buffer at its bound (broker unreachable), reads answer UNAVAILABLE / 503 and return nothing', async () => {
    // Its own instance: a broker address nobody listens on, so the buffer (bound 100, the minimum) fills.
    const ports = { grpc: await freePort(), http: await freePort() };
    isolated = await startSomaService(auditService, auditEnv(db, `unused-${run}`, ports, {
      KAFKA_BROKERS: `127.0.0.1:${await freePort()}`,
      EVENT_BUFFER_MAX_EVENTS: '100',
      AUDIT_INGEST_ENABLED: 'false',
      AUDIT_SIEM_STREAM_ENABLED: 'false',
    }));
    const client = auditClient(`127.0.0.1:${ports.grpc}`, exportApiKey);
    try {
      let refused: { code: number; metadata: { get(k: string): unknown[] } } | null = null;
      for (let i = 0; i < 150 && !refused; i++) {
        refused = await client.call('VerifyChain', {}).then(() => null, (e: { code: number; metadata: { get(k: string): unknown[] } }) => e);
      }
      expect(refused?.code).toBe(status.UNAVAILABLE);
      expect(refused?.metadata.get('soma-reason')).toEqual(['AUDIT_UNAVAILABLE']);
      const from = new Date(Date.now() - 3600_000).toISOString();
      const res = await fetch(`${isolated.server.httpUrl}/v1/audit/export?from=${from}&to=${new Date().toISOString()}&tenant=${tenantA}`, { headers: { authorization: `Bearer ${exportApiKey}` } });
      expect(res.status).toBe(503);
      const body = await res.text();
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(body).toContain('AUDIT_UNAVAILABLE');
      expect(body).not.toContain('"event_id"');
    } finally {
      client.close();
    }
  });
});
