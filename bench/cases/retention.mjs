// Retention cleanup of expired rows (RetentionService.RunPolicy, the shipped `messages` policy: batched
// deletes) against one plain DELETE … WHERE created_at < cutoff; a concurrent writer runs during both.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ROOT, freePort, latencyStats, log, processMeter, round, startService } from '../lib/common.mjs';
import { grpcClient } from '../lib/grpc.mjs';
import { describeRun } from '../lib/load.mjs';
import { startAuth } from './auth.mjs';
import { PG_ADMIN_URL } from './audit.mjs';

const DAY_MS = 86_400_000;

async function createSchema() {
  const name = `bench_retention_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: PG_ADMIN_URL, options: `-c search_path=${name}`, max: 4 });
  pool.on('error', () => undefined);
  const client = await pool.connect();
  try {
    for (const f of ['infra/postgres/migrations/0001_audit_log.sql', 'infra/postgres/platform/0001_platform_tables.sql', 'infra/postgres/migrations/0100_retention_consent.sql']) {
      await client.query('BEGIN');
      await client.query(readFileSync(join(ROOT, f), 'utf8'));
      await client.query('COMMIT');
    }
    await client.query(`GRANT USAGE ON SCHEMA ${pg.escapeIdentifier(name)} TO audit_retention`);
  } finally {
    client.release();
  }
  return {
    name,
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${pg.escapeIdentifier(name)} CASCADE`).catch(() => undefined);
      await c.end();
    },
  };
}

/** `expired` rows 91+ days old interleaved by id with `kept` rows 89 days old. */
async function seed(pool, expired, kept, reference) {
  await pool.query('TRUNCATE messages');
  const total = expired + kept;
  const every = Math.max(2, Math.round(total / kept));
  await pool.query(
    `INSERT INTO messages (session_id, tenant, user_id, role, content, created_at)
     SELECT g / 20, 'acme', 'user' || (g % 5000), 'user', 'seed',
            CASE WHEN g % $3::int <> 0 THEN $1::timestamptz - interval '91 days' - (g % 86400) * interval '1 second'
                 ELSE $1::timestamptz - interval '89 days' + (g % 86400) * interval '1 second' END
     FROM generate_series(1, $2::int) AS g`,
    [reference, total, every],
  );
  await pool.query('VACUUM ANALYZE messages');
  // Both sides start from a clean WAL position: a checkpoint landing inside one run but not the other moved its
  // WAL volume by up to ~30% (retention owner's measurement).
  await pool.query('CHECKPOINT').catch(() => undefined);
  const { rows } = await pool.query('SELECT count(*) AS n FROM messages WHERE created_at < $1', [new Date(reference.getTime() - 90 * DAY_MS)]);
  return Number(rows[0].n);
}

/** The platform keeps writing while retention runs: 10-row INSERTs back to back, each timed. */
function startWriter(pool) {
  let on = true;
  const lat = [];
  let errors = 0;
  const done = (async () => {
    while (on) {
      const t = performance.now();
      try {
        await pool.query(`INSERT INTO messages (session_id, tenant, user_id, role, content) SELECT 1, 'acme', 'live-writer', 'assistant', 'live' FROM generate_series(1, 10)`);
        lat.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  })();
  return async () => {
    on = false;
    await done;
    return { tool: 'pg INSERT of 10 rows, back to back', requests: lat.length + errors, errors, latencyMs: latencyStats(lat) };
  };
}

async function retentionCleanup(ctx) {
  const expired = ctx.quick ? 50_000 : 1_000_000;
  const kept = ctx.quick ? 10_000 : 200_000;
  const schema = await createSchema();
  const auth = await startAuth('HS256', { ...ctx, pinAuth: false });
  let svc;
  try {
    const caller = (await auth.client.call('IssueToken', { tenant: '*', sub: 'bench-operator', scopes: ['retention:admin'], ttl_seconds: 7200 }, auth.admin)).token;
    svc = await startService(
      'retention',
      {
        RETENTION_GRPC_PORT: String(await freePort()), RETENTION_HTTP_PORT: String(await freePort()),
        POSTGRES_URL: PG_ADMIN_URL, RETENTION_PLATFORM_SCHEMA: schema.name, RETENTION_AUDIT_SCHEMA: schema.name, RETENTION_SCHEMA: schema.name,
        RETENTION_SCHEDULER_ENABLED: 'false', AUDIT_KEK: randomBytes(32).toString('base64url'),
        AUTH_GRPC_ADDRESS: auth.svc.grpc, RETENTION_AUTH_CREDENTIAL: auth.admin,
      },
      { nodeArgs: ctx.nodeArgs('retention') },
    );
    const client = grpcClient(svc.grpc, 'soma/retention/v1/retention.proto', 'soma.retention.v1.RetentionService');
    const reference = new Date();
    const cutoff = new Date(reference.getTime() - 90 * DAY_MS);

    // Baseline first: one plain DELETE, with the writer running.
    let n = await seed(schema.pool, expired, kept, reference);
    log(`retention: seeded ${n} expired rows (+ ${kept} kept) for the plain DELETE`);
    let stopWriter = startWriter(schema.pool);
    const direct = new pg.Client({ connectionString: PG_ADMIN_URL, options: `-c search_path=${schema.name} -c statement_timeout=0` });
    await direct.connect();
    let t0 = performance.now();
    const del = await direct.query('DELETE FROM messages WHERE created_at < $1', [cutoff]);
    const deleteSeconds = (performance.now() - t0) / 1000;
    await direct.end();
    const plain = { tool: 'one DELETE … WHERE created_at < cutoff', rows: del.rowCount, seconds: round(deleteSeconds, 2), throughput: round(del.rowCount / deleteSeconds, 0), unit: 'rows/s', errors: 0, writer: await stopWriter() };
    describeRun('plain DELETE', plain);
    describeRun('  writer during DELETE', plain.writer);

    n = await seed(schema.pool, expired, kept, reference);
    log(`retention: seeded ${n} expired rows again for RunPolicy`);
    stopWriter = startWriter(schema.pool);
    const meter = processMeter(svc.pid);
    t0 = performance.now();
    // RunPolicy can take minutes: its own deadline.
    const res = await client.call('RunPolicy', { policy: 'messages', dry_run: false }, caller, 1_800_000);
    const runSeconds = (performance.now() - t0) / 1000;
    const proc = meter.stop();
    const writer = await stopWriter();
    client.close();
    const r = res.results[0];
    const target = { tool: 'RunPolicy messages (gRPC)', rows: Number(r.rows_deleted), seconds: round(runSeconds, 2), throughput: round(Number(r.rows_deleted) / runSeconds, 0), unit: 'rows/s', errors: r.outcome === 'success' ? 0 : 1, outcome: r.outcome, batches: r.batches, process: proc, writer };
    describeRun('RunPolicy', target);
    describeRun('  writer during RunPolicy', writer);
    return {
      id: 'retention-cleanup',
      kind: 'batch',
      path: `retention cleanup of ${expired.toLocaleString('en')} expired rows`,
      goal: { text: 'no slower than one plain DELETE, concurrent writer p99 < 50 ms', baseline: 'plain-delete', min: 1.0, maxWriterP99Ms: 50 },
      target,
      baselines: { 'plain-delete': plain },
      notes: [`${expired} expired rows interleaved with ${kept} kept rows in \`messages\` (own schema); the shipped \`messages\` policy (batch ${r.batches ? Math.ceil(Number(r.rows_deleted) / r.batches) : '?'} rows, pause between batches); ratio = DELETE seconds / RunPolicy seconds (> 1 = faster); outcome ${r.outcome}`],
    };
  } finally {
    await svc?.stop();
    await auth.svc.stop();
    auth.client.close();
    await schema.drop();
  }
}

export const cases = { 'retention-cleanup': retentionCleanup };
