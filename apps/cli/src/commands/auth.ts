import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AuthClient } from '@soma/auth-client';
import { cliChannelCredentials } from '../grpc-credentials.js';

/** Shared by `soma auth …` and `soma api-keys …`: where auth listens and whose credential to send. */
export interface AuthCliOptions {
  address: string;
  credential?: string;
}

export const DEFAULT_AUTH_ADDRESS = process.env['AUTH_GRPC_ADDRESS'] ?? '127.0.0.1:20020';

export function authCredential(opts: { credential?: string }, needs: string): string {
  const credential = opts.credential ?? process.env['SOMA_CREDENTIAL'];
  if (!credential) throw new Error(`a credential is required: --credential or SOMA_CREDENTIAL (a JWT or API key with ${needs}; \`soma auth login\` prints one)`);
  return credential;
}

/** One AuthClient for one command, closed afterwards. */
export async function withAuthClient<T>(opts: AuthCliOptions, needs: string, fn: (client: AuthClient) => Promise<T>): Promise<T> {
  const client = new AuthClient({ address: opts.address, deadlineMs: 30_000, adminCredential: authCredential(opts, needs), credentials: cliChannelCredentials() });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function readPassword(opts: { passwordFile?: string; passwordStdin?: boolean }): string {
  if (opts.passwordFile) return readFileSync(opts.passwordFile, 'utf8').replace(/\r?\n$/, '');
  if (opts.passwordStdin) return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  const fromEnv = process.env['SOMA_PASSWORD'];
  if (fromEnv) return fromEnv;
  throw new Error('a password is required: --password-file <path>, --password-stdin or SOMA_PASSWORD (never as an argument)');
}

/**
 * `soma auth login | rotate-signing-key | signing-keys | issue-token | revoke-token | revoke-subject`.
 * Every command but `login` goes through the auth service's gRPC API with the operator's credential,
 * so it is authorized, audited (security events) and seen by every instance at once.
 */
export function register(program: Command): void {
  const auth = program.command('auth').description('the auth service: session login, JWT signing keys, tokens');
  const withTarget = (c: Command) =>
    c.option('--address <host:port>', 'auth gRPC address (default: $AUTH_GRPC_ADDRESS or 127.0.0.1:20020)', DEFAULT_AUTH_ADDRESS).option('--credential <bearer>', 'operator credential (default: $SOMA_CREDENTIAL)');

  auth
    .command('login')
    .description('POST /v1/login with the UI password; prints the session JWT (use it as SOMA_CREDENTIAL)')
    .option('--url <url>', 'auth HTTP base URL (default: $AUTH_HTTP_URL or http://127.0.0.1:20021)', process.env['AUTH_HTTP_URL'] ?? 'http://127.0.0.1:20021')
    .option('--username <name>', 'account name (default: the configured AUTH_LOGIN_USERNAME)')
    .option('--password-file <path>', 'read the password from a file')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (opts: { url: string; username?: string; passwordFile?: string; passwordStdin?: boolean }) => {
      const res = await fetch(new URL('/v1/login', opts.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'soma-cli' },
        body: JSON.stringify({ ...(opts.username ? { username: opts.username } : {}), password: readPassword(opts) }),
      });
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) throw new Error(`login refused: ${res.status} ${String(body['code'] ?? '')} ${String(body['detail'] ?? '')}`.trim());
      process.stdout.write(`${String(body['access_token'])}\n`);
    });

  withTarget(auth.command('rotate-signing-key'))
    .description('start signing JWTs with a new key on every instance; older keys keep verifying until their tokens expire (needs auth:admin on tenant *)')
    .action(async (opts: AuthCliOptions) => {
      const out = await withAuthClient(opts, 'auth:admin on tenant *', (c) => c.rotateSigningKey());
      print(out);
    });

  withTarget(auth.command('signing-keys'))
    .description('the signing and verification keys in use (kid, alg, dates; never key material)')
    .action(async (opts: AuthCliOptions) => {
      const keys = await withAuthClient(opts, 'auth:admin on tenant *', (c) => c.listSigningKeys());
      for (const k of keys) process.stdout.write(`${k.kid}\t${k.alg}\t${k.signing ? 'signing' : 'verify-only'}\tcreated ${k.created_at}${k.retire_at ? `\tretires ${k.retire_at}` : ''}\n`);
    });

  withTarget(auth.command('issue-token'))
    .description('mint a JWT for a subject of a tenant (needs auth:admin on that tenant)')
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--sub <sub>', 'subject')
    .option('--scopes <list>', 'comma-separated scopes', '')
    .option('--persona <id>', 'persona_id', '')
    .option('--ttl-seconds <n>', 'lifetime (default JWT_EXPIRY_SECONDS)', '0')
    .action(async (opts: AuthCliOptions & { tenant: string; sub: string; scopes: string; persona: string; ttlSeconds: string }) => {
      const t = await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) =>
        c.issueToken({ tenant: opts.tenant, sub: opts.sub, scopes: splitList(opts.scopes), ...(opts.persona ? { personaId: opts.persona } : {}), ttlSeconds: Number(opts.ttlSeconds) }),
      );
      print(t);
    });

  withTarget(auth.command('revoke-token'))
    .description('deny-list a token (by --jti, or the token itself on stdin with --token-stdin) on every instance until it expires')
    .requiredOption('--tenant <tenant>', 'tenant of the token')
    .option('--jti <jti>', 'token id')
    .option('--token-stdin', 'read the token from standard input')
    .action(async (opts: AuthCliOptions & { tenant: string; jti?: string; tokenStdin?: boolean }) => {
      const token = opts.tokenStdin ? readFileSync(0, 'utf8').trim() : undefined;
      if (!opts.jti && !token) throw new Error('--jti or --token-stdin is required');
      print(await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) => c.revokeToken({ tenant: opts.tenant, ...(opts.jti ? { jti: opts.jti } : {}), ...(token ? { token } : {}) })));
    });

  withTarget(auth.command('revoke-subject'))
    .description('revoke every API key owned by --sub and every token issued to it before now, in one tenant')
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--sub <sub>', 'subject')
    .action(async (opts: AuthCliOptions & { tenant: string; sub: string }) => {
      print(await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) => c.revokeSubject(opts.tenant, opts.sub)));
    });
}

export function splitList(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
