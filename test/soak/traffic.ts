/**
 * The soak's mixed traffic: one operation per call across all five services, each with the outcome it deserves
 * (success, or a named refusal). Anything else is an undeserved error.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import type { CallError, GrpcCaller, Stack } from '../e2e/support/stack.js';

export interface OpResult {
  op: string;
  /** 'ok' or the gRPC/HTTP code name that came back. */
  outcome: string;
  deserved: boolean;
  detail?: string;
}

export interface Traffic {
  tenant: string;
  ops: Array<{ name: string; weight: number; run: () => Promise<OpResult> }>;
  /** Every secret/credential the traffic used. */
  secrets: string[];
}

const SCOPES = ['auth:admin', 'consent:read', 'consent:write', 'gdpr:export', 'audit:read'];

export async function prepareTraffic(stack: Stack): Promise<Traffic> {
  const tenant = `soak-${stack.runId}`;
  const admin = stack.adminToken();
  const auth = stack.grpc('auth');
  const issue = async (t: string, sub: string, scopes: string[]) => (await auth.call<{ token: string }>('IssueToken', { tenant: t, sub, scopes, ttl_seconds: 3600 }, { bearer: admin })).token;
  const tenantToken = await issue(tenant, 'soak-operator', SCOPES);
  const platform = await issue('*', 'soak-platform', ['secrets:admin']);
  const nobody = await issue('*', 'soak-nobody', []);
  const apiKey = (await auth.call<{ key: string }>('CreateApiKey', { tenant, name: 'soak', scopes: ['audit:read'] }, { bearer: admin })).key;
  const secretsClient = stack.grpc('secrets');
  const authz = stack.grpc('authz');
  const retention = stack.grpc('retention');
  const audit = stack.grpc('audit');
  const password = stack.authPassword;
  const exportKey = readFileSync(stack.get('audit').env['AUDIT_EXPORT_API_KEY_FILE']!, 'utf8').trim();
  const secretValues: string[] = [tenantToken, platform, nobody, apiKey];
  let n = 0;
  let verifying = false;

  /** Run a gRPC call whose deserved outcome is `expect` ('ok' or a status name). */
  const grpcOp = async (op: string, client: GrpcCaller, method: string, req: unknown, bearer: string | undefined, expect: 'ok' | keyof typeof status, check?: (res: Record<string, unknown>) => string | null): Promise<OpResult> => {
    try {
      const res = await client.call<Record<string, unknown>>(method, req, { ...(bearer ? { bearer } : {}), deadlineMs: 30_000 });
      const problem = check?.(res) ?? null;
      return { op, outcome: problem ? `ok-but-${problem}` : 'ok', deserved: expect === 'ok' && !problem, ...(problem ? { detail: problem } : {}) };
    } catch (e) {
      const err = e as CallError;
      const name = status[err.code] ?? String(err.code);
      return { op, outcome: name, deserved: name === expect, detail: err.details };
    }
  };

  const ops: Traffic['ops'] = [
    { name: 'auth.VerifyToken(valid)', weight: 3, run: () => grpcOp('auth.VerifyToken(valid)', auth, 'VerifyToken', { token: tenantToken }, undefined, 'ok') },
    { name: 'auth.Authenticate(forged)', weight: 2, run: () => grpcOp('auth.Authenticate(forged)', auth, 'Authenticate', { bearer: `eyJhbGciOiJIUzI1NiJ9.e30.${randomBytes(32).toString('base64url')}`, ip_address: '198.51.100.23', user_agent: 'soak' }, undefined, 'UNAUTHENTICATED') },
    { name: 'auth.VerifyApiKey', weight: 2, run: () => grpcOp('auth.VerifyApiKey', auth, 'VerifyApiKey', { key: apiKey }, undefined, 'ok', (r) => (r['result'] === 'VALID' ? null : `result ${String(r['result'])}`)) },
    {
      name: 'auth.CreateApiKey', weight: 1, run: async () => {
        const r = await grpcOp('auth.CreateApiKey', auth, 'CreateApiKey', { tenant, name: `soak-${n++}`, scopes: [] }, admin, 'ok', (res) => {
          secretValues.push(String(res['key']));
          return null;
        });
        return r;
      },
    },
    {
      name: 'auth.login(http)', weight: 1, run: async () => {
        const res = await fetch(`${stack.get('auth').httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'soak' }, body: JSON.stringify({ username: 'operator', password }) });
        const body = (await res.json()) as { access_token?: string };
        if (body.access_token) secretValues.push(body.access_token);
        return { op: 'auth.login(http)', outcome: String(res.status), deserved: res.status === 200 };
      },
    },
    { name: 'authz.CheckTool(allowed)', weight: 3, run: () => grpcOp('authz.CheckTool(allowed)', authz, 'CheckTool', { tool: 'web_search', principal: { sub: 'alice', tenant: 'acme', persona_id: 'default' } }, undefined, 'ok', (r) => (r['allowed'] === true ? null : 'denied')) },
    { name: 'authz.CheckTool(denied)', weight: 2, run: () => grpcOp('authz.CheckTool(denied)', authz, 'CheckTool', { tool: 'code_execution', principal: { sub: 'alice', tenant: 'acme', persona_id: 'default' } }, undefined, 'ok', (r) => (r['allowed'] === false ? null : 'allowed')) },
    {
      name: 'secrets.Put+Get', weight: 2, run: async () => {
        const name = `soak-${n++ % 50}`;
        const value = `v-${randomBytes(12).toString('hex')}`;
        secretValues.push(value);
        const put = await grpcOp('secrets.Put+Get', secretsClient, 'PutSecret', { name, value }, platform, 'ok');
        if (!put.deserved) return put;
        return grpcOp('secrets.Put+Get', secretsClient, 'GetSecret', { name }, platform, 'ok', (r) => (r['value'] === value ? null : 'wrong value'));
      },
    },
    { name: 'secrets.Get(no scope)', weight: 1, run: () => grpcOp('secrets.Get(no scope)', secretsClient, 'GetSecret', { name: 'soak-0' }, nobody, 'PERMISSION_DENIED') },
    { name: 'retention.RecordConsent', weight: 1, run: () => grpcOp('retention.RecordConsent', retention, 'RecordConsent', { tenant, user_id: `user-${n++ % 20}`, purpose: 'analytics', granted: n % 2 === 0, source: 'soak', policy_version: 'v1' }, tenantToken, 'ok') },
    { name: 'retention.GetConsent', weight: 1, run: () => grpcOp('retention.GetConsent', retention, 'GetConsent', { tenant, user_id: 'user-1', purpose: '', include_history: false }, tenantToken, 'ok') },
    // audit over gRPC with the static export credential (VerifyChain of the last minute; a JWT would add audit's fixed
    // 2 s auth deadline, which a loaded shared machine exceeds): audit also ingests every event above.
    // A chain verification reads whole chains (its cost grows with the log): at most one at a time, as an operator would.
    {
      name: 'audit.VerifyChain', weight: 1, run: async () => {
        if (verifying) return { op: 'audit.VerifyChain', outcome: 'not-sent(one in progress)', deserved: true };
        verifying = true;
        try {
          return await grpcOp('audit.VerifyChain', audit, 'VerifyChain', { from: new Date(Date.now() - 60_000).toISOString(), to: new Date().toISOString() }, exportKey, 'ok', (r) => (r['intact'] === true ? null : 'chain broken'));
        } finally {
          verifying = false;
        }
      },
    },
    {
      name: 'audit.export(http)', weight: 1, run: async () => {
        const from = new Date(Date.now() - 60_000).toISOString();
        const res = await fetch(`${stack.get('audit').httpUrl}/v1/audit/export?from=${encodeURIComponent(from)}&to=${encodeURIComponent(new Date().toISOString())}&tenant=${encodeURIComponent(tenant)}`, { headers: { authorization: `Bearer ${exportKey}` } });
        const body = await res.text();
        const lines = body.split('\n').filter(Boolean);
        const ok = res.status === 200 && lines.every((l) => (JSON.parse(l) as { tenant?: string }).tenant === tenant);
        return { op: 'audit.export(http)', outcome: String(res.status), deserved: ok, ...(ok ? {} : { detail: body.slice(0, 200) }) };
      },
    },
  ];
  return { tenant, ops, secrets: secretValues };
}

/** Resident set size (bytes) of a process, from /proc. */
export function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
