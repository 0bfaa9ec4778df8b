import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@soma/config';
import { Topics } from '@soma/contracts';
import { startSomaService } from '@soma/service-runtime';
import { retentionService } from '../../apps/retention/src/retention.service-definition.js';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { POSTGRES_URL } from '../support/infra.js';
import { TopicCollector, type ReceivedMessage } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { createTestSchema, startRetention, type RetentionUnderTest, type TestSchema } from './retention-support.js';

/**
 * Policies come from configuration and the built-in scheduler runs them: a table the seed does not
 * know (own name, timestamp and key columns, age, batch size, schedule), the audit-log age override,
 * and a policy list that cannot be used stopping start-up.
 */
const run = randomBytes(4).toString('hex');
const POLICY = `chat-logs-${run}`;
const KEK = randomBytes(48).toString('base64url');
const tmp = mkdtempSync(join(tmpdir(), 'soma-retention-svc-test-'));
let schema: TestSchema;
let auth: AuthHarness;
let svc: RetentionUnderTest;
let events: TopicCollector;
let ops = '';

const policies = [
  { name: POLICY, table: 'chat_logs', timestamp_column: 'logged_at', key_column: 'log_id', max_age_days: 7, batch_size: 3, pause_ms: 0, schedule: '@every 10s', max_run_seconds: 60 },
  { table: 'audit_log', mode: 'drop_partitions', schedule: 'off' },
];

beforeAll(async () => {
  schema = await createTestSchema({ audit: true });
  await schema.pool.query(`CREATE TABLE chat_logs (log_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT NOT NULL, line TEXT NOT NULL, logged_at TIMESTAMPTZ NOT NULL)`);
  await schema.pool.query(`CREATE INDEX ON chat_logs (logged_at)`);
  await schema.pool.query(`INSERT INTO chat_logs (tenant, line, logged_at) SELECT 't', 'old ' || g, now() - interval '8 days' - g * interval '1 minute' FROM generate_series(1, 10) g`);
  await schema.pool.query(`INSERT INTO chat_logs (tenant, line, logged_at) SELECT 't', 'new ' || g, now() - interval '6 days' FROM generate_series(1, 5) g`);
  auth = await startAuthHarness();
  ops = (await auth.issueToken({ tenant: '*', sub: 'ops', scopes: ['retention:admin'] })).token;
  events = await new TopicCollector(Topics.SecurityEvents, (m: ReceivedMessage) => m.json?.['type'] === 'retention_run' && (m.json?.['details'] as Record<string, unknown>)?.['policy'] === POLICY).start();
  svc = await startRetention(schema, auth, {
    kek: KEK,
    env: {
      RETENTION_POLICIES: JSON.stringify(policies),
      RETENTION_AUDIT_LOG_MAX_AGE_DAYS: '400',
      RETENTION_SCHEDULER_ENABLED: 'true',
      RETENTION_SCHEDULER_FIRST_RUN_SECONDS: '1',
    },
  });
});

afterAll(async () => {
  await events?.stop();
  await svc?.stop();
  await auth?.stop();
  await schema?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

/** The value of the first sample of `name` whose labels include `labels` (label order does not matter). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('retention policies from configuration, run by the scheduler', () => {
  it('ListPolicies shows the configured policies and the audit-log age override', async () => {
    const { policies: listed } = await svc.call<{ policies: Array<Record<string, unknown>> }>('ListPolicies', {}, ops);
    expect(listed).toEqual([
      // Names only batch_size / pause_ms: fixed pacing, no time budget (ADR 0506).
      { name: POLICY, table: 'chat_logs', timestamp_column: 'logged_at', key_column: 'log_id', max_age_days: 7, batch_size: 3, pause_ms: 0, schedule: '@every 10s', mode: 'batch_delete', max_run_seconds: 60, batch_target_ms: 0, pause_percent: 0 },
      expect.objectContaining({ name: 'audit_log', mode: 'drop_partitions', max_age_days: 400, schedule: 'off' }),
    ]);
  });

  it('the scheduler deletes exactly the expired rows in batches of batch_size and reports a retention_run event and metrics', async () => {
    await waitFor(async () => (await schema.pool.query(`SELECT 1 FROM chat_logs WHERE line LIKE 'old %'`)).rowCount === 0, { what: 'scheduled deletion', timeoutMs: 30_000 });
    const { rows } = await schema.pool.query<{ line: string }>('SELECT line FROM chat_logs ORDER BY log_id');
    expect(rows.map((r) => r.line)).toEqual(['new 1', 'new 2', 'new 3', 'new 4', 'new 5']);

    const [event] = await waitFor(() => (events.messages.length > 0 ? events.messages : undefined), { what: 'retention_run event' });
    expect(event!.json).toMatchObject({
      type: 'retention_run',
      service: 'retention',
      tenant: '*',
      action: 'retention_run',
      resource: 'table:chat_logs',
      outcome: 'success',
      details: { policy: POLICY, table: 'chat_logs', mode: 'batch_delete', dry_run: false, rows_expired: 10, rows_deleted: 10, batches: 4, run_outcome: 'success', trigger: 'schedule', requested_by: null },
    });
    expect((event!.json!['details'] as Record<string, unknown>)['duration_ms']).toEqual(expect.any(Number));

    const metrics = await (await fetch(`${svc.httpUrl}/metrics`)).text();
    expect(sample(metrics, 'soma_retention_rows_deleted_total', { policy: POLICY, table: 'chat_logs' })).toBe(10);
    expect(sample(metrics, 'soma_retention_runs_total', { policy: POLICY, outcome: 'success', dry_run: 'false' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'soma_retention_batch_seconds_count', { policy: POLICY })).toBeGreaterThanOrEqual(4);
    expect(sample(metrics, 'soma_retention_last_success_timestamp_seconds', { policy: POLICY })).toBeGreaterThan(Date.now() / 1000 - 120);
    // schedule "off": the audit_log policy never ran on its own.
    expect(sample(metrics, 'soma_retention_runs_total', { policy: 'audit_log' })).toBeUndefined();
  });

  it('a service stopped in the middle of a RunPolicy ends it after the current batch; the next instance finishes exactly the rest', async () => {
    await schema.pool.query(`CREATE TABLE slow_rows (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL)`);
    await schema.pool.query(`INSERT INTO slow_rows (created_at) SELECT now() - interval '40 days' - g * interval '1 second' FROM generate_series(1, 400) g`);
    await schema.pool.query(`INSERT INTO slow_rows (created_at) SELECT now() - interval '1 day' FROM generate_series(1, 10)`);
    const slow = { RETENTION_POLICIES: JSON.stringify([{ name: 'slow', table: 'slow_rows', max_age_days: 30, batch_size: 20, pause_ms: 500, schedule: 'off' }]) };
    const expired = async () => Number((await schema.pool.query<{ n: string }>(`SELECT count(*) AS n FROM slow_rows WHERE created_at < now() - interval '30 days'`)).rows[0]!.n);

    const first = await startRetention(schema, auth, { kek: KEK, env: slow });
    let firstRun: Promise<unknown>;
    try {
      // 20 batches with 0.5 s pauses: about 10 s if left alone.
      firstRun = first.call<{ results: Array<Record<string, unknown>> }>('RunPolicy', { policy: 'slow', dry_run: false }, ops).then(
        (r) => r.results[0],
        (e: unknown) => e,
      );
      await waitFor(async () => (await expired()) < 400, { what: 'the first batch', intervalMs: 20 });
    } finally {
      await first.stop();
    }
    const outcome = await firstRun;
    const left = await expired();
    expect(left).toBeGreaterThan(0);
    expect(left % 20).toBe(0); // whole batches only: each is its own transaction
    // The gRPC server drains in-flight calls: the caller still gets the answer, saying where it stopped.
    expect(outcome).toMatchObject({ outcome: 'partial', reason: 'stopped', rows_deleted: String(400 - left) });

    // Same policy on the next instance (without the pause, to keep the test short).
    const second = await startRetention(schema, auth, { kek: KEK, env: { RETENTION_POLICIES: slow.RETENTION_POLICIES.replace('"pause_ms":500', '"pause_ms":0') } });
    try {
      const { results } = await second.call<{ results: Array<Record<string, unknown>> }>('RunPolicy', { policy: 'slow', dry_run: false }, ops);
      expect(results[0]).toMatchObject({ outcome: 'success', rows_expired: String(left), rows_deleted: String(left) });
    } finally {
      await second.stop();
    }
    expect(await expired()).toBe(0);
    expect(Number((await schema.pool.query<{ n: string }>('SELECT count(*) AS n FROM slow_rows')).rows[0]!.n)).toBe(10);
  });

  it('a policy list that cannot be used stops start-up with a ConfigError naming the variable', async () => {
    // A fresh buffer per attempt: the shared runtime leaves a publisher open when the module fails to build.
    let attempt = 0;
    const env = (policiesJson: string) => ({
      ...process.env,
      RETENTION_GRPC_PORT: '1',
      RETENTION_HTTP_PORT: '2',
      EVENT_BUFFER_PATH: join(tmp, `never-${++attempt}.sqlite`),
      EVENT_BUFFER_DIR: mkdtempSync(join(tmp, 'attempt-')),
      LOG_LEVEL: 'silent',
      OTEL_ENABLED: 'false',
      POSTGRES_URL,
      RETENTION_SCHEDULER_ENABLED: 'false',
      RETENTION_POLICIES: policiesJson,
    });
    for (const [json, message] of [
      ['[{"table":"messages; DROP TABLE sessions"}]', 'policies[0].table must be a lower-case SQL identifier'],
      ['[{"table":"messages","max_age":90}]', 'policies[0] has an unknown field "max_age"'],
      ['[{"table":"messages","schedule":"0 3 * * *"}]', 'policies[0].schedule must be'],
    ] as const) {
      const error = await startSomaService(retentionService, env(json)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).toContain('RETENTION_POLICIES');
      expect(String((error as Error).message)).toContain(message);
      expect(String((error as Error).message)).not.toContain('DROP TABLE');
    }
  });
});
