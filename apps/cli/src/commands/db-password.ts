import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '@soma/config';
import { PostgresConfig, createPgPool } from '@soma/postgres';

const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677, PostgreSQL's own format).
 * Sending the verifier instead of the password keeps the plain text out of the server's logs and statistics.
 * ASCII passwords only (what `generate` makes): SASLprep of other text is not attempted.
 */
export function scramSha256Verifier(password: string, salt = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error('the new password must be printable ASCII without spaces (soma db-password generate makes one)');
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

function readPassword(path: string): string {
  const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (value.length < 16) throw new Error(`${path}: the new password must have at least 16 characters`);
  return value;
}

/** `soma db-password generate | rotate`: the database password of a suite role, never printed once set. */
export function register(program: Command): void {
  const cmd = program.command('db-password').description('PostgreSQL password of a suite role (rotation runbook: docs/operations.md)');
  cmd
    .command('generate')
    .description('print a new random password (32 bytes, base64url) to store as the new secret file')
    .action(() => {
      process.stdout.write(`${randomBytes(32).toString('base64url')}\n`);
    });
  cmd
    .command('rotate')
    .description('set the role\'s password to the one in --new-password-file (as a SCRAM verifier), then prove a login with it')
    .requiredOption('--new-password-file <path>', 'file holding the new password (e.g. the new Docker/Kubernetes secret)')
    .option('--role <name>', 'role to change (default: POSTGRES_USER; a role may change its own password)')
    .option('--no-verify', 'skip the login with the new password')
    .action(async (opts: { newPasswordFile: string; role?: string; verify: boolean }) => {
      // Connects with the current settings: POSTGRES_URL or POSTGRES_HOST/PORT/USER/DB + POSTGRES_PASSWORD(_FILE).
      const config = await loadConfig(PostgresConfig, process.env);
      const role = opts.role ?? config.POSTGRES_USER;
      const next = readPassword(opts.newPasswordFile);
      const pool = createPgPool(config, { applicationName: 'soma-cli-db-password' });
      try {
        // ALTER ROLE takes no bind parameters: the server quotes the name and the verifier itself (format %I, %L).
        const { rows } = await pool.query<{ sql: string }>("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text) AS sql", [role, scramSha256Verifier(next)]);
        await pool.query(rows[0]!.sql);
      } finally {
        await pool.end();
      }
      process.stdout.write(`password of role ${role} changed\n`);
      if (!opts.verify) return;
      let url: string | undefined;
      if (config.POSTGRES_URL) {
        const u = new URL(config.POSTGRES_URL);
        u.username = encodeURIComponent(role);
        u.password = encodeURIComponent(next);
        url = u.toString();
      }
      const check = createPgPool({ ...config, POSTGRES_URL: url, POSTGRES_USER: role, POSTGRES_PASSWORD: next, POSTGRES_POOL_MAX: 1 }, { applicationName: 'soma-cli-db-password-check' });
      try {
        await check.query('SELECT 1');
      } finally {
        await check.end();
      }
      process.stdout.write(`login as ${role} with the new password: ok\n`);
    });
}
