import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { SECURITY_EVENT_SCHEMA, validateSecurityEvent, type SecurityEventInput } from '@soma/contracts';
import { maskPersonalData } from '@soma/masking';
import type { AuditCaller } from './access.js';
import { AuditAccessLog } from './audit-access-log.js';
import { AuditQueries, EXPORT_PAGE_SIZE } from './audit-query.js';
import type { StoredAuditRow } from './audit-record.js';
import { AuditErrorCode } from './audit.errors.js';
import { ed25519Signer } from './checkpoint.js';
import type { AuditLogReader, QueryFilter, SecurityEventSink } from './ports.js';
import { deriveKek, encryptPii, newSubjectKey, pseudonymOf, wrapSubjectKey } from './subject-crypto.js';

const kek = deriveKek(randomBytes(32).toString('base64url'));
const signer = ed25519Signer(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const aliceKey = newSubjectKey();
const alice = pseudonymOf(aliceKey);

function row(i: number, tenant: string, personal: boolean): StoredAuditRow {
  const event_id = randomUUID();
  return {
    id: String(i + 1),
    timestamp: new Date(Date.UTC(2026, 11, 4, 10, 0, i)),
    occurred_at: new Date(Date.UTC(2026, 11, 4, 10, 0, i)),
    event_id,
    event_type: 'authentication_failed',
    tenant,
    service: 'auth',
    user_id: personal ? alice : null,
    ip_address: personal ? '203.0.113.0/24' : null,
    pii: personal ? encryptPii(aliceKey, event_id, { user_id: 'alice@example.com', ip_address: '203.0.113.7', user_agent: 'curl/8.0' }) : null,
    action: 'login',
    resource: 'session',
    outcome: 'failure',
    reason: 'bad_password',
    details: {},
    trace_id: null,
    chain_partition: 0,
    chain_seq: i + 1,
    prev_hash: Buffer.alloc(32),
    hash: Buffer.alloc(32),
  };
}

/** In-memory read side over `data` (oldest first, no chains); counts subject-key look-ups. */
class MemoryReader implements AuditLogReader {
  subjectLookups = 0;
  constructor(readonly data: StoredAuditRow[]) {}
  private matching(f: QueryFilter): StoredAuditRow[] {
    return this.data.filter((r) => (!f.tenant || r.tenant === f.tenant) && (!f.user_pseudonym || r.user_id === f.user_pseudonym) && (!f.event_type || r.event_type === f.event_type));
  }
  async query(f: QueryFilter, _after: unknown, limit: number) {
    return this.matching(f).reverse().slice(0, limit);
  }
  async count(f: QueryFilter) {
    return this.matching(f).length;
  }
  async subjectKey(tenant: string, userId: string) {
    this.subjectLookups += 1;
    return tenant === 'acme' && userId === 'alice@example.com' ? wrapSubjectKey(kek, tenant, userId, aliceKey) : null;
  }
  async exportRange(_from: Date, _to: Date, tenant: string | undefined, after: { id: string } | null, limit: number) {
    const rows = this.data.filter((r) => !tenant || r.tenant === tenant);
    const start = after ? rows.findIndex((r) => r.id === after.id) + 1 : 0;
    return rows.slice(start, start + limit);
  }
  async chains() {
    return [];
  }
  async rows() {
    return [];
  }
  async rowAt() {
    return null;
  }
  async checkpoints() {
    return [];
  }
}

class Sink implements SecurityEventSink {
  readonly events: SecurityEventInput[] = [];
  full = false;
  publish(e: SecurityEventInput): unknown {
    if (this.full) throw Object.assign(new Error('buffer full'), { name: 'EventBufferFullError' });
    this.events.push(e);
    return e;
  }
}

function setup(rows: StoredAuditRow[] = [...Array.from({ length: 5 }, (_, i) => row(i, 'acme', i % 2 === 0)), row(5, 'globex', false)]) {
  const reader = new MemoryReader(rows);
  const sink = new Sink();
  return { reader, sink, queries: new AuditQueries(reader, kek, signer, new AuditAccessLog(sink)) };
}

const reader: AuditCaller = { subject: 'auditor-1', tenant: 'acme', scopes: ['audit:read'], credential_id: 'key_01JTEST' };
const platform: AuditCaller = { subject: 'platform-ops', tenant: '*', scopes: ['audit:admin'] };
const ctx = { ip_address: '::ffff:198.51.100.4', user_agent: 'grpc-node-js/1.14' };

const code = async (p: Promise<unknown>) => p.then(() => 'OK', (e: { code?: string }) => e.code);

describe('audit_log_accessed: every read of the audit log is recorded', () => {
  it('a query by user records the pseudonym, the personal fields revealed and the credential id, never the user id', async () => {
    const { queries, sink } = setup();
    const res = await queries.query(reader, { user_id: 'alice@example.com', page_size: 2 }, ctx);
    expect(res.records.map((r) => r.personal?.user_id)).toEqual(['alice@example.com', 'alice@example.com']);
    expect(sink.events).toHaveLength(1);
    const e = sink.events[0]!;
    expect(e).toMatchObject({
      type: 'audit_log_accessed', tenant: 'acme', action: 'query_events', resource: 'audit_log:acme', outcome: 'success', reason: null,
      actor: { user_id: 'auditor-1', ip_address: '198.51.100.4', user_agent: 'grpc-node-js/1.14' },
    });
    expect(e.details).toEqual({
      operation: 'query_events',
      credential_id: 'key_01JTEST',
      filter: { tenant: 'acme', event_type: null, outcome: null, from: null, to: null, by_user: true, user_pseudonym: alice },
      page_size: 2, continued: false, records_returned: 2, personal_revealed: true, personal_records: 2, more: true,
    });
    expect(JSON.stringify(e)).not.toContain('alice@');
  });

  it('the event survives the publisher unchanged: it conforms and masking redacts nothing of it', async () => {
    const { queries, sink } = setup();
    const first = await queries.query(reader, { user_id: 'alice@example.com', page_size: 1 }, ctx);
    await queries.query(reader, { user_id: 'alice@example.com', page_size: 1, page_token: first.next_page_token }, ctx);
    await queries.count(platform, { tenant: 'globex', event_type: 'authentication_failed', from: new Date('2026-12-01T00:00:00Z') });
    for (const input of sink.events) {
      // What the publisher (libs/events buildSecurityEvent) makes of it: masked details in the v1 envelope.
      const details = maskPersonalData(input.details ?? {});
      const built = { schema: SECURITY_EVENT_SCHEMA, id: uuidv7(), type: input.type, occurred_at: new Date().toISOString(), service: 'audit', tenant: input.tenant, actor: { user_id: null, ip_address: null, user_agent: null, ...input.actor }, action: input.action, resource: input.resource ?? '', outcome: input.outcome, reason: input.reason ?? null, details, trace_id: null };
      expect(validateSecurityEvent(built)).toMatchObject({ ok: true });
      expect(details).toEqual(input.details);
    }
    expect(sink.events[1]!.details).toMatchObject({ continued: true });
    expect(sink.events[2]).toMatchObject({ tenant: '*', resource: 'audit_log:globex', details: { filter: { tenant: 'globex', from: '2026-12-01T00:00:00.000Z' }, count: 1, records_returned: 0 } });
  });

  it('a query without a user reveals no personal fields; a `*` reader without a tenant reads `*`', async () => {
    const { queries, sink } = setup();
    const res = await queries.query(platform, {}, {});
    expect(res.records).toHaveLength(6);
    expect(sink.events[0]).toMatchObject({ tenant: '*', resource: 'audit_log:*', actor: { user_id: 'platform-ops', ip_address: null, user_agent: null } });
    expect(sink.events[0]!.details).toMatchObject({ filter: { tenant: '*', by_user: false }, records_returned: 6, personal_revealed: false, personal_records: 0 });
    expect(sink.events[0]!.details).not.toHaveProperty('credential_id');
  });

  it('an unknown subject is recorded without any id of it', async () => {
    const { queries, sink } = setup();
    expect((await queries.query(reader, { user_id: 'nobody@example.com' })).records).toEqual([]);
    expect(sink.events[0]!.details).toMatchObject({ filter: { by_user: true, user_pseudonym: null }, records_returned: 0 });
    expect(JSON.stringify(sink.events[0])).not.toContain('nobody');
  });

  it.each([
    ['other tenant', reader, { tenant: 'globex' }, 'other_tenant', 'globex'],
    ['missing scope', { ...reader, scopes: ['audit:export'] }, {}, 'missing_scope', 'acme'],
  ] as const)('a refused query (%s) is recorded as denied, without resolving the subject', async (_n, caller, input, reason, tenant) => {
    const { queries, sink, reader: r } = setup();
    expect(await code(queries.query(caller, { ...input, user_id: 'alice@example.com' }, ctx))).toBe(AuditErrorCode.PermissionDenied);
    expect(r.subjectLookups).toBe(0);
    expect(sink.events).toHaveLength(1);
    expect(sink.events[0]).toMatchObject({ type: 'audit_log_accessed', tenant: 'acme', outcome: 'denied', reason, resource: `audit_log:${tenant}`, details: { operation: 'query_events', needed_scope: 'audit:read', filter: { tenant, by_user: true } } });
    expect(sink.events[0]!.details).not.toHaveProperty('records_returned');
    expect(JSON.stringify(sink.events[0])).not.toContain('alice');
  });

  it('a hostile tenant asked for is recorded storably, with credential-shaped parts masked', async () => {
    const { queries, sink } = setup();
    const asked = 'x\u0000y\uD800 sk-soma-AbCdEfGhIjKlMnOpQrStUv';
    expect(await code(queries.query(reader, { tenant: asked }))).toBe(AuditErrorCode.PermissionDenied);
    const e = sink.events[0]!;
    expect(e.resource).toBe('audit_log:x\uFFFDy\uFFFD sk-soma-…StUv');
    expect((e.details!['filter'] as { tenant: string }).tenant).toBe('x\uFFFDy\uFFFD sk-soma-…StUv');
  });

  it('VerifyChain by a tenant principal is denied not_all_tenants; by `*` it is recorded with its result', async () => {
    const { queries, sink } = setup();
    expect(await code(queries.verify({ ...reader, scopes: ['audit:admin'] }, {}))).toBe(AuditErrorCode.PermissionDenied);
    expect(sink.events[0]).toMatchObject({ action: 'verify_chain', outcome: 'denied', reason: 'not_all_tenants', tenant: 'acme', resource: 'audit_log:*' });
    const result = await queries.verify(platform, { from: new Date('2026-12-01T00:00:00Z') });
    expect(sink.events[1]).toMatchObject({ action: 'verify_chain', outcome: 'success', tenant: '*', details: { intact: result.intact, rows_checked: 0, records_returned: 0, filter: { from: '2026-12-01T00:00:00.000Z', to: null } } });
  });

  it('fails closed: a read whose event cannot be buffered is refused and returns nothing; a refusal stays a refusal', async () => {
    const { queries, sink } = setup();
    sink.full = true;
    expect(await code(queries.query(reader, {}))).toBe(AuditErrorCode.AuditUnavailable);
    expect(await code(queries.count(reader, {}))).toBe(AuditErrorCode.AuditUnavailable);
    expect(await code(queries.verify(platform, {}))).toBe(AuditErrorCode.AuditUnavailable);
    expect(await code(queries.openExport(platform, { from: new Date(0), to: new Date() }))).toBe(AuditErrorCode.AuditUnavailable);
    expect(await code(queries.query(reader, { tenant: 'globex' }))).toBe(AuditErrorCode.PermissionDenied);
  });

  it('an export is recorded before its first record and again at its end, with the number streamed', async () => {
    const rows = Array.from({ length: EXPORT_PAGE_SIZE + 3 }, (_, i) => row(i, 'acme', i % 7 === 0));
    const { queries, sink } = setup(rows);
    const from = new Date('2026-12-04T00:00:00Z');
    const to = new Date('2026-12-05T00:00:00Z');
    const exported = await queries.openExport({ ...reader, scopes: ['audit:export'] }, { from, to }, ctx);
    expect(sink.events.map((e) => e.details?.['phase'])).toEqual(['started']);
    let n = 0;
    for await (const r of exported.records()) {
      expect(r.personal).toBeNull();
      n += 1;
    }
    exported.finish(true);
    exported.finish(true);
    expect(n).toBe(EXPORT_PAGE_SIZE + 3);
    expect(sink.events).toHaveLength(2);
    expect(sink.events[0]).toMatchObject({ action: 'export_events', outcome: 'success', tenant: 'acme', details: { phase: 'started', filter: { tenant: 'acme', from: from.toISOString(), to: to.toISOString() } } });
    expect(sink.events[1]).toMatchObject({ action: 'export_events', outcome: 'success', details: { phase: 'finished', complete: true, records_returned: EXPORT_PAGE_SIZE + 3, personal_revealed: false } });
  });

  it('an export cut short is recorded as interrupted with what had been handed over', async () => {
    const { queries, sink } = setup();
    const exported = await queries.openExport(platform, { from: new Date(0), to: new Date(), tenant: 'acme' });
    for await (const _ of exported.records()) break;
    exported.finish(false);
    expect(sink.events[1]).toMatchObject({ tenant: '*', resource: 'audit_log:acme', outcome: 'failure', reason: 'stream_interrupted', details: { complete: false, records_returned: 1 } });
  });

  it('a refused export is recorded as denied and reads nothing', async () => {
    const { queries, sink } = setup();
    expect(await code(queries.openExport(reader, { from: new Date(0), to: new Date() }))).toBe(AuditErrorCode.PermissionDenied);
    expect(sink.events).toMatchObject([{ action: 'export_events', outcome: 'denied', reason: 'missing_scope', details: { needed_scope: 'audit:export' } }]);
  });
});
