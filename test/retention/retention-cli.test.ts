import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSecurityEvent } from '@soma/events';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { REPO_ROOT } from '../support/infra.js';
import { createTestSchema, ingestAuditEvents, startRetention, type RetentionUnderTest, type TestSchema } from './retention-support.js';

/**
 * The operator CLI (`npx soma retention …`, `npx soma gdpr …`) built from source and run as a child
 * process against a running retention service (in-process, real PostgreSQL, auth, Kafka) with the
 * seed's default policies.
 */
const exec = promisify(execFile);
const run = randomBytes(4).toString('hex');
const T = `acme-${run}`;
const U = 'user123';
const OTHER = 'user456';
const KEK = randomBytes(48).toString('base64url');
const tmp = mkdtempSync(join(tmpdir(), 'soma-retention-cli-'));

let schema: TestSchema;
let auth: AuthHarness;
let svc: RetentionUnderTest;
const cred = { ops: '', dpo: '', self: '' };

/** `node bin/soma.js …` (what `npx soma` runs); exit code and output instead of throwing. */
async function soma(args: string[], credential?: string, viaNpx = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, RETENTION_GRPC_ADDRESS: svc.grpcAddress, SOMA_CREDENTIAL: credential };
  if (credential === undefined) delete env['SOMA_CREDENTIAL'];
  const [file, argv] = viaNpx ? ['npx', ['--no-install', 'soma', ...args]] : [process.execPath, ['bin/soma.js', ...args]];
  try {
    const r = await exec(file, argv, { cwd: REPO_ROOT, env, timeout: 60_000 });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function count(table: string, where = 'TRUE', params: unknown[] = []): Promise<number> {
  const { rows } = await schema.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, params);
  return Number(rows[0]!.n);
}

beforeAll(async () => {
  // Build the CLI exactly as `npm run build` does for it.
  await exec('npx', ['tsc', '-p', 'apps/cli/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 300_000 });
  await exec('npx', ['tsc-alias', '-p', 'apps/cli/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 120_000 });
  schema = await createTestSchema({ audit: true });
  auth = await startAuthHarness();
  cred.ops = (await auth.issueToken({ tenant: '*', sub: 'ops', scopes: ['retention:admin'] })).token;
  cred.dpo = (await auth.createApiKey({ tenant: T, name: 'dpo', owner_sub: 'dpo', scopes: ['gdpr:export', 'gdpr:erase', 'consent:read', 'consent:write'] })).key;
  cred.self = (await auth.issueToken({ tenant: T, sub: U })).token;
  await auth.createApiKey({ tenant: T, name: 'laptop', owner_sub: U });

  // Per table: 5 rows of U and 3 of OTHER 100 days old (expired under the 90-day defaults), 2 of U fresh.
  for (const [user, n, age] of [[U, 5, 100], [OTHER, 3, 100], [U, 2, 1]] as const) {
    const at = `now() - interval '${age} days'`;
    await schema.pool.query(`INSERT INTO sessions (tenant, user_id, title, created_at) SELECT $1, $2, 'chat', ${at} FROM generate_series(1, $3)`, [T, user, n]);
    await schema.pool.query(`INSERT INTO messages (session_id, tenant, user_id, role, content, created_at) SELECT 1, $1, $2, 'user', 'hi', ${at} FROM generate_series(1, $3)`, [T, user, n]);
    await schema.pool.query(`INSERT INTO session_events (session_id, tenant, user_id, event_type, occurred_at) SELECT 1, $1, $2, 'tool_call', ${at} FROM generate_series(1, $3)`, [T, user, n]);
  }
  await ingestAuditEvents(schema.pool, KEK, 0, new Date(), [
    buildSecurityEvent('auth', { type: 'authentication_succeeded', tenant: T, action: 'login', outcome: 'success', actor: { user_id: U, ip_address: '198.51.100.9' } }),
  ]);
  // No RETENTION_POLICIES: the seed's defaults.
  svc = await startRetention(schema, auth, { kek: KEK });
});

afterAll(async () => {
  await svc?.stop();
  await auth?.stop();
  await schema?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('npx soma retention …', () => {
  it('retention policies lists the seed defaults', async () => {
    const text = await soma(['retention', 'policies'], cred.ops);
    expect(text.code).toBe(0);
    // The seed paces batch_delete by a time budget (ADR 0506): ~100 ms batches (the first of 5000 rows), a pause of
    // 5% of each batch's time and no fixed pause.
    expect(text.stdout.trim().split('\n')).toEqual([
      'sessions\tsessions.created_at\t90d\tbatch_delete\tbatch ~100ms (first 5000 rows)\tpause 0ms + 5%\t@every 1h',
      'messages\tmessages.created_at\t90d\tbatch_delete\tbatch ~100ms (first 5000 rows)\tpause 0ms + 5%\t@every 1h',
      'session_events\tsession_events.occurred_at\t90d\tbatch_delete\tbatch ~100ms (first 5000 rows)\tpause 0ms + 5%\t@every 1h',
      'audit_log\taudit_log.timestamp\t365d\tdrop_partitions\tbatch 1\tpause 0ms\t@every 1d',
    ]);
  });

  it('`npx soma retention run --dry-run` reports what would go and deletes nothing', async () => {
    const before = await count('messages');
    const r = await soma(['retention', 'run', '--dry-run'], cred.ops, true);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const table of ['sessions', 'messages', 'session_events']) {
      expect(lines.find((l) => l.startsWith(`${table}\t`))).toMatch(/^\S+\tsuccess\twould delete 8 rows older than \d{4}-\d\d-\d\dT/);
    }
    expect(lines.find((l) => l.startsWith('audit_log\t'))).toMatch(/^audit_log\tsuccess\twould delete 0 rows .*partitions \[\]/);
    expect(await count('messages')).toBe(before);
  });

  it('retention run --policy deletes exactly the expired rows of that table (--json)', async () => {
    const r = await soma(['retention', 'run', '--policy', 'messages', '--json'], cred.ops);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject([{ policy: 'messages', outcome: 'success', dry_run: false, rows_expired: '8', rows_deleted: '8', batches: 1 }]);
    expect(await count('messages', "created_at < now() - interval '90 days'")).toBe(0);
    expect(await count('messages')).toBe(2);
    expect(await count('sessions')).toBe(10); // other policies untouched
  });

  it('refuses without a credential, with a bad one, and without retention:admin (exit 1, reason on stderr)', async () => {
    const none = await soma(['retention', 'run', '--dry-run']);
    expect(none).toMatchObject({ code: 1, stderr: expect.stringContaining('a credential is required') });
    const bad = await soma(['retention', 'run', '--dry-run'], 'not-a-token');
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringMatching(/^soma: UNAUTHENTICATED/) });
    const dpo = await soma(['retention', 'policies'], cred.dpo);
    expect(dpo).toMatchObject({ code: 1, stderr: expect.stringMatching(/^soma: PERMISSION_DENIED \(PERMISSION_DENIED\)/) });
    // The credential never appears in what the CLI prints.
    expect(bad.stderr + bad.stdout).not.toContain('not-a-token');
  });
});

describe('npx soma gdpr …', () => {
  it('consent record --grant / --withdraw and consent get --history', async () => {
    expect((await soma(['gdpr', 'consent', 'record', '--tenant', T, '--user', U, '--purpose', 'marketing', '--grant', '--source', 'web:settings', '--policy-version', 'v3'], cred.self)).code).toBe(0);
    const w = await soma(['gdpr', 'consent', 'record', '--tenant', T, '--user', U, '--purpose', 'marketing', '--withdraw'], cred.dpo);
    expect(JSON.parse(w.stdout)).toMatchObject({ record: { purpose: 'marketing', granted: false, source: 'cli', recorded_by: `${T}/dpo` } });
    const got = JSON.parse((await soma(['gdpr', 'consent', 'get', '--tenant', T, '--user', U, '--history'], cred.self)).stdout);
    expect(got.current).toMatchObject([{ purpose: 'marketing', granted: false }]);
    expect(got.history.map((h: Record<string, unknown>) => [h['granted'], h['recorded_by'], h['policy_version']])).toEqual([
      [true, 'self', 'v3'],
      [false, `${T}/dpo`, ''],
    ]);
  });

  it('`npx soma gdpr export --tenant … --user user123` prints the soma.gdpr.export/v1 document; --out writes it 0600', async () => {
    const r = await soma(['gdpr', 'export', '--tenant', T, '--user', U], cred.dpo, true);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ format: 'soma.gdpr.export/v1', tenant: T, user_id: U, counts: { sessions: 7, messages: 2, session_events: 7, api_keys: 1, consent_records: 2, audit_entries: 1 } });
    expect(doc.audit.entries[0].personal).toMatchObject({ user_id: U, ip_address: '198.51.100.9' });
    expect(r.stdout).not.toContain(OTHER);
    expect(r.stderr).toMatch(/^soma\.gdpr\.export\/v1, sha256 of the compact document [0-9a-f]{64}/);

    const out = join(tmp, 'export.json');
    const f = await soma(['gdpr', 'export', '--tenant', T, '--user', U, '--out', out], cred.self);
    expect(f.code).toBe(0);
    expect(f.stdout).toBe('');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(out, 'utf8')).counts.sessions).toBe(7);

    // Refusals through the CLI are covered by the retention run case and the security matrix (gRPC).
  });

  it('gdpr erase needs --yes, then erases the user and revokes their credentials', async () => {
    const unconfirmed = await soma(['gdpr', 'erase', '--tenant', T, '--user', U], cred.dpo);
    expect(unconfirmed).toMatchObject({ code: 1, stderr: expect.stringContaining('repeat with --yes') });
    expect(await count('sessions', 'tenant = $1 AND user_id = $2', [T, U])).toBe(7);

    const selfErase = await soma(['gdpr', 'erase', '--tenant', T, '--user', U, '--yes'], cred.self);
    expect(selfErase).toMatchObject({ code: 1, stderr: expect.stringContaining('PERMISSION_DENIED') });

    const r = await soma(['gdpr', 'erase', '--tenant', T, '--user', U, '--reason', 'ticket-77', '--yes'], cred.dpo);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      rows_deleted: [
        { table: 'sessions', rows: '7' },
        { table: 'messages', rows: '2' },
        { table: 'session_events', rows: '7' },
      ],
      consent_records_deleted: '2',
      api_keys_revoked: 1,
      audit_key_destroyed: true,
    });
    for (const table of ['sessions', 'messages', 'session_events', 'consent_records']) expect(await count(table, 'tenant = $1 AND user_id = $2', [T, U])).toBe(0);
    expect(await count('sessions', 'tenant = $1 AND user_id = $2', [T, OTHER])).toBe(3);
    // The erased user's own token is refused from now on.
    expect(await soma(['gdpr', 'consent', 'get', '--tenant', T, '--user', U], cred.self)).toMatchObject({ code: 1, stderr: expect.stringContaining('UNAUTHENTICATED') });
  });
});
