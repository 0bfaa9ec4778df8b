import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { auditService } from '../../apps/audit/src/audit.service-definition.js';
import type { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { auditClient, auditEnv, event, EventProducer, freshGroupAtEnd, TestDatabase } from './audit-harness.js';

/**
 * The security matrix of every audit endpoint, table-driven: no credential, a bad credential, a valid
 * credential of the wrong tenant, a valid credential without the permission — and the allowed caller as
 * the control row. Real auth service (JWTs it issued), real PostgreSQL and Kafka.
 */
const db = new TestDatabase();
const producer = new EventProducer();
const tenantA = `sec-a-${randomUUID()}`;
const tenantB = `sec-b-${randomUUID()}`;
let auth: AuthHarness;
let service: StartedService<AuditConfig>;
let grpcAddress = '';
let httpUrl = '';

type Case = 'no credential' | 'bad credential' | 'wrong tenant' | 'missing permission' | 'allowed';
/** Bearer per case and endpoint family (filled in beforeAll with real tokens). */
const creds = {} as Record<'bad' | 'readerA' | 'readerB' | 'noScopeAll' | 'verifierAll' | 'verifierB' | 'exporterA' | 'exporterB', string>;

beforeAll(async () => {
  auth = await startAuthHarness();
  await Promise.all([db.create(), producer.connect()]);
  const ports = { grpc: await freePort(), http: await freePort() };
  grpcAddress = `127.0.0.1:${ports.grpc}`;
  service = await startSomaService(auditService, auditEnv(db, await freshGroupAtEnd(), ports, { AUTH_GRPC_ADDRESS: auth.grpcAddress }));
  httpUrl = service.server.httpUrl;
  const token = async (tenant: string, scopes: string[]) => (await auth.issueToken({ tenant, sub: `sec-${randomUUID().slice(0, 8)}`, scopes })).token;
  Object.assign(creds, {
    // Shaped like a JWT, signed with nothing the auth service knows.
    bad: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwidGVuYW50IjoiKiIsInNjb3BlcyI6WyJhdWRpdDphZG1pbiJdfQ.c2lnbmF0dXJlLW9mLW5vYm9keQ',
    readerA: await token(tenantA, ['audit:read']),
    readerB: await token(tenantB, ['audit:read']),
    noScopeAll: await token('*', ['secrets:read', 'gdpr:export']),
    verifierAll: await token('*', ['audit:verify']),
    verifierB: await token(tenantB, ['audit:verify', 'audit:admin']),
    exporterA: await token(tenantA, ['audit:export']),
    exporterB: await token(tenantB, ['audit:export']),
  });
  await producer.send(tenantA, Array.from({ length: 20 }, () => JSON.stringify(event(tenantA))));
  await producer.send(tenantB, Array.from({ length: 10 }, () => JSON.stringify(event(tenantB))));
  // The tenants' logs also hold what the auth service emitted while issuing the tokens: the matrix counts ours by type.
  await waitFor(async () => (await typed(tenantA)) === 20 && (await typed(tenantB)) === 10, { timeoutMs: 90_000, what: 'events stored' });
});

async function typed(tenant: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE tenant = $1 AND event_type = 'authentication_failed'", [tenant]);
  return Number(rows[0]!.n);
}

afterAll(async () => {
  await service?.stop();
  await auth?.stop();
  await producer.disconnect();
  await db.drop();
});

interface GrpcRow {
  method: 'QueryEvents' | 'CountEvents' | 'VerifyChain' | 'GetServiceInfo';
  request: Record<string, unknown>;
  case: Case;
  credential: () => string | null;
  /** gRPC status code expected (status.OK = answered). */
  expect: status;
}

const queryA = { filter: { tenant: tenantA, event_type: 'authentication_failed' } };
const grpcRows: GrpcRow[] = [
  ...(['QueryEvents', 'CountEvents'] as const).flatMap((method): GrpcRow[] => [
    { method, request: queryA, case: 'no credential', credential: () => null, expect: status.UNAUTHENTICATED },
    { method, request: queryA, case: 'bad credential', credential: () => creds.bad, expect: status.UNAUTHENTICATED },
    { method, request: queryA, case: 'wrong tenant', credential: () => creds.readerB, expect: status.PERMISSION_DENIED },
    { method, request: queryA, case: 'missing permission', credential: () => creds.noScopeAll, expect: status.PERMISSION_DENIED },
    { method, request: queryA, case: 'allowed', credential: () => creds.readerA, expect: status.OK },
  ]),
  { method: 'VerifyChain', request: {}, case: 'no credential', credential: () => null, expect: status.UNAUTHENTICATED },
  { method: 'VerifyChain', request: {}, case: 'bad credential', credential: () => creds.bad, expect: status.UNAUTHENTICATED },
  // Chains interleave every tenant: a single-tenant principal may not verify, even with audit:admin.
  { method: 'VerifyChain', request: {}, case: 'wrong tenant', credential: () => creds.verifierB, expect: status.PERMISSION_DENIED },
  { method: 'VerifyChain', request: {}, case: 'missing permission', credential: () => creds.noScopeAll, expect: status.PERMISSION_DENIED },
  { method: 'VerifyChain', request: {}, case: 'allowed', credential: () => creds.verifierAll, expect: status.OK },
  // GetServiceInfo is the suite's public operational endpoint (like grpc.health.v1): it answers every
  // row the same and reveals only service, version, instance id and start time (asserted below).
  ...(['no credential', 'bad credential', 'wrong tenant', 'missing permission', 'allowed'] as const).map(
    (c): GrpcRow => ({ method: 'GetServiceInfo', request: {}, case: c, credential: () => ({ 'no credential': null, 'bad credential': creds.bad, 'wrong tenant': creds.readerB, 'missing permission': creds.noScopeAll, allowed: creds.readerA })[c], expect: status.OK }),
  ),
];

describe('security matrix: gRPC soma.audit.v1.AuditService', () => {
  it.each(grpcRows.map((r) => [r.method, r.case, status[r.expect], r] as const))('%s / %s → %s', async (_m, _c, _e, row) => {
    const client = auditClient(grpcAddress, row.credential());
    try {
      const call = client.call<Record<string, unknown>>(row.method, row.request);
      if (row.expect === status.OK) {
        const res = await call;
        if (row.method === 'GetServiceInfo') expect(Object.keys(res).sort()).toEqual(['instance_id', 'service', 'started_at', 'version']);
        if (row.method === 'QueryEvents') expect((res['records'] as unknown[]).length).toBe(20);
        if (row.method === 'CountEvents') expect(res['count']).toBe('20');
        if (row.method === 'VerifyChain') expect(res['intact']).toBe(true);
      } else {
        const err = await call.then(() => null, (e: { code: number; details: string }) => e);
        expect(err?.code).toBe(row.expect);
        // A refusal says nothing about the log: no rows, no counts, no tenant names of others.
        expect(err?.details ?? '').not.toContain(tenantA);
      }
    } finally {
      client.close();
    }
  });

  it('a tenant reader without a tenant filter is confined to its own tenant, not given everything', async () => {
    const client = auditClient(grpcAddress, creds.readerB);
    try {
      const res = await client.call<{ records: Array<{ tenant: string }> }>('QueryEvents', { filter: {}, page_size: 1000 });
      expect(res.records.length).toBeGreaterThanOrEqual(10);
      expect(res.records.every((r) => r.tenant === tenantB)).toBe(true);
      expect(await client.call('CountEvents', { filter: { event_type: 'authentication_failed' } })).toEqual({ count: '10' });
      // Each read is itself an event of the reader's tenant (audit_log_accessed), stored while we look:
      // an unfiltered count lies between what the query saw and what tenant B holds afterwards, far below
      // tenant A's rows, i.e. confined.
      const count = Number((await client.call<{ count: string }>('CountEvents', { filter: {} })).count);
      expect(count).toBeGreaterThanOrEqual(res.records.length);
      expect(count).toBeLessThanOrEqual(await db.count(tenantB));
    } finally {
      client.close();
    }
  });
});

interface HttpRow {
  case: Case;
  credential: () => string | null;
  status: number;
}

const httpRows: HttpRow[] = [
  { case: 'no credential', credential: () => null, status: 401 },
  { case: 'bad credential', credential: () => creds.bad, status: 401 },
  { case: 'wrong tenant', credential: () => creds.exporterB, status: 403 },
  { case: 'missing permission', credential: () => creds.readerA, status: 403 },
  { case: 'allowed', credential: () => creds.exporterA, status: 200 },
];

describe('security matrix: HTTP NDJSON export GET /v1/audit/export', () => {
  it.each(httpRows.map((r) => [r.case, r.status, r] as const))('%s → %d', async (_c, _s, row) => {
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const bearer = row.credential();
    const res = await fetch(`${httpUrl}/v1/audit/export?from=${from}&to=${to}&tenant=${encodeURIComponent(tenantA)}`, { headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` } });
    expect(res.status).toBe(row.status);
    const body = await res.text();
    if (row.status === 200) {
      expect(res.headers.get('content-type')).toContain('application/x-ndjson');
      const lines = body.trim().split('\n').map((l) => JSON.parse(l) as { tenant: string; event_type: string });
      expect(lines.filter((l) => l.event_type === 'authentication_failed').length).toBe(20);
      expect(lines.every((l) => l.tenant === tenantA)).toBe(true);
    } else {
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(body).not.toContain('"event_id"');
    }
  });
});
