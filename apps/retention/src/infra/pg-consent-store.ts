import type { Pool } from '@soma/postgres';
import type { ConsentRecord, ConsentStore } from '../domain/ports.js';
import { qualified } from './sql.js';

interface Row {
  tenant: string;
  user_id: string;
  purpose: string;
  granted: boolean;
  recorded_at: Date;
  source: string;
  policy_version: string;
  recorded_by: string;
}

const toRecord = (r: Row): ConsentRecord => ({
  tenant: r.tenant,
  userId: r.user_id,
  purpose: r.purpose,
  granted: r.granted,
  recordedAt: r.recorded_at.toISOString(),
  source: r.source,
  policyVersion: r.policy_version,
  recordedBy: r.recorded_by,
});

const COLUMNS = 'tenant, user_id, purpose, granted, recorded_at, source, policy_version, recorded_by';

/** consent_records (migration 0100): append-only decisions; the latest per purpose is the current one. */
export class PgConsentStore implements ConsentStore {
  private readonly table: string;
  constructor(private readonly pool: Pool, schema: string) {
    this.table = qualified(schema, 'consent_records');
  }

  async append(r: Omit<ConsentRecord, 'recordedAt'>): Promise<ConsentRecord> {
    const { rows } = await this.pool.query<Row>(
      `INSERT INTO ${this.table} (tenant, user_id, purpose, granted, source, policy_version, recorded_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [r.tenant, r.userId, r.purpose, r.granted, r.source, r.policyVersion, r.recordedBy],
    );
    return toRecord(rows[0]!);
  }

  async history(tenant: string, userId: string, purpose?: string): Promise<ConsentRecord[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE tenant = $1 AND user_id = $2 AND ($3::text IS NULL OR purpose = $3) ORDER BY id`,
      [tenant, userId, purpose ?? null],
    );
    return rows.map(toRecord);
  }

  async eraseUser(tenant: string, userId: string): Promise<number> {
    const r = await this.pool.query(`DELETE FROM ${this.table} WHERE tenant = $1 AND user_id = $2`, [tenant, userId]);
    return r.rowCount ?? 0;
  }
}
