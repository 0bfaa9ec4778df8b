import { describe, expect, it } from 'vitest';
import { GdprService } from './gdpr.service.js';
import type { AuditSubjects, Caller, ConsentRecord, ConsentStore, PlatformSubjectStore, RequestContext, SubjectCredentials } from './ports.js';
import { FakeClock, FakeEvents, FakeMetrics } from './testing-fakes.js';

class Platform implements PlatformSubjectStore {
  tables: Record<string, Array<{ tenant: string; user_id: string; id: number }>> = {
    sessions: [{ tenant: 'acme', user_id: 'u1', id: 1 }, { tenant: 'acme', user_id: 'u2', id: 2 }, { tenant: 'other', user_id: 'u1', id: 3 }],
    messages: [{ tenant: 'acme', user_id: 'u1', id: 10 }],
  };
  async exportUser(tenant: string, userId: string) {
    return Object.entries(this.tables).map(([table, rows]) => ({ table, rows: rows.filter((r) => r.tenant === tenant && r.user_id === userId) }));
  }
  async eraseUser(tenant: string, userId: string) {
    return Object.entries(this.tables).map(([table, rows]) => {
      const keep = rows.filter((r) => !(r.tenant === tenant && r.user_id === userId));
      this.tables[table] = keep;
      return { table, rows: rows.length - keep.length };
    });
  }
}

class Credentials implements SubjectCredentials {
  down = false;
  revoked: string[] = [];
  async listApiKeys() {
    return [{ id: 'k1', masked: 'sk-soma-…abcd', owner_sub: 'u1' }];
  }
  async revokeSubject(tenant: string, userId: string) {
    if (this.down) throw Object.assign(new Error('auth down'), { code: 'AUTH_UNAVAILABLE' });
    this.revoked.push(`${tenant}/${userId}`);
    return { apiKeysRevoked: 1, tokensRevokedBefore: '2026-12-04T12:00:00.000Z' };
  }
}

class Audit implements AuditSubjects {
  keys = new Set(['acme/u1']);
  async pseudonymOf(t: string, u: string) {
    return this.keys.has(`${t}/${u}`) ? 'ab'.repeat(32) : null;
  }
  async exportEntries(t: string, u: string) {
    return { pseudonym: await this.pseudonymOf(t, u), entries: [] };
  }
  async destroyKey(t: string, u: string) {
    return this.keys.delete(`${t}/${u}`);
  }
}

class Consent implements ConsentStore {
  rows: ConsentRecord[] = [];
  async append(r: Omit<ConsentRecord, 'recordedAt'>) {
    const rec = { ...r, recordedAt: new Date(1_800_000_000_000 + this.rows.length).toISOString() };
    this.rows.push(rec);
    return rec;
  }
  async history(t: string, u: string, p?: string) {
    return this.rows.filter((r) => r.tenant === t && r.userId === u && (!p || r.purpose === p));
  }
  async eraseUser(t: string, u: string) {
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => !(r.tenant === t && r.userId === u));
    return before - this.rows.length;
  }
}

const ctx: RequestContext = { requestId: 'r1', bearer: 'Bearer x' };
const admin: Caller = { sub: 'dpo', tenant: 'acme', scopes: ['gdpr:export', 'gdpr:erase', 'consent:read', 'consent:write'], credentialId: 'c' };
const global: Caller = { sub: 'ops', tenant: '*', scopes: ['gdpr:export'], credentialId: 'c' };
const self: Caller = { sub: 'u1', tenant: 'acme', scopes: [], credentialId: 'c' };
const stranger: Caller = { sub: 'u2', tenant: 'acme', scopes: [], credentialId: 'c' };
const otherAdmin: Caller = { ...admin, tenant: 'other' };

function setup() {
  const deps = { platform: new Platform(), credentials: new Credentials(), audit: new Audit(), consent: new Consent(), events: new FakeEvents(), metrics: new FakeMetrics(), clock: new FakeClock(), exportMaxRows: 1000 };
  return { ...deps, gdpr: new GdprService(deps) };
}

describe('GdprService', () => {
  it('exports only the subject’s rows, audited with the subject as actor', async () => {
    const { gdpr, events } = setup();
    const { document, json, sha256 } = await gdpr.exportUserData(admin, 'acme', 'u1', ctx);
    expect(document.format).toBe('soma.gdpr.export/v1');
    expect(document.platform['sessions']).toEqual([{ tenant: 'acme', user_id: 'u1', id: 1 }]);
    expect(document.counts).toMatchObject({ sessions: 1, messages: 1, api_keys: 1, audit_entries: 0 });
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(json)).toEqual(document);
    expect(events.published).toMatchObject([{ type: 'data_exported', tenant: 'acme', actor: { user_id: 'u1' }, details: { requested_by: 'acme/dpo', sha256 } }]);
  });

  it('lets the subject export themself and a * principal export any tenant', async () => {
    const { gdpr, events } = setup();
    await gdpr.exportUserData(self, 'acme', 'u1', ctx);
    await gdpr.exportUserData(global, 'acme', 'u1', ctx);
    expect(events.published.map((e) => e.details['requested_by'])).toEqual(['self', '*/ops']);
  });

  it('denies other users and other tenants, and audits the refusal', async () => {
    const { gdpr, events, metrics } = setup();
    await expect(gdpr.exportUserData(stranger, 'acme', 'u1', ctx)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(gdpr.exportUserData(otherAdmin, 'acme', 'u1', ctx)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(gdpr.eraseUserData(self, 'acme', 'u1', '', ctx)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(events.published.map((e) => [e.type, e.outcome])).toEqual([['data_exported', 'denied'], ['data_exported', 'denied'], ['data_erased', 'denied']]);
    expect(metrics.gdprCalls.filter(([, o]) => o === 'denied')).toHaveLength(3);
  });

  it('refuses when the audit outbox cannot take events (fail closed)', async () => {
    const { gdpr, events, platform } = setup();
    events.down = 'full';
    await expect(gdpr.exportUserData(admin, 'acme', 'u1', ctx)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(gdpr.eraseUserData(admin, 'acme', 'u1', '', ctx)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(platform.tables['sessions']).toHaveLength(3);
  });

  it('erases: revokes first, deletes the subject’s rows only, shreds the audit key, names no one in the event', async () => {
    const { gdpr, events, platform, credentials, audit, consent } = setup();
    await gdpr.recordConsent(self, { tenant: 'acme', userId: 'u1', purpose: 'marketing', granted: true, source: 'web', policyVersion: 'v1' }, ctx);
    const r = await gdpr.eraseUserData(admin, 'acme', 'u1', 'ticket-42', ctx);
    expect(r).toMatchObject({ apiKeysRevoked: 1, consentRecordsDeleted: 1, auditKeyDestroyed: true, auditPseudonym: 'ab'.repeat(32) });
    expect(r.rowsDeleted).toEqual([{ table: 'sessions', rows: 1 }, { table: 'messages', rows: 1 }]);
    expect(platform.tables['sessions']?.map((x) => x.id)).toEqual([2, 3]);
    expect(credentials.revoked).toEqual(['acme/u1']);
    expect(audit.keys.size).toBe(0);
    expect(consent.rows).toHaveLength(0);
    const erased = events.published.find((e) => e.type === 'data_erased')!;
    expect(erased).toMatchObject({ outcome: 'success', resource: `audit_subject:${'ab'.repeat(32)}`, actor: { user_id: null } });
    expect(JSON.stringify(erased)).not.toContain('u1');
    // idempotent
    const again = await gdpr.eraseUserData(admin, 'acme', 'u1', '', ctx);
    expect(again).toMatchObject({ auditKeyDestroyed: false, auditPseudonym: null, rowsDeleted: [{ table: 'sessions', rows: 0 }, { table: 'messages', rows: 0 }] });
  });

  it('deletes nothing when auth cannot revoke, and records the failed step', async () => {
    const { gdpr, events, platform, credentials } = setup();
    credentials.down = true;
    await expect(gdpr.eraseUserData(admin, 'acme', 'u1', '', ctx)).rejects.toThrow('auth down');
    expect(platform.tables['sessions']).toHaveLength(3);
    expect(events.published).toMatchObject([{ type: 'data_erased', outcome: 'error', reason: 'failed_at_revoke_credentials' }]);
  });

  it('records consent as append-only history; absent = not granted', async () => {
    const { gdpr, events } = setup();
    const none = await gdpr.getConsent(self, 'acme', 'u1', 'analytics', true);
    expect(none.current).toMatchObject([{ purpose: 'analytics', granted: false, recordedAt: '' }]);
    await gdpr.recordConsent(self, { tenant: 'acme', userId: 'u1', purpose: 'analytics', granted: true, source: 'web', policyVersion: 'v1' }, ctx);
    await gdpr.recordConsent(admin, { tenant: 'acme', userId: 'u1', purpose: 'analytics', granted: false, source: 'support', policyVersion: 'v1' }, ctx);
    const got = await gdpr.getConsent(admin, 'acme', 'u1', '', true);
    expect(got.current).toMatchObject([{ purpose: 'analytics', granted: false, recordedBy: 'acme/dpo' }]);
    expect(got.history.map((h) => h.granted)).toEqual([true, false]);
    expect(events.published.map((e) => [e.type, e.action, e.details['previously_granted']])).toEqual([
      ['consent_changed', 'grant_consent', false],
      ['consent_changed', 'withdraw_consent', true],
    ]);
    await expect(gdpr.getConsent(stranger, 'acme', 'u1', '', false)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  it('validates inputs', async () => {
    const { gdpr } = setup();
    await expect(gdpr.exportUserData(admin, 'ac me', 'u1', ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(gdpr.exportUserData(admin, 'acme', '', ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(gdpr.recordConsent(self, { tenant: 'acme', userId: 'u1', purpose: 'Bad Purpose', granted: true, source: '', policyVersion: '' }, ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
