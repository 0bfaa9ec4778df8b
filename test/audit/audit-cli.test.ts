import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { auditService } from '../../apps/audit/src/audit.service-definition.js';
import type { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { REPO_ROOT } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { auditEnv, event, EventProducer, exportApiKey, freshGroupAtEnd, TestDatabase } from './audit-harness.js';

const run = promisify(execFile);
const db = new TestDatabase();
const producer = new EventProducer();
const tenant = `cli-${randomUUID()}`;
let service: StartedService<AuditConfig>;
let grpcAddress = '';

/** `node bin/soma.js …`; resolves to exit code and output instead of throwing on a non-zero exit. */
async function soma(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['bin/soma.js', ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  await run('npx', ['tsc', '-p', 'apps/cli/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 300_000 });
  await run('npx', ['tsc-alias', '-p', 'apps/cli/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 120_000 });
  await Promise.all([db.create(), producer.connect()]);
  const ports = { grpc: await freePort(), http: await freePort() };
  grpcAddress = `127.0.0.1:${ports.grpc}`;
  service = await startSomaService(auditService, auditEnv(db, await freshGroupAtEnd(), ports));
  await producer.send(tenant, Array.from({ length: 50 }, () => JSON.stringify(event(tenant))));
  await waitFor(async () => (await db.count(tenant)) === 50, { what: 'events stored' });
});

afterAll(async () => {
  await service?.stop();
  await producer.disconnect();
  await db.drop();
});

describe('npx soma db migrate / audit verify / audit partitions', () => {
  it('db migrate records applied versions and is idempotent', async () => {
    const r = await soma(['db', 'migrate'], { POSTGRES_URL: db.url });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0 applied, \d+ already applied/);
    const { rows } = await db.pool.query<{ version: string; checksum: string }>("SELECT version, checksum FROM schema_migrations WHERE version = '0001'");
    expect(rows[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('db migrate refuses a migration whose applied checksum changed', async () => {
    await db.pool.query("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = '0001'");
    const r = await soma(['db', 'migrate'], { POSTGRES_URL: db.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('was changed after it was applied');
  });

  it('audit partitions creates months ahead idempotently', async () => {
    const r = await soma(['audit', 'partitions', '--months-ahead', '6'], { POSTGRES_URL: db.url });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/created: audit_log_y\d{4}m\d{2}|all partitions exist/);
    expect((await soma(['audit', 'partitions', '--months-ahead', '6'], { POSTGRES_URL: db.url })).stdout).toContain('all partitions exist');
  });

  it('audit verify needs a credential: none → exit 1, a wrong one → exit 1 with UNAUTHENTICATED', async () => {
    const none = await soma(['audit', 'verify', '--address', grpcAddress], { SOMA_CREDENTIAL: '' });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('a credential is required');
    const wrong = await soma(['audit', 'verify', '--address', grpcAddress, '--credential', 'not-the-key-not-the-key-not-the-key']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('VerifyChain failed: UNAUTHENTICATED');
  });

  it('audit verify exits 0 on an intact log and 2 naming the row after tampering', async () => {
    const ok = await soma(['audit', 'verify', '--address', grpcAddress], { SOMA_CREDENTIAL: exportApiKey });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^intact: \d+ chains, \d+ rows/);
    const victim = (await db.pool.query<{ id: string }>('SELECT id FROM audit_log WHERE tenant = $1 ORDER BY chain_seq DESC LIMIT 1 OFFSET 3', [tenant])).rows[0]!;
    await db.pool.query("UPDATE audit_log SET outcome = 'success' WHERE id = $1", [victim.id]);
    const bad = await soma(['audit', 'verify', '--address', grpcAddress, '--credential', exportApiKey]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain(`row ${victim.id}: HASH_MISMATCH`);
  });
});
