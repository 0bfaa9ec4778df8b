/**
 * Fault tests (issue 8): the suite as child processes (test/e2e/support/stack.ts) while the shared servers
 * are stopped and started (test/e2e/support/faults.ts: infra/local down|up under the fault lock, restart in
 * finally) and audit instances are killed. None may lose a security event or leave the system wrong.
 * docs/testing.md says what each test proves and which guarantees hold.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClientError } from '@soma/auth-client';
import { waitFor } from '../support/wait.js';
import { sleep, withServerDown } from './support/faults.js';
import { startStack, uiLogin, type ServiceName, type Stack } from './support/stack.js';

const run = randomBytes(4).toString('hex');
/** Lock-taking tests may first wait for others' runs holding the fault lock (shared), then restart a server. */
const FAULT_TIMEOUT_MS = 1_500_000;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ name: 'faults' });
});

afterAll(async () => {
  await stack?.stop();
});

const jtiOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as { jti: string }).jti;

/** Every id in `jtis` stored exactly once as a token_issued row of `tenant`, and nothing else of that tenant. */
async function expectExactlyOnce(tenant: string, jtis: string[], timeoutMs = 240_000): Promise<void> {
  const count = async () => {
    const { rows } = await stack.db.pool.query<{ n: number; d: number; j: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d, count(DISTINCT details->>'jti')::int AS j FROM audit_log WHERE tenant = $1 AND event_type = 'token_issued'",
      [tenant],
    );
    return rows[0]!;
  };
  await waitFor(async () => (await count()).n >= jtis.length, { timeoutMs, intervalMs: 500, what: `${jtis.length} token_issued rows of ${tenant} (have ${(await count().catch(() => ({ n: '?' }))).n})` });
  // A late duplicate would show up now: give redeliveries a moment.
  await sleep(3000);
  expect(await count()).toEqual({ n: jtis.length, d: jtis.length, j: jtis.length });
  const { rows } = await stack.db.pool.query<{ jti: string }>("SELECT details->>'jti' AS jti FROM audit_log WHERE tenant = $1 AND event_type = 'token_issued'", [tenant]);
  expect(new Set(rows.map((r) => r.jti))).toEqual(new Set(jtis));
}

/** Issue tokens of `tenant` at a steady pace until `stop()` resolves; returns the jtis (each one event). */
function tokenLoad(tenant: string, concurrency = 8): { stop(): Promise<string[]>; issued(): number } {
  const auth = stack.authClient('auth');
  const jtis: string[] = [];
  let running = true;
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      // A refused issuance (UNAVAILABLE: Redis slow or away on a loaded machine) issues nothing and emits nothing.
      const t = await auth.issueToken({ tenant, sub: `load-${w}-${i}`, scopes: [] }).catch((e: AuthClientError) => {
        if (e.code !== status.UNAVAILABLE) throw e;
        return null;
      });
      if (t) jtis.push(t.jti);
      else await sleep(200);
    }
  };
  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  return {
    issued: () => jtis.length,
    async stop() {
      running = false;
      await Promise.all(workers);
      return jtis;
    },
  };
}

async function verifyChain(): Promise<void> {
  const verdict = await waitFor(() => stack.grpc('audit').call<{ intact: boolean; rows_checked: string }>('VerifyChain', {}), { what: 'VerifyChain', timeoutMs: 60_000 });
  expect(verdict.intact).toBe(true);
}

describe('faults', () => {
  describe('a service started with a missing or weak secret refuses to start (exit 78, names the variable, never the value)', () => {
    const weak = 'Xq7-weak';
    const cases: Array<{ service: ServiceName; variable: string; env: Record<string, string | undefined> }> = [
      { service: 'auth', variable: 'JWT_SECRET', env: { JWT_SECRET_FILE: undefined, JWT_SECRET: weak } },
      { service: 'auth', variable: 'AUTH_PASSWORD', env: { AUTH_PASSWORD_FILE: undefined, AUTH_PASSWORD: weak } },
      { service: 'audit', variable: 'AUDIT_KEK', env: { AUDIT_KEK_FILE: undefined } },
      { service: 'audit', variable: 'AUDIT_KEK', env: { AUDIT_KEK_FILE: undefined, AUDIT_KEK: weak } },
      { service: 'secrets', variable: 'FERNET_KEY', env: { FERNET_KEY_FILE: undefined } },
      { service: 'secrets', variable: 'FERNET_KEY', env: { FERNET_KEY_FILE: undefined, FERNET_KEY: weak } },
      { service: 'retention', variable: 'AUDIT_KEK', env: { AUDIT_KEK_FILE: undefined, AUDIT_KEK: weak } },
    ];
    for (const c of cases) {
      const what = c.env[c.variable] === undefined ? 'missing' : 'weak';
      it(`${c.service}: ${what} ${c.variable}`, async () => {
        const r = await stack.runToExit(c.service, c.env);
        expect(r.code).toBe(78);
        expect(r.stderr).toContain(c.variable);
        expect(r.stderr).toMatch(/cannot start/);
        if (what === 'weak') expect(`${r.stdout}${r.stderr}`).not.toContain(c.env[c.variable]!);
      });
    }
  });

  it('an audit instance killed with SIGKILL mid-stream under load loses nothing and duplicates nothing', async () => {
    const tenant = `audit-kill-${run}`;
    const load = tokenLoad(tenant);
    await waitFor(() => load.issued() > 300, { what: 'load running', timeoutMs: 60_000 });
    await stack.waitForAuditRows({ tenant, eventType: 'token_issued' }, 50);
    const exit = await stack.kill('audit', 'SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    await sleep(2000);
    await stack.restart('audit');
    await waitFor(() => load.issued() > 1500, { what: 'more load after the restart', timeoutMs: 120_000 });
    const jtis = await load.stop();
    await expectExactlyOnce(tenant, jtis);
    await verifyChain();
  }, FAULT_TIMEOUT_MS);

  it('Kafka stopped for 30 s while auth serves logins: every buffered event reaches audit_log once', async () => {
    const tenant = `kafka-outage-${run}`;
    const user = `user-${run}`;
    const ui = await stack.start('auth', { name: 'auth-kafka', env: { AUTH_LOGIN_USERNAME: user, AUTH_LOGIN_TENANT: tenant, AUTH_LOGIN_SCOPES: 'tools:use' } });
    const jtis: string[] = [];
    const login = async () => {
      const r = await uiLogin(ui, { username: user, password: stack.authPassword }, 'fault-kafka');
      expect(r.status).toBe(200);
      jtis.push(jtiOf(String(r.json['access_token'])));
    };
    await login();
    await withServerDown('kafka', async () => {
      const until = Date.now() + 30_000;
      while (Date.now() < until) {
        await login();
        await sleep(100);
      }
      // The events are on disk in auth's buffer, not lost, while the broker is away.
      const metrics = await (await fetch(`${ui.httpUrl}/metrics`)).text();
      const depth = Number(/^soma_event_buffer_depth(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 'NaN');
      expect(depth).toBeGreaterThan(0);
    });
    await login();
    expect(jtis.length).toBeGreaterThan(50);
    await expectExactlyOnce(tenant, jtis);
    expect(ui.alive()).toBe(true);
  }, FAULT_TIMEOUT_MS);

  it('Redis restarted: revocations and lockouts still hold afterwards; auth fails closed meanwhile', async () => {
    const tenant = `redis-restart-${run}`;
    const user = `locked-${run}`;
    const lockEnv = { AUTH_LOGIN_USERNAME: user, AUTH_LOGIN_TENANT: tenant, AUTH_LOGIN_SCOPES: 'tools:use', LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '1000', LOGIN_LOCKOUT_SECONDS: '3600' };
    const ui = await stack.start('auth', { name: 'auth-redis', env: lockEnv });
    const admin = stack.authClient('auth');
    const clients = [stack.authClient('auth'), stack.authClient(ui.name)];

    const token = await admin.issueToken({ tenant, sub: `revoked-${run}`, scopes: [] });
    const key = await admin.createApiKey({ tenant, name: 'to revoke', owner_sub: `svc-${run}`, scopes: [] });
    const keeper = await admin.issueToken({ tenant, sub: `kept-${run}`, scopes: [] });
    for (const c of clients) await c.authenticate(token.token); // cached everywhere before the revocation
    await admin.revokeToken({ tenant, jti: token.jti });
    await admin.revokeApiKey(tenant, key.api_key.id);
    for (let i = 0; i < 3; i++) expect((await uiLogin(ui, { username: user, password: `wrong-${i}-password` })).status).toBe(401);
    expect((await uiLogin(ui, { username: user, password: stack.authPassword })).json['code']).toBe('LOGIN_LOCKED');

    const refused = async (credential: string) => {
      for (const c of clients) {
        const e = await c.authenticate(credential).then(() => null, (x: AuthClientError) => x);
        expect(e?.code).toBe(status.UNAUTHENTICATED);
      }
    };
    await withServerDown(
      'redis',
      async () => {
        // Fail closed: nothing is verified against a deny-list that cannot be read.
        await waitFor(async () => (await clients[0]!.authenticate(keeper.token).then(() => null, (x: AuthClientError) => x))?.code === status.UNAVAILABLE, { what: 'UNAVAILABLE while Redis is down', timeoutMs: 30_000 });
        for (const credential of [token.token, key.key]) {
          const e = await clients[0]!.authenticate(credential).then(() => null, (x: AuthClientError) => x);
          expect(e?.code === status.UNAVAILABLE || e?.code === status.UNAUTHENTICATED).toBe(true);
        }
        const login = await uiLogin(ui, { username: user, password: stack.authPassword });
        expect(login.status).not.toBe(200);
      },
      async () => {
        // Both instances resync (their invalidation channel reconnects) before the assertions below.
        await waitFor(async () => (await clients[0]!.authenticate(keeper.token).then(() => true, () => false)) && (await clients[1]!.authenticate(keeper.token).then(() => true, () => false)), { what: 'auth answering again', timeoutMs: 60_000 });
      },
    );
    // After the restart (AOF): the revoked token and key stay refused on every instance, the lockout holds.
    await refused(token.token);
    await refused(key.key);
    const locked = await uiLogin(ui, { username: user, password: stack.authPassword });
    expect([locked.status, locked.json['code']]).toEqual([429, 'LOGIN_LOCKED']);
    // And what was valid still is.
    for (const c of clients) expect(await c.authenticate(keeper.token)).toMatchObject({ tenant });
  }, FAULT_TIMEOUT_MS);

  it('OPA stopped: authz denies with policy_unavailable; started again: allows without restarting authz', async () => {
    const authz = stack.authzClient();
    const who = { sub: `opa-${run}`, tenant: 'acme' };
    const pid = stack.get('authz').child.pid;
    expect(await authz.checkTool('web_search', who)).toMatchObject({ allowed: true, reason: 'allowed' });
    await withServerDown(
      'opa',
      async () => {
        const d = await waitFor(async () => {
          const x = await authz.checkTool('web_search', who);
          return x.allowed ? null : x;
        }, { what: 'deny while OPA is down', timeoutMs: 30_000 });
        expect(d).toMatchObject({ allowed: false, reason: 'policy_unavailable' });
        // Audited with its reason.
        const [row] = await stack.waitForAuditRows({ tenant: 'acme', eventType: 'authorization_denied', details: { decision_id: d.decision_id } });
        expect(row).toMatchObject({ reason: 'policy_unavailable', resource: 'web_search' });
      },
      async () => {
        await waitFor(async () => (await authz.checkTool('web_search', who)).allowed, { what: 'allowed again after OPA is back', timeoutMs: 60_000 });
      },
    );
    expect(await authz.checkTool('web_search', who)).toMatchObject({ allowed: true, reason: 'allowed' });
    expect(await authz.checkTool('code_execution', who)).toMatchObject({ allowed: false, reason: 'policy_violation' });
    expect(stack.get('authz').child.pid).toBe(pid);
    expect(stack.get('authz').alive()).toBe(true);
  }, FAULT_TIMEOUT_MS);

});
