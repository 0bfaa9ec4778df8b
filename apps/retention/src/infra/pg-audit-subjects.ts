import type { Pool } from '@soma/postgres';
import type { AuditEntryExport, AuditSubjects } from '../domain/ports.js';
import { RetentionError, RetentionErrorCode } from '../domain/retention.errors.js';
import { decryptPersonalFields, deriveAuditKek, subjectPseudonym, unwrapSubjectKey } from './audit-subject-crypto.js';
import { ident, qualified } from './sql.js';

interface AuditRow {
  id: string;
  timestamp: Date;
  occurred_at: Date;
  event_id: string;
  event_type: string;
  service: string;
  action: string;
  resource: string;
  outcome: string;
  reason: string | null;
  details: unknown;
  ip_network: string | null;
  pii: Buffer | null;
}

/**
 * audit_subject_keys / audit_log for one data subject (ADR 0401). Export unwraps the subject key with
 * the KEK, finds the rows by pseudonym and decrypts their personal fields; erasure deletes the key as
 * the audit_retention role, leaving every row (and so the hash chain) untouched but unreadable.
 */
export class PgAuditSubjects implements AuditSubjects {
  private readonly kek: Buffer | undefined;
  constructor(private readonly pool: Pool, private readonly schema: string, private readonly role: string, auditKek: string | undefined) {
    this.kek = auditKek ? deriveAuditKek(auditKek) : undefined;
  }

  private async subjectKey(tenant: string, userId: string): Promise<Buffer | null> {
    if (!this.kek) throw new RetentionError(RetentionErrorCode.AuditKeyUnavailable, 'the audit key-encryption key is not configured (AUDIT_KEK)');
    const { rows } = await this.pool.query<{ key: Buffer }>(`SELECT key FROM ${qualified(this.schema, 'audit_subject_keys')} WHERE tenant = $1 AND user_id = $2`, [tenant, userId]);
    if (!rows[0]) return null;
    try {
      return unwrapSubjectKey(this.kek, tenant, userId, rows[0].key);
    } catch {
      throw new RetentionError(RetentionErrorCode.AuditKeyUnavailable, 'the audit subject key cannot be unwrapped with the configured AUDIT_KEK', { tenant });
    }
  }

  async pseudonymOf(tenant: string, userId: string): Promise<string | null> {
    const key = await this.subjectKey(tenant, userId);
    return key ? subjectPseudonym(key) : null;
  }

  async exportEntries(tenant: string, userId: string, maxRows: number): Promise<{ pseudonym: string | null; entries: AuditEntryExport[] }> {
    const key = await this.subjectKey(tenant, userId);
    if (!key) return { pseudonym: null, entries: [] };
    const pseudonym = subjectPseudonym(key);
    const { rows } = await this.pool.query<AuditRow>(
      `SELECT id::text AS id, ${ident('timestamp')} AS timestamp, occurred_at, event_id::text AS event_id, event_type, service, action, resource,
              outcome, reason, details, host(ip_address) || '/' || masklen(ip_address) AS ip_network, pii
       FROM ${qualified(this.schema, 'audit_log')} WHERE tenant = $1 AND user_id = $2
       ORDER BY ${ident('timestamp')}, id LIMIT $3`,
      [tenant, pseudonym, maxRows + 1],
    );
    if (rows.length > maxRows) throw new RetentionError(RetentionErrorCode.ExportTooLarge, 'the export exceeds the configured row limit', { table: 'audit_log', max_rows: maxRows });
    const entries = rows.map((r): AuditEntryExport => {
      let personal: Record<string, unknown> | null = null;
      if (r.pii) {
        try {
          personal = decryptPersonalFields(key, r.event_id, r.pii);
        } catch {
          personal = null; // a row that does not authenticate is exported without personal fields
        }
      }
      return {
        id: r.id,
        timestamp: r.timestamp.toISOString(),
        occurred_at: r.occurred_at.toISOString(),
        event_id: r.event_id,
        event_type: r.event_type,
        service: r.service,
        action: r.action,
        resource: r.resource,
        outcome: r.outcome,
        reason: r.reason,
        details: r.details,
        ip_network: r.ip_network,
        personal,
      };
    });
    return { pseudonym, entries };
  }

  async destroyKey(tenant: string, userId: string): Promise<boolean> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      if (this.role) await client.query(`SET LOCAL ROLE ${ident(this.role)}`);
      const r = await client.query(`DELETE FROM ${qualified(this.schema, 'audit_subject_keys')} WHERE tenant = $1 AND user_id = $2`, [tenant, userId]);
      await client.query('COMMIT');
      return (r.rowCount ?? 0) > 0;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw e;
    } finally {
      client.release(broken);
    }
  }
}
