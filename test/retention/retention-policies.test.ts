import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { SecurityEventPublisher } from '@soma/events';
import { createLogger, Registry } from '@soma/observability';
import { parsePolicies } from '../../apps/retention/src/domain/policy.js';
import type { BatchRequest, DeletionPlan } from '../../apps/retention/src/domain/ports.js';
import { RetentionRunner } from '../../apps/retention/src/domain/retention-runner.js';
import { OutboxRetentionEvents } from '../../apps/retention/src/infra/event-adapter.js';
import { PgRetentionStore } from '../../apps/retention/src/infra/pg-retention-store.js';
import { PromRetentionMetrics } from '../../apps/retention/src/infra/prom-metrics.js';
import { SystemClock } from '../../apps/retention/src/infra/system-clock.js';
import { KAFKA_BROKERS } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { createTestSchema, type TestSchema } from './retention-support.js';

const SEEDED = 1_000_000;
const EXPIRED = SEEDED / 2;
const DAY_MS = 86_400_000;

let schema: TestSchema;
let publisher: SecurityEventPublisher;
const tmp = mkdtempSync(join(tmpdir(), 'soma-retention-'));
const policyName = `messages-${randomBytes(4).toString('hex')}`;
const reference = new Date();

beforeAll(async () => {
  schema = await createTestSchema();
  // Seeding speed only: the secondary indexes are built once after the load instead of maintained row by
  // row (about half the seed time), then recreated from their own definitions, so the table under test is
  // exactly the reference schema.
  const { rows: indexes } = await schema.pool.query<{ name: string; def: string }>(
    `SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = $1 AND tablename = 'messages' AND indexname <> 'messages_pkey'`,
    [schema.name],
  );
  for (const i of indexes) await schema.pool.query(`DROP INDEX ${pg.escapeIdentifier(i.name)}`);
  // 1,000,000 rows in one statement: even rows 91–92 days old (expired under 90 days), odd rows
  // 88–89 days old (kept). Expired and kept rows interleave by id, so batches cannot just cut a prefix.
  await schema.pool.query(
    `INSERT INTO messages (session_id, tenant, user_id, role, content, created_at)
     SELECT g / 20, 'acme', 'user' || (g % 5000), 'user', 'seed',
            CASE WHEN g % 2 = 0 THEN $1::timestamptz - interval '91 days' - (g % 86400) * interval '1 second'
                 ELSE $1::timestamptz - interval '89 days' + (g % 86400) * interval '1 second' END
     FROM generate_series(1, $2::int) AS g`,
    [reference, SEEDED],
  );
  const client = await schema.pool.connect();
  try {
    await client.query(`SET maintenance_work_mem = '256MB'`);
    for (const i of indexes) await client.query(i.def);
  } finally {
    client.release();
  }
  expect(indexes.map((i) => i.name).sort()).toEqual(['messages_created_at_idx', 'messages_session_idx', 'messages_subject_idx']);
  await schema.pool.query('ANALYZE messages');
  publisher = new SecurityEventPublisher({ service: 'retention', brokers: KAFKA_BROKERS, logger: createLogger({ service: 'retention', level: 'silent' }), bufferPath: join(tmp, 'events.sqlite') });
  publisher.start();
});

afterAll(async () => {
  await publisher?.stop();
  await schema?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

function runnerFor(policiesJson: string, registry = new Registry()) {
  const policies = parsePolicies(policiesJson);
  const store = new PgRetentionStore(schema.pool, { platformSchema: schema.name, auditSchema: schema.name, auditRole: '' });
  return { store, registry, policies, runner: new RetentionRunner(policies, store, new OutboxRetentionEvents(publisher), new PromRetentionMetrics(registry), new SystemClock()) };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await schema.pool.query<{ n: string }>(sql, params);
  return Number(rows[0]!.n);
}

describe('retention policy against 1,000,000 rows (half expired) with a concurrent writer', () => {
  it('dry-run counts exactly the expired rows and deletes nothing', async () => {
    const { runner } = runnerFor(JSON.stringify([{ name: policyName, table: 'messages', max_age_days: 90, batch_size: 10_000, pause_ms: 5 }]));
    const [r] = await runner.run(policyName, { dryRun: true, trigger: 'test', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', dryRun: true, rowsExpired: EXPIRED, rowsDeleted: 0 });
    expect(await count('SELECT count(*) AS n FROM messages')).toBe(SEEDED);
  });

  it('removes exactly the expired rows in batches, survives a stop halfway, and never blocks the writer', async () => {
    const collector = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['type'] === 'retention_run' && (m.json?.['details'] as Record<string, unknown>)?.['policy'] === policyName).start();
    const { runner, store, registry } = runnerFor(JSON.stringify([{ name: policyName, table: 'messages', max_age_days: 90, batch_size: 10_000, pause_ms: 5 }]));

    // The platform keeps writing (and reading) while retention runs.
    let writing = true;
    let inserted = 0;
    let reads = 0;
    const errors: string[] = [];
    let maxInsertMs = 0;
    const writer = (async () => {
      while (writing) {
        const t0 = performance.now();
        try {
          const r = await schema.pool.query(
            `INSERT INTO messages (session_id, tenant, user_id, role, content) SELECT 1, 'acme', 'live-writer', 'assistant', 'live' FROM generate_series(1, 10)`,
          );
          inserted += r.rowCount ?? 0;
          await schema.pool.query(`SELECT count(*) FROM messages WHERE tenant = 'acme' AND user_id = 'user42'`);
          reads += 1;
        } catch (e) {
          errors.push((e as Error).message);
        }
        maxInsertMs = Math.max(maxInsertMs, performance.now() - t0);
      }
    })();

    // First run is stopped after three batches (as a shutdown would) …
    const stop = new AbortController();
    let batches = 0;
    const realBatch = store.deleteExpiredBatch.bind(store);
    store.deleteExpiredBatch = async (...args) => {
      const r = await realBatch(...args);
      if (++batches === 3) stop.abort();
      return r;
    };
    const started = performance.now();
    const [first] = await runner.run(policyName, { dryRun: false, trigger: 'test', requestedBy: null, signal: stop.signal });
    store.deleteExpiredBatch = realBatch;
    // … and the next run continues where it stopped.
    const [second] = await runner.run(policyName, { dryRun: false, trigger: 'test', requestedBy: null });
    const totalMs = performance.now() - started;
    writing = false;
    await writer;

    expect(first).toMatchObject({ outcome: 'partial', reason: 'stopped', rowsDeleted: 30_000, batches: 3 });
    expect(second).toMatchObject({ outcome: 'success', rowsDeleted: EXPIRED - 30_000 });
    expect(second!.batches).toBeGreaterThanOrEqual(47);
    const cutoff = new Date(reference.getTime() - 90 * DAY_MS);
    expect(await count('SELECT count(*) AS n FROM messages WHERE created_at < $1', [cutoff])).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM messages WHERE content = 'seed'`)).toBe(SEEDED - EXPIRED);
    expect(await count(`SELECT count(*) AS n FROM messages WHERE content = 'seed' AND id % 2 = 1`)).toBe(SEEDED - EXPIRED);
    expect(errors).toEqual([]);
    expect(inserted).toBeGreaterThan(0);
    expect(await count(`SELECT count(*) AS n FROM messages WHERE content = 'live'`)).toBe(inserted);
    // Recorded, not asserted: speed lives in benchmarks.
    console.info(`[retention] deleted ${EXPIRED} of ${SEEDED} rows in ${Math.round(totalMs)} ms (${first!.batches + second!.batches} batches); concurrent writer: ${inserted} rows, ${reads} reads, max insert+read latency ${maxInsertMs.toFixed(1)} ms, 0 errors`);

    const metrics = await registry.getSingleMetricAsString('soma_retention_rows_deleted_total');
    expect(metrics).toContain(`policy="${policyName}",table="messages"} ${EXPIRED}`);
    const events = await waitFor(() => (collector.messages.length >= 2 ? collector.messages : undefined), { what: 'retention_run events' });
    await collector.stop();
    const details = events.map((m) => m.json!['details'] as Record<string, unknown>);
    expect(details.map((d) => [d['run_outcome'], d['rows_deleted']])).toEqual([
      ['partial', 30_000],
      ['success', EXPIRED - 30_000],
    ]);
    expect(events[0]!.json).toMatchObject({ type: 'retention_run', service: 'retention', tenant: '*', resource: 'table:messages' });
    expect(typeof details[1]!['duration_ms']).toBe('number');
  });

  it('refuses a second concurrent run of the same policy (cluster-wide lock)', async () => {
    const { runner, store, policies } = runnerFor(JSON.stringify([{ name: policyName, table: 'messages', max_age_days: 1, batch_size: 1, pause_ms: 0 }]));
    const outcome = await store.withPolicyLock(policies[0]!, async () => (await runner.run(policyName, { dryRun: true, trigger: 'test', requestedBy: null }))[0]);
    expect(outcome).toMatchObject({ acquired: true, value: { outcome: 'skipped', reason: 'policy_busy' } });
  });
});

/**
 * Time-budgeted policies (the seed's pacing, ADR 0506) on their own tables of the same schema: the walk the
 * store picks for the share of expired rows, and rows the platform holds locked (skipped after a short
 * wait, deleted by the next run).
 */
describe('time-budgeted retention: page walk and index walk, rows held locked by the platform', () => {
  /** The store's plan and batch requests of one run, observed (the store itself is the real one). */
  function observed(store: PgRetentionStore) {
    const seen = { plans: [] as DeletionPlan[], requests: [] as BatchRequest[] };
    const plan = store.planDeletion.bind(store);
    const batch = store.deleteExpiredBatch.bind(store);
    store.planDeletion = async (...args) => {
      const p = await plan(...args);
      seen.plans.push(p);
      return p;
    };
    store.deleteExpiredBatch = async (p, c, request) => {
      seen.requests.push(request);
      return batch(p, c, request);
    };
    return seen;
  }

  /** Holds a row lock the way a platform transaction would, until released. */
  async function lockRow(table: string, id: number): Promise<() => Promise<void>> {
    const client = await schema.pool.connect();
    await client.query('BEGIN');
    await client.query(`SELECT 1 FROM ${pg.escapeIdentifier(table)} WHERE id = $1 FOR UPDATE`, [id]);
    return async () => {
      await client.query('ROLLBACK');
      client.release();
    };
  }

  it('most rows expired: page ranges in physical order, exactly the expired rows; a locked one is left for the next run', async () => {
    // 200,000 events, three in four 91 days old, interleaved with the kept ones by id and in time.
    await schema.pool.query(
      `INSERT INTO session_events (session_id, tenant, user_id, event_type, occurred_at)
       SELECT g / 20, 'acme', 'user' || (g % 500), 'seed',
              CASE WHEN g % 4 <> 0 THEN $1::timestamptz - interval '91 days' - (g % 86400) * interval '1 second'
                   ELSE $1::timestamptz - interval '89 days' + (g % 86400) * interval '1 second' END
       FROM generate_series(1, 200000) AS g`,
      [reference],
    );
    await schema.pool.query('ANALYZE session_events');
    const name = `events-${randomBytes(4).toString('hex')}`;
    const { runner, store } = runnerFor(JSON.stringify([{ name, table: 'session_events', max_age_days: 90 }]));
    const seen = observed(store);
    const lockedId = Number((await schema.pool.query<{ id: string }>(`SELECT id FROM session_events WHERE id % 4 = 1 ORDER BY id OFFSET 30000 LIMIT 1`)).rows[0]!.id);
    const release = await lockRow('session_events', lockedId);
    let writing = true;
    let inserted = 0;
    const errors: string[] = [];
    const writer = (async () => {
      while (writing) {
        try {
          const r = await schema.pool.query(`INSERT INTO session_events (session_id, tenant, user_id, event_type) SELECT 1, 'acme', 'live-writer', 'live' FROM generate_series(1, 10)`);
          inserted += r.rowCount ?? 0;
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    })();
    let first;
    try {
      [first] = await runner.run(name, { dryRun: false, trigger: 'test', requestedBy: null });
    } finally {
      writing = false;
      await writer;
      await release();
    }
    expect(seen.plans).toEqual([expect.objectContaining({ walk: 'pages' })]);
    expect(seen.requests.length).toBeGreaterThan(1);
    expect(seen.requests[0]).toMatchObject({ walk: 'pages', fromPage: 0 });
    for (let i = 1; i < seen.requests.length; i++) expect((seen.requests[i] as { fromPage: number }).fromPage).toBe((seen.requests[i - 1] as { toPage: number }).toPage);
    expect(first).toMatchObject({ outcome: 'success', rowsExpired: 150_000, rowsDeleted: 149_999 });
    const cutoff = new Date(reference.getTime() - 90 * DAY_MS);
    const left = await schema.pool.query<{ id: string }>('SELECT id FROM session_events WHERE occurred_at < $1', [cutoff]);
    expect(left.rows.map((r) => Number(r.id))).toEqual([lockedId]);
    expect(await count(`SELECT count(*) AS n FROM session_events WHERE event_type = 'seed' AND id % 4 = 0`)).toBe(50_000);
    expect(errors).toEqual([]);
    expect(await count(`SELECT count(*) AS n FROM session_events WHERE event_type = 'live'`)).toBe(inserted);

    const [second] = await runner.run(name, { dryRun: false, trigger: 'test', requestedBy: null });
    expect(second).toMatchObject({ outcome: 'success', rowsExpired: 1, rowsDeleted: 1 });
    expect(await count('SELECT count(*) AS n FROM session_events WHERE occurred_at < $1', [cutoff])).toBe(0);
  });

  it('few rows expired: oldest first along the index, each batch from where the last ended; a locked one is left for the next run', async () => {
    // 100,000 sessions, the oldest 1% expired (rows arrive in time order, as a platform writes them).
    await schema.pool.query(
      `INSERT INTO sessions (tenant, user_id, title, created_at)
       SELECT 'acme', 'user' || (g % 500), 'seed',
              CASE WHEN g <= 1000 THEN $1::timestamptz - interval '92 days' + g * interval '1 minute'
                   ELSE $1::timestamptz - interval '89 days' + g * interval '1 second' END
       FROM generate_series(1, 100000) AS g`,
      [reference],
    );
    await schema.pool.query('ANALYZE sessions');
    const cutoff = new Date(reference.getTime() - 90 * DAY_MS);
    const expired = await count('SELECT count(*) AS n FROM sessions WHERE created_at < $1', [cutoff]);
    expect(expired).toBe(1000);
    const name = `sessions-${randomBytes(4).toString('hex')}`;
    // A small first batch so that the run takes several.
    const { runner, store } = runnerFor(JSON.stringify([{ name, table: 'sessions', max_age_days: 90, batch_size: 50, batch_target_ms: 100 }]));
    const seen = observed(store);
    const lockedId = Number((await schema.pool.query<{ id: string }>(`SELECT id FROM sessions ORDER BY created_at OFFSET 20 LIMIT 1`)).rows[0]!.id);
    const release = await lockRow('sessions', lockedId);
    let first;
    try {
      [first] = await runner.run(name, { dryRun: false, trigger: 'test', requestedBy: null });
    } finally {
      await release();
    }
    expect(seen.plans).toEqual([{ walk: 'index' }]);
    expect(seen.requests[0]).toEqual({ walk: 'index', rows: 50, after: null });
    expect(seen.requests.length).toBeGreaterThan(2);
    expect(seen.requests.slice(1).every((r) => r.walk === 'index' && r.after !== null)).toBe(true);
    expect(first).toMatchObject({ outcome: 'success', rowsExpired: expired, rowsDeleted: expired - 1 });
    const left = await schema.pool.query<{ id: string }>('SELECT id FROM sessions WHERE created_at < $1', [cutoff]);
    expect(left.rows.map((r) => Number(r.id))).toEqual([lockedId]);
    expect(await count(`SELECT count(*) AS n FROM sessions WHERE created_at >= $1`, [cutoff])).toBe(100_000 - expired);

    const [second] = await runner.run(name, { dryRun: false, trigger: 'test', requestedBy: null });
    expect(second).toMatchObject({ outcome: 'success', rowsExpired: 1, rowsDeleted: 1 });
  });
});
