import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { POSTGRES_URL, REPO_ROOT } from '../support/infra.js';

/**
 * A throw-away PostgreSQL schema per test file: the platform reference tables, the audit log migration
 * (0001, the audit service's own file) and the retention migrations (01xx), applied with the schema
 * first on the search_path, exactly as `soma db migrate` would apply them to `public`.
 */
export interface TestSchema {
  name: string;
  /** A pool whose sessions resolve unqualified names in the test schema. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createTestSchema(options: { audit?: boolean } = {}): Promise<TestSchema> {
  const name = `retention_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${name}`, max: 8 });
  const files = [join(REPO_ROOT, 'infra/postgres/platform/0001_platform_tables.sql'), join(REPO_ROOT, 'infra/postgres/migrations/0100_retention_consent.sql')];
  if (options.audit) files.unshift(join(REPO_ROOT, 'infra/postgres/migrations/0001_audit_log.sql'));
  const client = await pool.connect();
  try {
    for (const file of files) {
      await client.query('BEGIN');
      await client.query(readFileSync(file, 'utf8'));
      await client.query('COMMIT');
    }
    // The audit_retention role reaches the audit tables through this schema (public grants USAGE by default).
    if (options.audit) await client.query(`GRANT USAGE ON SCHEMA ${pg.escapeIdentifier(name)} TO audit_retention`);
  } finally {
    client.release();
  }
  return {
    name,
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA ${pg.escapeIdentifier(name)} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
