import { createHash } from 'node:crypto';
import { authorize } from './access.js';
import { RetentionError, RetentionErrorCode } from './retention.errors.js';
import type {
  AuditEntryExport,
  AuditSubjects,
  Caller,
  Clock,
  ConsentRecord,
  ConsentStore,
  PlatformSubjectStore,
  RequestContext,
  RetentionEvents,
  RetentionMetrics,
  SubjectCredentials,
} from './ports.js';

export const EXPORT_FORMAT = 'soma.gdpr.export/v1';

/** The export document (apps/retention/README.md documents every field). */
export interface ExportDocument {
  format: typeof EXPORT_FORMAT;
  generated_at: string;
  tenant: string;
  user_id: string;
  platform: Record<string, Array<Record<string, unknown>>>;
  api_keys: Array<Record<string, unknown>>;
  consent: { current: ConsentView[]; history: ConsentView[] };
  audit: { pseudonym: string | null; entries: AuditEntryExport[] };
  counts: Record<string, number>;
}

export interface ConsentView {
  purpose: string;
  granted: boolean;
  recorded_at: string;
  source: string;
  policy_version: string;
  recorded_by: string;
}

export interface ErasureResult {
  rowsDeleted: Array<{ table: string; rows: number }>;
  consentRecordsDeleted: number;
  apiKeysRevoked: number;
  tokensRevokedBefore: string;
  auditKeyDestroyed: boolean;
  auditPseudonym: string | null;
}

export interface GdprDeps {
  platform: PlatformSubjectStore;
  credentials: SubjectCredentials;
  audit: AuditSubjects;
  consent: ConsentStore;
  events: RetentionEvents;
  metrics: RetentionMetrics;
  clock: Clock;
  /** Most rows (platform + audit) one export may hold. */
  exportMaxRows: number;
}

const TENANT = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const PURPOSE = /^[a-z0-9][a-z0-9_.:-]{0,63}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkSubject(tenant: string, userId: string): void {
  if (!TENANT.test(tenant)) throw new RetentionError(RetentionErrorCode.InvalidArgument, 'tenant is not a valid tenant id');
  if (userId.length < 1 || userId.length > 256 || CONTROL.test(userId)) throw new RetentionError(RetentionErrorCode.InvalidArgument, 'user_id must be 1 to 256 printable characters');
}

function view(r: ConsentRecord): ConsentView {
  return { purpose: r.purpose, granted: r.granted, recorded_at: r.recordedAt, source: r.source, policy_version: r.policyVersion, recorded_by: r.recordedBy };
}

/** The latest decision per purpose (history is oldest first). */
export function currentConsent(history: ConsentRecord[]): ConsentRecord[] {
  const latest = new Map<string, ConsentRecord>();
  for (const r of history) latest.set(r.purpose, r);
  return [...latest.values()].sort((a, b) => a.purpose.localeCompare(b.purpose));
}

/**
 * GDPR data-subject requests. Each request is audited (`data_exported`, `data_erased`,
 * `consent_changed`) with the subject as the event's actor — the one field the audit log encrypts under
 * the subject key — so the audit trail of a person is itself erased by their erasure. The caller is
 * recorded as `requested_by` (or `self`).
 */
export class GdprService {
  constructor(private readonly deps: GdprDeps) {}

  private requireAuditable(): void {
    const reason = this.deps.events.unavailableReason();
    if (reason) throw new RetentionError(RetentionErrorCode.AuditUnavailable, 'security events cannot be recorded now; request refused', { reason });
  }

  private requester(caller: Caller, how: 'self' | 'scope'): string {
    return how === 'self' ? 'self' : `${caller.tenant}/${caller.sub}`;
  }

  async exportUserData(caller: Caller, tenant: string, userId: string, ctx: RequestContext): Promise<{ document: ExportDocument; json: string; sha256: string }> {
    checkSubject(tenant, userId);
    const how = this.guard('export', () => authorize(caller, ['gdpr:export'], { tenant, userId, allowSelf: true }), { tenant, caller });
    this.requireAuditable();
    try {
      const platform = await this.deps.platform.exportUser(tenant, userId, this.deps.exportMaxRows);
      const platformRows = platform.reduce((n, t) => n + t.rows.length, 0);
      const audit = await this.deps.audit.exportEntries(tenant, userId, Math.max(0, this.deps.exportMaxRows - platformRows));
      const apiKeys = await this.deps.credentials.listApiKeys(tenant, userId, ctx);
      const history = await this.deps.consent.history(tenant, userId);
      const document: ExportDocument = {
        format: EXPORT_FORMAT,
        generated_at: this.deps.clock.now().toISOString(),
        tenant,
        user_id: userId,
        platform: Object.fromEntries(platform.map((t) => [t.table, t.rows])),
        api_keys: apiKeys,
        consent: { current: currentConsent(history).map(view), history: history.map(view) },
        audit,
        counts: {
          ...Object.fromEntries(platform.map((t) => [t.table, t.rows.length])),
          api_keys: apiKeys.length,
          consent_records: history.length,
          audit_entries: audit.entries.length,
        },
      };
      const json = JSON.stringify(document);
      const sha256 = createHash('sha256').update(json, 'utf8').digest('hex');
      // Audited before anything leaves: a refused event means no export.
      this.deps.events.publish({
        type: 'data_exported',
        tenant,
        action: 'export_user_data',
        resource: 'gdpr_export',
        outcome: 'success',
        actor: { user_id: userId, ip_address: ctx.ipAddress ?? null, user_agent: ctx.userAgent ?? null },
        details: { requested_by: this.requester(caller, how), counts: document.counts, sha256, format: EXPORT_FORMAT },
      });
      this.deps.metrics.gdpr('export', 'success');
      return { document, json, sha256 };
    } catch (e) {
      this.deps.metrics.gdpr('export', 'error');
      throw e;
    }
  }

  /**
   * Erase in the order that closes doors first: credentials (so the user cannot create new data while
   * it is being deleted), platform rows, consent records, then the audit subject key. Every step is
   * idempotent, so a failed erasure is completed by calling again.
   */
  async eraseUserData(caller: Caller, tenant: string, userId: string, reason: string, ctx: RequestContext): Promise<ErasureResult> {
    checkSubject(tenant, userId);
    if (reason.length > 256 || CONTROL.test(reason)) throw new RetentionError(RetentionErrorCode.InvalidArgument, 'reason must be at most 256 printable characters');
    const how = this.guard('erase', () => authorize(caller, ['gdpr:erase'], { tenant, userId, allowSelf: false }), { tenant, caller });
    this.requireAuditable();
    const result: ErasureResult = { rowsDeleted: [], consentRecordsDeleted: 0, apiKeysRevoked: 0, tokensRevokedBefore: '', auditKeyDestroyed: false, auditPseudonym: null };
    let step = 'revoke_credentials';
    try {
      const revoked = await this.deps.credentials.revokeSubject(tenant, userId, ctx);
      result.apiKeysRevoked = revoked.apiKeysRevoked;
      result.tokensRevokedBefore = revoked.tokensRevokedBefore;
      step = 'platform_rows';
      result.rowsDeleted = await this.deps.platform.eraseUser(tenant, userId);
      step = 'consent';
      result.consentRecordsDeleted = await this.deps.consent.eraseUser(tenant, userId);
      step = 'audit_key';
      // The pseudonym is computed before the key goes: it is what links this erasure record to the
      // rows that become unreadable, without naming the person.
      result.auditPseudonym = await this.deps.audit.pseudonymOf(tenant, userId).catch(() => null);
      result.auditKeyDestroyed = await this.deps.audit.destroyKey(tenant, userId);
    } catch (e) {
      this.deps.metrics.gdpr('erase', 'error');
      this.publishErasure(caller, how, tenant, result, reason, ctx, 'error', step);
      throw e;
    }
    this.publishErasure(caller, how, tenant, result, reason, ctx, 'success', null);
    this.deps.metrics.gdpr('erase', 'success');
    return result;
  }

  private publishErasure(caller: Caller, how: 'self' | 'scope', tenant: string, r: ErasureResult, reason: string, ctx: RequestContext, outcome: 'success' | 'error', failedStep: string | null): void {
    // The erased person is deliberately not the actor: that would create a fresh subject key and put
    // their identity back into the audit log. The pseudonym names the shredded rows instead.
    this.deps.events.publish({
      type: 'data_erased',
      tenant,
      action: 'erase_user_data',
      resource: r.auditPseudonym ? `audit_subject:${r.auditPseudonym}` : 'audit_subject:none',
      outcome,
      reason: failedStep ? `failed_at_${failedStep}` : null,
      actor: { user_id: null, ip_address: ctx.ipAddress ?? null, user_agent: null },
      details: {
        requested_by: this.requester(caller, how),
        request_reason: reason || null,
        rows_deleted: Object.fromEntries(r.rowsDeleted.map((t) => [t.table, t.rows])),
        consent_records_deleted: r.consentRecordsDeleted,
        api_keys_revoked: r.apiKeysRevoked,
        tokens_revoked_before: r.tokensRevokedBefore || null,
        audit_key_destroyed: r.auditKeyDestroyed,
      },
    });
  }

  async recordConsent(
    caller: Caller,
    input: { tenant: string; userId: string; purpose: string; granted: boolean; source: string; policyVersion: string },
    ctx: RequestContext,
  ): Promise<ConsentRecord> {
    checkSubject(input.tenant, input.userId);
    if (!PURPOSE.test(input.purpose)) throw new RetentionError(RetentionErrorCode.InvalidArgument, 'purpose must match [a-z0-9][a-z0-9_.:-]{0,63}');
    if (input.source.length > 128 || CONTROL.test(input.source) || input.policyVersion.length > 64 || CONTROL.test(input.policyVersion)) {
      throw new RetentionError(RetentionErrorCode.InvalidArgument, 'source (≤128) and policy_version (≤64) must be printable');
    }
    const how = this.guard('consent_record', () => authorize(caller, ['consent:write'], { tenant: input.tenant, userId: input.userId, allowSelf: true }), { tenant: input.tenant, caller });
    this.requireAuditable();
    const before = currentConsent(await this.deps.consent.history(input.tenant, input.userId, input.purpose))[0];
    const record = await this.deps.consent.append({
      tenant: input.tenant,
      userId: input.userId,
      purpose: input.purpose,
      granted: input.granted,
      source: input.source,
      policyVersion: input.policyVersion,
      recordedBy: this.requester(caller, how),
    });
    this.deps.events.publish({
      type: 'consent_changed',
      tenant: input.tenant,
      action: input.granted ? 'grant_consent' : 'withdraw_consent',
      resource: `consent:${input.purpose}`,
      outcome: 'success',
      actor: { user_id: input.userId, ip_address: ctx.ipAddress ?? null, user_agent: ctx.userAgent ?? null },
      details: {
        purpose: input.purpose,
        granted: input.granted,
        previously_granted: before?.granted ?? false,
        source: input.source || null,
        policy_version: input.policyVersion || null,
        requested_by: record.recordedBy,
      },
    });
    this.deps.metrics.gdpr('consent_record', 'success');
    return record;
  }

  async getConsent(caller: Caller, tenant: string, userId: string, purpose: string, includeHistory: boolean): Promise<{ current: ConsentRecord[]; history: ConsentRecord[] }> {
    checkSubject(tenant, userId);
    if (purpose !== '' && !PURPOSE.test(purpose)) throw new RetentionError(RetentionErrorCode.InvalidArgument, 'purpose must match [a-z0-9][a-z0-9_.:-]{0,63}');
    this.guard('consent_get', () => authorize(caller, ['consent:read', 'consent:write'], { tenant, userId, allowSelf: true }));
    const history = await this.deps.consent.history(tenant, userId, purpose || undefined);
    let current = currentConsent(history);
    // Opt-in: a purpose never recorded is reported as not granted, explicitly.
    if (purpose && current.length === 0) {
      current = [{ tenant, userId, purpose, granted: false, recordedAt: '', source: '', policyVersion: '', recordedBy: '' }];
    }
    this.deps.metrics.gdpr('consent_get', 'success');
    return { current, history: includeHistory ? history : [] };
  }

  /** Run the access check; a refusal is counted and (except for reads) audited as `denied`. */
  private guard<T>(kind: 'export' | 'erase' | 'consent_record' | 'consent_get', check: () => T, audit?: { tenant: string; caller: Caller }): T {
    try {
      return check();
    } catch (e) {
      this.deps.metrics.gdpr(kind, 'denied');
      const type = kind === 'export' ? 'data_exported' : kind === 'erase' ? 'data_erased' : kind === 'consent_record' ? 'consent_changed' : undefined;
      if (type && audit) {
        try {
          this.deps.events.publish({
            type,
            tenant: audit.tenant,
            action: kind === 'export' ? 'export_user_data' : kind === 'erase' ? 'erase_user_data' : 'record_consent',
            resource: kind === 'consent_record' ? 'consent' : 'gdpr_subject',
            outcome: 'denied',
            reason: 'permission_denied',
            actor: { user_id: null },
            details: { requested_by: `${audit.caller.tenant}/${audit.caller.sub}` },
          });
        } catch {
          // the refusal stands either way
        }
      }
      throw e;
    }
  }
}
