import type { Pool } from '@soma/postgres';
import type { RetentionPolicy } from '../domain/policy.js';
import type { BatchRequest, BatchResult, DeletionPlan, RetentionStore } from '../domain/ports.js';
import { catalogIdent, ident, qualified } from './sql.js';

export interface PgRetentionStoreOptions {
  /** Schema of the platform tables the batch_delete policies name. */
  platformSchema: string;
  /** Schema of audit_log and its functions. */
  auditSchema: string;
  /** Role assumed (SET LOCAL ROLE) for audit deletions and partition drops; '' = the login role itself. */
  auditRole: string;
}

/** How long a batch may wait for a row lock held by the platform before it skips locked rows instead. */
const LOCK_WAIT = '100ms';
/** SQLSTATE lock_not_available: lock_timeout expired. */
const LOCK_NOT_AVAILABLE = '55P03';

interface ExplainNode {
  'Node Type': string;
  Plans?: ExplainNode[];
}

/** The scan under the DELETE (ModifyTable) of an EXPLAIN (FORMAT JSON) plan. */
function scanOf(node: ExplainNode | undefined): string | undefined {
  while (node && (node['Node Type'] === 'ModifyTable' || node['Node Type'] === 'Result')) node = node.Plans?.[0];
  return node?.['Node Type'];
}

/** Partitions of a partitioned table with their upper bound (FOR VALUES FROM … TO (upper)). */
const PARTITIONS_SQL = `
  SELECT c.relname AS name,
         substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz AS upper
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = $1::regclass
  ORDER BY c.relname`;

/**
 * Retention against PostgreSQL. Each batch is one autocommitted statement: either the oldest expired
 * rows along the timestamp index (from where the previous batch ended) or every expired row of a page
 * range (ADR 0506) — short locks, no long transaction. All values are parameters; names are validated
 * and quoted identifiers.
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

  async planDeletion(policy: RetentionPolicy, cutoff: Date, expired: number): Promise<DeletionPlan> {
    const t = qualified(this.schemaOf(policy), policy.table);
    const { rows } = await this.pool.query<{ relkind: string; pages: string; reltuples: number; relpages: number }>(
      `SELECT c.relkind, pg_relation_size(c.oid) / current_setting('block_size')::int AS pages, c.reltuples, c.relpages
       FROM pg_class c WHERE c.oid = $1::regclass`,
      [t],
    );
    const rel = rows[0];
    const pages = Number(rel?.pages ?? 0);
    // Pages are a plain table's own (a partitioned parent or a view has none to walk).
    if (!rel || rel.relkind !== 'r' || pages === 0) return { walk: 'index' };
    // The planner's choice for the same rows in one statement: it weighs the expired share, the
    // timestamp's correlation with the physical order and the cost of random reads. A sequential scan
    // means most pages hold expired rows, and walking them in order beats visiting them in timestamp order.
    const { rows: plan } = await this.pool.query<{ 'QUERY PLAN': Array<{ Plan: ExplainNode }> }>(
      `EXPLAIN (FORMAT JSON) DELETE FROM ${t} WHERE ${ident(policy.timestampColumn)} < $1`,
      [cutoff],
    );
    if (scanOf(plan[0]?.['QUERY PLAN'][0]?.Plan) !== 'Seq Scan') return { walk: 'index' };
    const rowsPerPage = rel.reltuples > 0 && rel.relpages > 0 ? rel.reltuples / rel.relpages : expired / pages;
    return { walk: 'pages', pages, rowsPerPage };
  }

  async deleteExpiredBatch(policy: RetentionPolicy, cutoff: Date, batch: BatchRequest): Promise<BatchResult> {
    try {
      return await this.runBatch(policy, cutoff, batch, false);
    } catch (e) {
      // A row the platform holds locked made the batch wait past LOCK_WAIT: the same batch again,
      // skipping locked rows (they stay for the next run). Rarely needed, so its cost (every row is
      // locked before it is deleted: twice the WAL) is not paid by every batch.
      if ((e as { code?: unknown })?.code !== LOCK_NOT_AVAILABLE) throw e;
      return this.runBatch(policy, cutoff, batch, true);
    }
  }

  /**
   * One batch, one statement, one round trip. Rows are deleted by ctid (found in the same statement, so
   * still theirs; re-checked against the cutoff) rather than joined back by key. Without `skipLocked`
   * the statement sets lock_timeout for its own transaction first (a one-time filter evaluated before
   * any row is touched): a locked row fails it quickly with 55P03 instead of holding the batch.
   */
  private async runBatch(policy: RetentionPolicy, cutoff: Date, batch: BatchRequest, skipLocked: boolean): Promise<BatchResult> {
    const t = qualified(this.schemaOf(policy), policy.table);
    const ts = ident(policy.timestampColumn);
    const lock = skipLocked ? 'FOR UPDATE SKIP LOCKED' : '';
    const waitAtMost = skipLocked ? '' : `AND (SELECT set_config('lock_timeout', '${LOCK_WAIT}', true)) IS NOT NULL`;
    if (batch.walk === 'pages') {
      // A page range in physical order: what one plain DELETE's sequential scan does, in slices.
      const range = `ctid >= $2::tid AND ctid < $3::tid AND ${ts} < $1`;
      const sql = skipLocked
        ? `DELETE FROM ${t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${t} WHERE ${range} ${lock})) AND ${ts} < $1`
        : `DELETE FROM ${t} WHERE ${range} ${waitAtMost}`;
      const r = await this.pool.query(sql, [cutoff, `(${batch.fromPage},0)`, `(${batch.toPage},0)`]);
      return { deleted: r.rowCount ?? 0, after: null };
    }
    // The oldest rows along the timestamp index, starting where the previous batch ended: entries of
    // rows already deleted stay in the index until vacuum, and every batch stepping over them again
    // made batches slower the further a run got.
    const from = batch.after === null ? '' : `AND ${ts} >= $3`;
    const { rows } = await this.pool.query<{ deleted: number; after: string | null }>(
      `WITH batch AS (
         DELETE FROM ${t} WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM ${t} WHERE ${ts} < $1 ${from} ORDER BY ${ts} LIMIT $2 ${lock}
         )) AND ${ts} < $1 ${waitAtMost}
         RETURNING ${ts} AS ts)
       SELECT count(*)::int AS deleted, max(ts)::text AS after FROM batch`,
      batch.after === null ? [cutoff, batch.rows] : [cutoff, batch.rows, batch.after],
    );
    return { deleted: rows[0]?.deleted ?? 0, after: rows[0]?.after ?? batch.after };
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
