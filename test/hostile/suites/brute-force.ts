import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ServiceInstance } from '../../e2e/support/stack.js';
import type { HostileContext } from '../support/context.js';
import { httpRaw } from '../support/http.js';

const MAX_PER_ACCOUNT = 5;
const MAX_PER_IP = 10;
/** 127.0.0.11, 127.0.0.21-25 and 127.0.0.50 send wrong passwords. */
const ATTACKING_ADDRESSES = 7;

/**
 * Password brute force against the running auth process, from real distinct source addresses (127.0.0.x, so the
 * service sees different client IPs without trusting any header): one IP against one account, many IPs against
 * one account, one IP against many accounts. Each auth instance here has its own Redis prefix, so the lockouts
 * cannot touch the stack's operator account.
 */
export function bruteForceSuite(ctx: () => HostileContext): void {
  describe('login brute force', () => {
    const instances: Record<'a' | 'b' | 'c', ServiceInstance | undefined> = { a: undefined, b: undefined, c: undefined };
    let victim = '';
    const login = async (i: ServiceInstance, ip: string, username: string, password: string) => {
      const r = await httpRaw(`${i.httpUrl}/v1/login`, { method: 'POST', localAddress: ip, headers: { 'content-type': 'application/json', 'user-agent': 'soma-hostile-bruteforce' }, body: JSON.stringify({ username, password }) });
      if (r.status >= 400) ctx().error(r.body);
      const json = JSON.parse(r.body) as { code?: string; access_token?: string };
      if (json.access_token) ctx().secret(`login token ${username}@${ip}`, json.access_token);
      return { status: r.status, code: json.code };
    };
    const wrongPassword = () => ctx().secret(`wrong password ${randomBytes(3).toString('hex')}`, `guess-${randomBytes(12).toString('base64url')}`);

    it('starts three auth instances with lockout after 5 failures per account and 10 per IP', async () => {
      const { stack } = ctx();
      victim = `victim-${stack.runId}`;
      const env = (k: string) => ({
        AUTH_REDIS_PREFIX: `e2e:${stack.runId}:bf-${k}:`,
        AUTH_LOGIN_USERNAME: victim,
        LOGIN_MAX_FAILURES_PER_ACCOUNT: String(MAX_PER_ACCOUNT),
        LOGIN_MAX_FAILURES_PER_IP: String(MAX_PER_IP),
        LOGIN_LOCKOUT_SECONDS: '900',
        LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
      });
      const [a, b, c] = await Promise.all((['a', 'b', 'c'] as const).map((k) => stack.start('auth', { name: `auth-bf-${k}`, env: env(k) })));
      Object.assign(instances, { a, b, c });
      // Control: the right password works before any attack.
      expect((await login(a!, '127.0.0.10', victim, stack.authPassword)).status).toBe(200);
    });

    it('one IP against one account: locked after 5 failures, then even the right password is refused from any IP', async () => {
      const i = instances.a!;
      const statuses: number[] = [];
      for (let n = 0; n < MAX_PER_ACCOUNT; n++) statuses.push((await login(i, '127.0.0.11', victim, wrongPassword())).status);
      expect(statuses).toEqual(Array(MAX_PER_ACCOUNT).fill(401));
      expect(await login(i, '127.0.0.11', victim, ctx().stack.authPassword)).toEqual({ status: 429, code: 'LOGIN_LOCKED' });
      expect(await login(i, '127.0.0.12', victim, ctx().stack.authPassword)).toEqual({ status: 429, code: 'LOGIN_LOCKED' });
      // The locked answer is the same for a wrong password: it does not tell which one was right.
      expect(await login(i, '127.0.0.12', victim, wrongPassword())).toEqual({ status: 429, code: 'LOGIN_LOCKED' });
    });

    it('many IPs against one account: the account lock holds whatever address the attempts come from', async () => {
      const i = instances.b!;
      for (let n = 0; n < MAX_PER_ACCOUNT; n++) expect((await login(i, `127.0.0.${21 + n}`, victim, wrongPassword())).status).toBe(401);
      expect(await login(i, '127.0.0.40', victim, ctx().stack.authPassword)).toEqual({ status: 429, code: 'LOGIN_LOCKED' });
    });

    it('one IP against many accounts: that IP is locked after 10 failures, other IPs still log in', async () => {
      const i = instances.c!;
      for (let n = 0; n < MAX_PER_IP; n++) expect((await login(i, '127.0.0.50', `spray-${n}`, wrongPassword())).status).toBe(401);
      expect(await login(i, '127.0.0.50', victim, ctx().stack.authPassword)).toEqual({ status: 429, code: 'LOGIN_LOCKED' });
      expect((await login(i, '127.0.0.51', victim, ctx().stack.authPassword)).status).toBe(200);
    });

    it('each lockout is a login_locked security event in audit_log, and every refused attempt an authentication_failed event', async () => {
      const { stack } = ctx();
      const rows = await stack.waitForAuditRows({ eventType: 'login_locked' }, 3, 60_000);
      const accounts = rows.map((r) => String(r.details['account']));
      expect(accounts.filter((a) => a === victim).length).toBeGreaterThanOrEqual(2);
      expect(accounts.some((a) => a.startsWith('spray-'))).toBe(true);
      const failed = await stack.auditRows({ eventType: 'authentication_failed' });
      const why = (r: (typeof failed)[number]) => `${r.reason ?? ''} ${JSON.stringify(r.details)}`;
      expect(failed.filter((r) => /locked/.test(why(r))).length).toBeGreaterThanOrEqual(1);
      // Failure events are aggregated per reason, tenant and client address in a window (auth-events), so how many
      // rows the attempts on a locked account make depends on the windows: at least one; at least one per attacking address.
      expect(failed.filter((r) => /bad_password/.test(why(r))).length).toBeGreaterThanOrEqual(ATTACKING_ADDRESSES);
      for (const k of ['a', 'b', 'c'] as const) expect(instances[k]!.alive()).toBe(true);
    });
  });
}
