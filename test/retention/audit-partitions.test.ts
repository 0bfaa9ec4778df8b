import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSecurityEvent, SecurityEventPublisher } from '@soma/events';
import { createLogger, Registry } from '@soma/observability';
import { parsePolicies } from '../../apps/retention/src/domain/policy.js';
import { RetentionRunner } from '../../apps/retention/src/domain/retention-runner.js';
import { OutboxRetentionEvents } from '../../apps/retention/src/infra/event-adapter.js';
import { PgRetentionStore } from '../../apps/retention/src/infra/pg-retention-store.js';
import { PromRetentionMetrics } from '../../apps/retention/src/infra/prom-metrics.js';
import { SystemClock } from '../../apps/retention/src/infra/system-clock.js';
import pg from 'pg';
import { KAFKA_BROKERS, POSTGRES_URL } from '../support/infra.js';
import { createTestSchema, ingestAuditEvents, verifyAuditChains, type TestSchema } from './retention-support.js';

const DAY_MS = 86_400_000;
const KEK = randomBytes(48).toString('base64url');
const tenant = `t-${randomBytes(4).toString('hex')}`;
const now = new Date();
const ages = [450, 440, 400, 300, 30, 0]; // days before now at which audit rows are recorded
let schema: TestSchema;
let publisher: SecurityEventPublisher;
const tmp = mkdtempSync(join(tmpdir(), 'soma-retention-audit-'));

beforeAll(async () => {
  // The real audit_log migration (0001) in a throw-away schema, partitions for the last 16 months.
  schema = await createTestSchema({ audit: true });
  await schema.pool.query(`SELECT audit_log_ensure_partitions(16, now() - interval '15 months')`);
  // Two hash chains, each spanning every month, written by the audit service's ingest code.
  for (const age of ages) {
    for (const chain of [0, 1]) {
      const events = [0, 1].map((i) => buildSecurityEvent('auth', { type: 'authentication_failed', tenant, action: 'login', outcome: 'failure', actor: { user_id: `user-${age}-${i}`, ip_address: '203.0.113.7' } }));
      await ingestAuditEvents(schema.pool, KEK, chain, new Date(now.getTime() - age * DAY_MS), events);
    }
  }
  publisher = new SecurityEventPublisher({ service: 'retention', brokers: KAFKA_BROKERS, logger: createLogger({ service: 'retention', level: 'silent' }), bufferPath: join(tmp, 'events.sqlite') });
  publisher.start();
});

afterAll(async () => {
  await publisher?.stop();
  await schema?.drop();
  // The role is cluster-wide; its only grant went with the schema.
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  await c.query('DROP ROLE IF EXISTS retention_test_nobody').finally(() => c.end());
  rmSync(tmp, { recursive: true, force: true });
});

async function partitions(): Promise<string[]> {
  const { rows } = await schema.pool.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1`,
  );
  return rows.map((r) => r.relname);
}

describe('audit_log retention by dropping whole expired monthly partitions', () => {
  it('dry-run lists the expired months, then the run drops exactly them as audit_retention and the chains still verify', async () => {
    expect(await verifyAuditChains(schema.pool)).toMatchObject({ intact: true, rows_checked: ages.length * 4 });
    const before = await partitions();
    const cutoff = new Date(now.getTime() - 365 * DAY_MS);
    // Months whose upper bound is at or before the cutoff (the same rule as audit_drop_partitions_before).
    const { rows: expectedRows } = await schema.pool.query<{ relname: string }>(
      `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'audit_log'::regclass
         AND substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz <= $1 ORDER BY 1`,
      [cutoff],
    );
    const expected = expectedRows.map((r) => r.relname);
    expect(expected.length).toBeGreaterThanOrEqual(2);
    const { rows: expiredRows } = await schema.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM audit_log WHERE timestamp < (SELECT max(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_log'::regclass AND c.relname = ANY($1))`,
      [expected],
    );
    const expiredCount = Number(expiredRows[0]!.n);
    expect(expiredCount).toBe(3 * 4); // the rows recorded 450, 440 and 400 days ago

    const registry = new Registry();
    const store = new PgRetentionStore(schema.pool, { platformSchema: schema.name, auditSchema: schema.name, auditRole: 'audit_retention' });
    const runner = new RetentionRunner(parsePolicies('[{"table":"audit_log","mode":"drop_partitions","max_age_days":365}]'), store, new OutboxRetentionEvents(publisher), new PromRetentionMetrics(registry), new SystemClock());

    const [dry] = await runner.run('audit_log', { dryRun: true, trigger: 'test', requestedBy: null });
    expect(dry).toMatchObject({ outcome: 'success', mode: 'drop_partitions', partitionsDropped: expected, rowsExpired: expiredCount, rowsDeleted: 0 });
    expect(await partitions()).toEqual(before);

    const [run] = await runner.run('audit_log', { dryRun: false, trigger: 'test', requestedBy: null });
    expect(run).toMatchObject({ outcome: 'success', partitionsDropped: expected, rowsDeleted: expiredCount });
    expect(await partitions()).toEqual(before.filter((p) => !expected.includes(p)));
    const { rows: left } = await schema.pool.query<{ n: string; oldest: Date }>('SELECT count(*) AS n, min(timestamp) AS oldest FROM audit_log');
    expect(Number(left[0]!.n)).toBe((ages.length - 3) * 4);
    expect(left[0]!.oldest.getTime()).toBeGreaterThan(cutoff.getTime());
    // The chains start later now, which audit_chain_floors records; the verifier accepts exactly that.
    const { rows: floors } = await schema.pool.query<{ chain_partition: number; first_seq: string }>('SELECT chain_partition, first_seq FROM audit_chain_floors ORDER BY 1');
    expect(floors.map((f) => [f.chain_partition, Number(f.first_seq)])).toEqual([[0, 7], [1, 7]]);
    expect(await verifyAuditChains(schema.pool)).toMatchObject({ intact: true, rows_checked: (ages.length - 3) * 4 });
    expect(await registry.getSingleMetricAsString('soma_retention_rows_deleted_total')).toContain(`table="audit_log"} ${expiredCount}`);

    // Nothing left to drop: a second run is a no-op.
    const [again] = await runner.run('audit_log', { dryRun: false, trigger: 'test', requestedBy: null });
    expect(again).toMatchObject({ outcome: 'success', partitionsDropped: [], rowsDeleted: 0 });
  });

  it('a plain login role that is not audit_retention cannot drop audit partitions', async () => {
    await schema.pool.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retention_test_nobody') THEN CREATE ROLE retention_test_nobody NOLOGIN; END IF; END $$`);
    await schema.pool.query(`GRANT USAGE ON SCHEMA ${schema.name} TO retention_test_nobody`);
    const store = new PgRetentionStore(schema.pool, { platformSchema: schema.name, auditSchema: schema.name, auditRole: 'retention_test_nobody' });
    const [policy] = parsePolicies('[{"table":"audit_log","mode":"drop_partitions","max_age_days":30}]');
    await expect(store.dropExpiredPartitions(policy!, new Date())).rejects.toMatchObject({ code: '42501' });
    expect((await partitions()).length).toBeGreaterThan(0);
  });
});
