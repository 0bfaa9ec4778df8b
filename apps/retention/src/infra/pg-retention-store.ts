import type { Pool } from '@soma/postgres';
import type { RetentionPolicy } from '../domain/policy.js';
import type { RetentionStore } from '../domain/ports.js';
import { catalogIdent, ident, qualified } from './sql.js';

export interface PgRetentionStoreOptions {
  /** Schema of the platform tables the batch_delete policies name. */
  platformSchema: string;
  /** Schema of audit_log and its functions. */
  auditSchema: string;
  /** Role assumed (SET LOCAL ROLE) for audit deletions and partition drops; '' = the login role itself. */
  auditRole: string;
}

/** Partitions of a partitioned table with their upper bound (FOR VALUES FROM … TO (upper)). */
const PARTITIONS_SQL = `
  SELECT c.relname AS name,
         substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz AS upper
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = $1::regclass
  ORDER BY c.relname`;

/**
 * Retention against PostgreSQL. Each batch is one autocommitted statement: the subquery picks at most
 * batch_size expired keys (oldest first, by the timestamp index), skipping rows another transaction
 * has locked, and the DELETE removes them by primary key — short locks, no long transaction, no
 * table-wide scan per batch. All values are parameters; names are validated and quoted identifiers.
 */
export class PgRetentionStore implements RetentionStore {
  constructor(private readonly pool: Pool, private readonly options: PgRetentionStoreOptions) {}

  private schemaOf(policy: RetentionPolicy): string {
    return policy.mode === 'drop_partitions' ? this.options.auditSchema : this.options.platformSchema;
  }

  async withPolicyLock<T>(policy: RetentionPolicy, work: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }> {
    const client = await this.pool.connect();
    let broken = false;
    const key = `soma-retention:${this.schemaOf(policy)}.${policy.table}`;
    try {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key]);
      if (!rows[0]?.ok) return { acquired: false };
      try {
        return { acquired: true, value: await work() };
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => {
          broken = true; // a lost session releases its locks; do not reuse it
        });
      }
    } catch (e) {
      broken = broken || isConnectionError(e);
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async countExpired(policy: RetentionPolicy, cutoff: Date): Promise<number> {
    const t = qualified(this.schemaOf(policy), policy.table);
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t} WHERE ${ident(policy.timestampColumn)} < $1`, [cutoff]);
    return Number(rows[0]?.n ?? 0);
  }

  async deleteExpiredBatch(policy: RetentionPolicy, cutoff: Date): Promise<number> {
    const t = qualified(this.schemaOf(policy), policy.table);
    const ts = ident(policy.timestampColumn);
    const key = ident(policy.keyColumn);
    const result = await this.pool.query(
      `DELETE FROM ${t} WHERE ${key} IN (
         SELECT ${key} FROM ${t} WHERE ${ts} < $1 ORDER BY ${ts} LIMIT $2 FOR UPDATE SKIP LOCKED
       ) AND ${ts} < $1`,
      [cutoff, policy.batchSize],
    );
    return result.rowCount ?? 0;
  }

  async expiredPartitions(policy: RetentionPolicy, cutoff: Date): Promise<Array<{ name: string; rows: number }>> {
    const schema = this.schemaOf(policy);
    const { rows } = await this.pool.query<{ name: string; upper: Date | null }>(PARTITIONS_SQL, [qualified(schema, policy.table)]);
    const expired = rows.filter((r) => r.upper !== null && r.upper.getTime() <= cutoff.getTime());
    const out: Array<{ name: string; rows: number }> = [];
    for (const p of expired) {
      // Partition names come from the catalog; quoted all the same.
      const { rows: c } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${catalogIdent(schema)}.${catalogIdent(p.name)}`);
      out.push({ name: p.name, rows: Number(c[0]?.n ?? 0) });
    }
    return out;
  }

  async dropExpiredPartitions(policy: RetentionPolicy, cutoff: Date): Promise<string[]> {
    const schema = this.schemaOf(policy);
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      if (this.options.auditRole) await client.query(`SET LOCAL ROLE ${ident(this.options.auditRole)}`);
      let dropped: string[];
      if (policy.table === 'audit_log') {
        // The audit log's own function also prunes the dedupe ids and records the new chain floors.
        const { rows } = await client.query<{ name: string }>(`SELECT p AS name FROM ${qualified(schema, 'audit_drop_partitions_before')}($1) AS p`, [cutoff]);
        dropped = rows.map((r) => r.name);
      } else {
        const { rows } = await client.query<{ name: string; upper: Date | null }>(PARTITIONS_SQL, [qualified(schema, policy.table)]);
        dropped = [];
        for (const p of rows) {
          if (p.upper === null || p.upper.getTime() > cutoff.getTime()) continue;
          await client.query(`ALTER TABLE ${qualified(schema, policy.table)} DETACH PARTITION ${catalogIdent(schema)}.${catalogIdent(p.name)}`);
          await client.query(`DROP TABLE ${catalogIdent(schema)}.${catalogIdent(p.name)}`);
          dropped.push(p.name);
        }
      }
      await client.query('COMMIT');
      return dropped;
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


function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('08') || code === '57P01');
}
