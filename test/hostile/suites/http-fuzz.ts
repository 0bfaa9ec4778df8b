import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SERVICES } from '../../e2e/support/stack.js';
import type { HostileContext } from '../support/context.js';
import { allHttpRoutes, httpRaw, type HttpRoute, type RawResponse } from '../support/http.js';

const RUNS = Number(process.env['HOSTILE_FC_RUNS'] ?? 25);

/** A path segment: printable, unicode, traversal, encoded and raw-reserved characters. */
const segment = fc.oneof(
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom('..', '%2e%2e', '%2F', '%00', 'ak_', `ak_${'A'.repeat(64)}`, 'acme', '*', '%', '%ZZ', "'%20OR%201=1", '$(id)', 'a'.repeat(3000)),
);

const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ type: 'application/json', data: Buffer.from(JSON.stringify(v) ?? 'null') })),
  fc.dictionary(fc.constantFrom('username', 'password', 'name', 'scopes', 'expires_at', 'metadata', 'budget', 'rate_limit', 'grace_seconds', 'owner_sub', 'persona_id', 'external_id', '__proto__', 'constructor'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
    .map((v) => ({ type: 'application/json', data: Buffer.from(JSON.stringify(v)) })),
  fc.uint8Array({ maxLength: 300 }).map((b) => ({ type: 'application/json', data: Buffer.from(b) })),
  fc.string({ maxLength: 200 }).map((s) => ({ type: 'text/plain', data: Buffer.from(s) })),
  fc.constantFrom(
    { type: 'application/json', data: Buffer.from('{"a":') },
    { type: 'application/json', data: Buffer.from(`{"pad":"${'x'.repeat(300 * 1024)}"}`) },
    { type: 'application/json', data: Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`) },
    { type: 'application/json', data: Buffer.from('{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}') },
    { type: 'application/x-www-form-urlencoded', data: Buffer.from('username=operator&password[$ne]=x') },
    { type: 'application/json; charset=utf-16', data: Buffer.from('{}', 'utf16le') },
  ),
);

const query = fc.array(fc.tuple(fc.constantFrom('from', 'to', 'tenant', 'id', 'include_revoked', 'x', 'from[]', '__proto__'), fc.string({ maxLength: 30 })), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));

function isProblem(r: RawResponse): boolean {
  if (!String(r.headers['content-type']).startsWith('application/problem+json')) return false;
  try {
    const p = JSON.parse(r.body) as { status?: number; code?: string; title?: string };
    return p.status === r.status && typeof p.code === 'string' && typeof p.title === 'string';
  } catch {
    return false;
  }
}

/**
 * fast-check fuzzing of every HTTP endpoint of every service (routes found in the controllers): random path
 * parameters, query strings, credentials, bodies and content types, and the wrong methods. No 5xx, every error
 * a problem+json with the status it was sent with, every process alive.
 */
export function httpFuzzSuite(ctx: () => HostileContext): void {
  describe('HTTP endpoint fuzzing (fast-check)', () => {
    const routes = allHttpRoutes(SERVICES);
    const seen = new Map<number, number>();

    it('finds the routes of every service in the controllers', () => {
      const paths = new Set(routes.map((r) => `${r.method} ${r.path}`));
      for (const p of ['POST /v1/login', 'GET /.well-known/jwks.json', 'POST /v1/tenants/:tenant/api-keys', 'DELETE /v1/tenants/:tenant/api-keys/:id', 'GET /v1/audit/export', 'GET /v1/policies', 'GET /healthz', 'GET /readyz', 'GET /metrics']) expect(paths).toContain(p);
      expect(new Set(routes.map((r) => r.service)).size).toBe(5);
    });

    it('no 5xx and only problem+json errors, for every route under random input', async () => {
      const c = ctx();
      const exportKey = readFileSync(c.stack.get('audit').env['AUDIT_EXPORT_API_KEY_FILE']!, 'utf8').trim();
      const credentials = fc.constantFrom<string | undefined>(undefined, `Bearer ${c.stack.adminToken()}`, `Bearer ${exportKey}`, 'Bearer ', 'Basic YTpi', `Bearer ${'A'.repeat(9000)}`, 'Bearer sk-soma-00000000000000000000000000000000');
      const wrong: string[] = [];
      for (const route of routes) {
        const base = c.stack.get(route.service).httpUrl;
        await fc.assert(
          fc.asyncProperty(fc.array(segment, { minLength: 3, maxLength: 3 }), query, body, credentials, fc.boolean(), fc.integer({ min: 2, max: 250 }), async (segs, q, b, auth, wrongMethod, ip) => {
            let i = 0;
            const path = route.path.replace(/:[a-z_]+/g, () => segs[i++ % segs.length]!);
            const method = wrongMethod ? ({ GET: 'PUT', POST: 'PATCH', DELETE: 'POST', PUT: 'GET', PATCH: 'DELETE' } as const)[route.method] : route.method;
            const headers: Record<string, string> = { 'content-type': b.type, 'user-agent': 'soma-hostile-fuzz' };
            if (auth) headers['authorization'] = auth;
            const sendBody = method !== 'GET';
            const r = await httpRaw(base, { method, path: `${path}${q ? `?${q}` : ''}`, headers, ...(sendBody ? { body: b.data } : {}), localAddress: `127.0.0.${ip}` });
            seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
            if (r.status >= 400) c.error(r.body);
            if (r.status >= 500) wrong.push(`${route.service} ${method} ${path.slice(0, 80)}: ${r.status} ${r.body.slice(0, 160)}`);
            else if (r.status >= 400 && !isProblem(r)) wrong.push(`${route.service} ${method} ${path.slice(0, 80)}: ${r.status} not problem+json: ${r.body.slice(0, 120)}`);
          }),
          { numRuns: route.method === 'GET' && !route.path.includes(':') && !route.path.includes('export') ? Math.ceil(RUNS / 2) : RUNS },
        );
      }
      expect(wrong).toEqual([]);
    });

    it('path traversal, overlong URLs and header abuse on every service', async () => {
      const c = ctx();
      const wrong: string[] = [];
      for (const svc of SERVICES) {
        const base = c.stack.get(svc).httpUrl;
        const probes: Array<{ path: string; headers?: Record<string, string> }> = [
          { path: '/../../../../etc/passwd' }, { path: '/%2e%2e/%2e%2e/etc/passwd' }, { path: `/${'a'.repeat(7000)}` },
          { path: '/healthz', headers: { 'x-request-id': `${'\u00ff'.repeat(10)}${'r'.repeat(5000)}` } },
          { path: '/metrics', headers: { accept: '*/*'.repeat(1000) } },
        ];
        for (const p of probes) {
          const r = await httpRaw(base, { path: p.path, headers: p.headers ?? {} }).catch((e: Error) => ({ status: 0, headers: {}, body: e.message }) as RawResponse);
          seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
          if (r.status >= 500 || r.status === 0 && !/socket hang up|ECONNRESET|timeout/.test(r.body)) wrong.push(`${svc} ${p.path.slice(0, 40)}: ${r.status} ${r.body.slice(0, 120)}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('every service is still alive, and printed the status counts', async () => {
      for (const svc of SERVICES) {
        expect(ctx().stack.get(svc).alive(), svc).toBe(true);
        expect((await fetch(`${ctx().stack.get(svc).httpUrl}/healthz`)).status).toBe(200);
      }
      console.log(`[hostile] HTTP fuzz: ${routes.length} routes, status counts ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => a[0] - b[0])))}`);
      expect([...seen.keys()].every((s) => s < 500)).toBe(true);
    });
  });
}

export type { HttpRoute };
