import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register, scramSha256Verifier } from '../../apps/cli/src/commands/db-password.js';
import { POSTGRES_URL } from '../support/infra.js';

// `npx soma db-password rotate` against the real PostgreSQL, on a throw-away login role of this run: the
// password changes, the new one logs in, the old one no longer does, and the server stored a SCRAM verifier.

const role = `soma_rot_${randomBytes(4).toString('hex')}`;
const oldPassword = `old-${randomBytes(12).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'soma-db-password-'));
const admin = new pg.Client({ connectionString: POSTGRES_URL });
const target = new URL(POSTGRES_URL);

async function login(password: string): Promise<string> {
  const c = new pg.Client({ host: target.hostname, port: Number(target.port || 5432), database: target.pathname.slice(1), user: role, password });
  try {
    await c.connect();
    return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The CLI command in-process (commander), with the environment an operator would set. */
async function soma(args: string[], env: Record<string, string>): Promise<string> {
  const saved = { ...process.env };
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  Object.assign(process.env, env);
  process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  try {
    const program = new Command('soma').exitOverride();
    register(program);
    await program.parseAsync(['node', 'soma', ...args]);
  } finally {
    process.stdout.write = write;
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return out.join('');
}

beforeAll(async () => {
  await admin.connect();
  const { rows } = await admin.query<{ sql: string }>("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text) AS sql", [role, oldPassword]);
  await admin.query(rows[0]!.sql);
});

afterAll(async () => {
  const { rows } = await admin.query<{ sql: string }>("SELECT format('DROP ROLE IF EXISTS %I', $1::text) AS sql", [role]);
  await admin.query(rows[0]!.sql);
  await admin.end();
});

describe('soma db-password', () => {
  it('generate prints a 256-bit base64url password', async () => {
    const out = (await soma(['db-password', 'generate'], {})).trim();
    expect(out).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('rotate changes the role\'s own password: the new one logs in, the old one is refused, nothing secret is printed', async () => {
    expect(await login(oldPassword)).toBe(role);
    const next = (await soma(['db-password', 'generate'], {})).trim();
    const file = join(dir, 'postgres.password');
    writeFileSync(file, `${next}\n`, { mode: 0o600 });
    const passwordFile = join(dir, 'old.password');
    writeFileSync(passwordFile, oldPassword, { mode: 0o600 });
    const out = await soma(['db-password', 'rotate', '--new-password-file', file], {
      POSTGRES_HOST: target.hostname, POSTGRES_PORT: target.port || '5432', POSTGRES_DB: target.pathname.slice(1), POSTGRES_USER: role, POSTGRES_PASSWORD_FILE: passwordFile, POSTGRES_SSLMODE: 'disable',
    });
    expect(out).toBe(`password of role ${role} changed\nlogin as ${role} with the new password: ok\n`);
    expect(out).not.toContain(next);
    expect(await login(next)).toBe(role);
    await expect(login(oldPassword)).rejects.toThrow(/password authentication failed/);
  });

  it('builds PostgreSQL\'s SCRAM-SHA-256 verifier format (the login above proves the server accepted the verifier)', () => {
    const v = scramSha256Verifier('correct-horse-battery-staple', Buffer.alloc(16, 1));
    expect(v).toMatch(/^SCRAM-SHA-256\$4096:AQEBAQEBAQEBAQEBAQEBAQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    expect(() => scramSha256Verifier('with space')).toThrow(/printable ASCII/);
  });
});
