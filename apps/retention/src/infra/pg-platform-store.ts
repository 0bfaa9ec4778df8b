import type { Pool } from '@soma/postgres';
import type { PlatformSubjectStore } from '../domain/ports.js';
import { RetentionError, RetentionErrorCode } from '../domain/retention.errors.js';
import type { SubjectTable } from '../domain/subject-tables.js';
import { ident, qualified } from './sql.js';

const ERASE_BATCH = 5000;

/** The platform's tables for one data subject: export as JSON rows, erase in bounded batches. */
export class PgPlatformStore implements PlatformSubjectStore {
  constructor(private readonly pool: Pool, private readonly schema: string, private readonly tables: readonly SubjectTable[]) {}

  async exportUser(tenant: string, userId: string, maxRows: number): Promise<Array<{ table: string; rows: Array<Record<string, unknown>> }>> {
    const out: Array<{ table: string; rows: Array<Record<string, unknown>> }> = [];
    let total = 0;
    for (const t of this.tables) {
      const left = maxRows - total;
      // to_jsonb(row): every column, whatever the platform's schema holds, typed as JSON.
      const { rows } = await this.pool.query<{ row: Record<string, unknown> }>(
        `SELECT to_jsonb(t) AS row FROM ${qualified(this.schema, t.table)} t
         WHERE ${ident(t.tenantColumn)} = $1 AND ${ident(t.userColumn)} = $2
         ORDER BY ${ident(t.keyColumn)} LIMIT $3`,
        [tenant, userId, left + 1],
      );
      if (rows.length > left) {
        throw new RetentionError(RetentionErrorCode.ExportTooLarge, 'the export exceeds the configured row limit', { table: t.table, max_rows: maxRows });
      }
      total += rows.length;
      out.push({ table: t.table, rows: rows.map((r) => r.row) });
    }
    return out;
  }

  async eraseUser(tenant: string, userId: string): Promise<Array<{ table: string; rows: number }>> {
    const out: Array<{ table: string; rows: number }> = [];
    for (const t of this.tables) {
      const table = qualified(this.schema, t.table);
      const key = ident(t.keyColumn);
      const where = `${ident(t.tenantColumn)} = $1 AND ${ident(t.userColumn)} = $2`;
      let deleted = 0;
      for (;;) {
        const r = await this.pool.query(`DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${where} LIMIT $3) AND ${where}`, [tenant, userId, ERASE_BATCH]);
        const n = r.rowCount ?? 0;
        deleted += n;
        if (n < ERASE_BATCH) break;
      }
      out.push({ table: t.table, rows: deleted });
    }
    return out;
  }
}
