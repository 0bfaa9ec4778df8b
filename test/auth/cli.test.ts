import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient } from '@soma/auth-client';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { REPO_ROOT } from '../support/infra.js';

/**
 * The operator CLI (`npx soma auth …`, `npx soma api-keys …`) built from source and run as a child
 * process (what `npx soma` runs) against an in-process auth instance on the real Redis and Kafka.
 */
const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('operator CLI: soma auth / soma api-keys', () => {
  let h: AuthHarness;
  let client: AuthClient;
  let operator = '';
  const tenant = `acme-${randomUUID().slice(0, 8)}`;

  async function soma(args: string[], opts: { credential?: string; stdin?: string } = {}): Promise<Run> {
    const env: Record<string, string | undefined> = { ...process.env, AUTH_GRPC_ADDRESS: h.grpcAddress, AUTH_HTTP_URL: h.httpUrl, SOMA_CREDENTIAL: opts.credential };
    if (opts.credential === undefined) delete env['SOMA_CREDENTIAL'];
    return new Promise((resolve) => {
      const child = execFile(process.execPath, ['bin/soma.js', ...args], { cwd: REPO_ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
      child.stdin?.end(opts.stdin ?? '');
    });
  }

  beforeAll(async () => {
    await exec('npx', ['tsc', '-p', 'apps/cli/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 300_000 });
    await exec('npx', ['tsc-alias', '-p', 'apps/cli/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 120_000 });
    h = await startAuthHarness();
    client = h.client();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('auth login --password-stdin prints a session JWT (the operator credential); a wrong password exits non-zero', async () => {
    const ok = await soma(['auth', 'login', '--password-stdin'], { stdin: `${h.password}\n` });
    expect(ok.code, ok.stderr).toBe(0);
    operator = ok.stdout.trim();
    await expect(client.authenticate(operator)).resolves.toMatchObject({ tenant: '*', scopes: ['auth:admin'] });
    const bad = await soma(['auth', 'login', '--password-stdin'], { stdin: 'not-the-password\n' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('BAD_CREDENTIALS');
    expect(bad.stderr).not.toContain('not-the-password');
  });

  it('api-keys create prints the key once; list shows it masked only', async () => {
    const created = await soma(['api-keys', 'create', '--tenant', tenant, '--name', 'ci', '--scopes', 'agents:run,tools:call', '--external-id', 'ext-9', '--meta', 'team=ml', '--budget', '100', '--rate-limit', '50/60'], { credential: operator });
    expect(created.code, created.stderr).toBe(0);
    const out = JSON.parse(created.stdout) as { key: string; api_key: { id: string; masked: string; budget: unknown; rate_limit: unknown } };
    expect(out.key).toMatch(/^sk-soma-[0-9A-Za-z]{32}$/);
    expect(out.api_key).toMatchObject({ rate_limit: { limit: 50, window_seconds: 60 } });
    const v = await client.verifyApiKey(out.key, { requiredScopes: ['tools:call'] });
    expect(v).toMatchObject({ result: 'VALID', principal: { tenant, scopes: ['agents:run', 'tools:call'] }, remaining: 99 });
    const listed = await soma(['api-keys', 'list', '--tenant', tenant], { credential: operator });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(out.api_key.id);
    expect(listed.stdout).toContain(`${out.key.slice(0, 8)}…${out.key.slice(-4)}`);
    expect(listed.stdout).not.toContain(out.key.slice(8, -4));
  });

  it('api-keys rotate --tenant rotates every active key; old keys work during the grace period; revoke stops one at once', async () => {
    const before = [await h.createApiKey({ tenant, name: 'one' }), await h.createApiKey({ tenant, name: 'two' })];
    const activeBefore = (await h.client({ adminCredential: operator }).listApiKeys(tenant)).length;
    const rotated = await soma(['api-keys', 'rotate', '--tenant', tenant, '--grace-seconds', '600'], { credential: operator });
    expect(rotated.code, rotated.stderr).toBe(0);
    const out = JSON.parse(rotated.stdout) as { rotated: Array<{ key: string; id: string; previous_id: string; previous_grace_until: string }> };
    expect(out.rotated).toHaveLength(activeBefore);
    expect(out.rotated.map((r) => r.previous_id)).toEqual(expect.arrayContaining(before.map((b) => b.id)));
    for (const r of out.rotated) expect((await client.verifyApiKey(r.key)).result).toBe('VALID');
    for (const b of before) expect((await client.verifyApiKey(b.key)).result).toBe('VALID'); // grace
    const revoke = await soma(['api-keys', 'revoke', '--tenant', tenant, before[0]!.id], { credential: operator });
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await client.verifyApiKey(before[0]!.key)).result).toBe('REVOKED');
    const one = await soma(['api-keys', 'rotate', '--tenant', tenant, '--id', out.rotated[0]!.id, '--grace-seconds', '0'], { credential: operator });
    expect(one.code, one.stderr).toBe(0);
    expect((JSON.parse(one.stdout) as { rotated: unknown[] }).rotated).toHaveLength(1);
  });

  it('auth rotate-signing-key: one command, new kid signs everywhere, tokens signed before keep verifying', async () => {
    const old = await h.issueToken({ tenant, sub: 'alice' });
    const oldKid = h.runtime.keyring.signingKey().kid;
    const r = await soma(['auth', 'rotate-signing-key'], { credential: operator });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { signing_key: { kid: string }; verification_keys: Array<{ kid: string; retire_at: string }> };
    expect(out.signing_key.kid).not.toBe(oldKid);
    expect(h.runtime.keyring.signingKey().kid).toBe(out.signing_key.kid);
    expect(out.verification_keys.find((k) => k.kid === oldKid)?.retire_at).not.toBe('');
    await expect(client.verifyToken(old.token)).resolves.toMatchObject({ sub: 'alice' });
    const fresh = await h.issueToken({ tenant, sub: 'bob' });
    expect(JSON.parse(Buffer.from(fresh.token.split('.')[0]!, 'base64url').toString()).kid).toBe(out.signing_key.kid);
    const list = await soma(['auth', 'signing-keys'], { credential: operator });
    expect(list.stdout).toMatch(new RegExp(`${out.signing_key.kid}\\tHS256\\tsigning`));
    expect(list.stdout).toMatch(new RegExp(`${oldKid}\\tHS256\\tverify-only`));
  });

  it('refuses without a credential, and with a credential lacking auth:admin for the tenant', async () => {
    const none = await soma(['api-keys', 'list', '--tenant', tenant]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/credential is required/);
    const tenantAdmin = (await h.issueToken({ tenant: 'globex', sub: 'eve', scopes: ['auth:admin'] })).token;
    const foreign = await soma(['api-keys', 'list', '--tenant', tenant], { credential: tenantAdmin });
    expect(foreign.code).not.toBe(0);
    expect(foreign.stderr).toMatch(/permission denied/);
    const rot = await soma(['auth', 'rotate-signing-key'], { credential: tenantAdmin });
    expect(rot.code).not.toBe(0);
    expect(rot.stderr).toMatch(/permission denied/);
  });
});
