import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { SecurityEvent } from '@soma/contracts';
import { appendToChain } from '../../apps/audit/src/domain/audit-ingest.js';
import { deriveKek } from '../../apps/audit/src/domain/subject-crypto.js';
import { verifyChains } from '../../apps/audit/src/domain/verify-chain.js';
import { PgAuditStore } from '../../apps/audit/src/infra/pg-audit-store.js';
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

/**
 * Write events into the test schema's audit_log through the audit service's own ingest path
 * (`appendToChain`: pseudonyms, encrypted personal fields, subject keys, hash chain), recorded at `at`.
 */
export async function ingestAuditEvents(pool: pg.Pool, kekSecret: string, chain: number, at: Date, events: SecurityEvent[]): Promise<void> {
  await appendToChain(new PgAuditStore(pool as never), deriveKek(kekSecret), chain, events, () => at);
}

/** The audit service's chain verifier over the test schema (no checkpoints are signed in these tests). */
export async function verifyAuditChains(pool: pg.Pool): Promise<{ intact: boolean; rows_checked: number; broken?: unknown }> {
  return verifyChains(new PgAuditStore(pool as never), { verify: () => true });
}
