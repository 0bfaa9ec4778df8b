import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { hs256KeyFor, jwtCorpus, type JwtAttack } from '../support/corpus.js';
import type { HostileContext } from '../support/context.js';
import { httpRaw } from '../support/http.js';

/**
 * The JWT attack corpus against the running processes: every forged token is presented to auth (VerifyToken,
 * Authenticate), and as the bearer credential of secrets, retention and auth's own admin API over gRPC and HTTP.
 * Every one is UNAUTHENTICATED (HTTP 401), none INTERNAL; the control token, signed the same way, is accepted.
 */
/** grpc-js's default bound on the metadata of one call (grpc.max_metadata_size). */
const METADATA_LIMIT = 8 * 1024;

export function jwtSuite(ctx: () => HostileContext): void {
  describe('JWT attack corpus over gRPC and HTTP', () => {
    let corpus: { valid: () => string; attacks: JwtAttack[] };

    it('builds a corpus whose control token (same key, same claims shape) is accepted by every service', async () => {
      const { stack } = ctx();
      const admin = stack.adminToken();
      const kid = JSON.parse(Buffer.from(admin.split('.')[0]!, 'base64url').toString()).kid as string;
      const jwtSecret = readFileSync(stack.get('auth').env['JWT_SECRET_FILE']!, 'utf8').trim();
      corpus = jwtCorpus({ kid, key: hs256KeyFor(jwtSecret, kid), tenant: '*', maxTokenBytes: 8192 });
      expect(corpus.attacks.length).toBeGreaterThan(60);
      const control = ctx().secret('control jwt', corpus.valid());
      const v = await stack.grpc('auth').call<{ principal: { sub: string } }>('VerifyToken', { token: control });
      expect(v.principal.sub).toBe('mallory');
      await stack.grpc('retention').call('ListPolicies', {}, { bearer: control });
      await stack.grpc('secrets').call('ListSecrets', { prefix: '' }, { bearer: control });
      for (const a of corpus.attacks) if (a.token.length >= 40) ctx().secret(`forged jwt: ${a.name}`, a.token);
    });

    it('rejects every attack on VerifyToken and Authenticate with UNAUTHENTICATED, never INTERNAL', async () => {
      const auth = ctx().stack.grpc('auth');
      const wrong: string[] = [];
      for (const a of corpus.attacks) {
        const methods = [['VerifyToken', { token: a.token }], ['Authenticate', { bearer: a.token, ip_address: '198.51.100.7', user_agent: 'hostile' }]] as const;
        // Authenticate takes a header value (`Bearer …` or the bare credential), which is trimmed like any header.
        for (const [method, req] of methods.filter(([m]) => !(m === 'Authenticate' && a.name.startsWith('leading space')))) {
          const e = await auth.fails(method, req);
          ctx().error(e.details);
          // An empty credential, or one past the request's size bound (64 KiB), is a malformed request, not a failed
          // authentication: INVALID_ARGUMENT is the clear answer there.
          const ok = e.code === status.UNAUTHENTICATED || ((a.token === '' || a.token.length > 65_536) && e.code === status.INVALID_ARGUMENT);
          if (!ok) wrong.push(`${method} ${a.name}: ${status[e.code]} ${e.details}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('rejects every attack as the bearer of secrets, retention and the auth admin API (gRPC), never INTERNAL', async () => {
      const { stack } = ctx();
      const calls = [
        ['secrets', 'ListSecrets', { prefix: '' }],
        ['secrets', 'GetSecret', { name: 'anything' }],
        ['retention', 'ListPolicies', {}],
        ['retention', 'GetConsent', { tenant: 'acme', user_id: 'alice', purpose: 'analytics' }],
        ['auth', 'ListApiKeys', { tenant: 'acme' }],
        ['auth', 'IssueToken', { tenant: 'acme', sub: 'mallory', scopes: ['auth:admin'] }],
      ] as const;
      const wrong: string[] = [];
      let oversizedRefused = 0;
      for (const a of corpus.attacks) {
        // Not representable as a metadata value, or trimmed like any header value (then it is the control token).
        if (a.token === '' || !/^[\x20-\x7e]*$/.test(a.token) || a.name.startsWith('leading space')) continue;
        for (const [svc, method, req] of calls) {
          const e = await stack.grpc(svc).fails(method, req, { bearer: a.token });
          ctx().error(e.details);
          if (a.token.length > METADATA_LIMIT) {
            // Past grpc-js's metadata bound the HTTP/2 layer resets the stream before any service code runs; the
            // client reports that as INTERNAL "RST_STREAM". Refused at the transport, never seen by the service.
            if (!(e.code === status.INTERNAL && /RST_STREAM/.test(e.details)) && e.code !== status.RESOURCE_EXHAUSTED && e.code !== status.UNAUTHENTICATED) wrong.push(`${svc}.${method} ${a.name}: ${status[e.code]} ${e.details}`);
            oversizedRefused++;
          } else if (e.code !== status.UNAUTHENTICATED) wrong.push(`${svc}.${method} ${a.name}: ${status[e.code]} ${e.details}`);
        }
      }
      expect(wrong).toEqual([]);
      console.log(`[hostile] JWT: ${corpus.attacks.length} attacks x ${calls.length} bearer calls; ${oversizedRefused} oversized metadata refused by the HTTP/2 layer`);
    });

    it('rejects every attack on the HTTP admin API with 401 problem+json', async () => {
      const auth = ctx().stack.get('auth');
      const wrong: string[] = [];
      for (const a of corpus.attacks) {
        if (!/^[\x21-\x7e]*$/.test(a.token) || a.token.length > 60_000) continue; // header-safe tokens only (the others are covered over gRPC)
        if (a.name.startsWith('leading space')) continue;
        const r = await httpRaw(`${auth.httpUrl}/v1/tenants/acme/api-keys`, { headers: { authorization: `Bearer ${a.token}` } });
        ctx().error(r.body);
        const problem = String(r.headers['content-type']).startsWith('application/problem+json');
        if (r.status !== 401 || !problem) wrong.push(`${a.name}: HTTP ${r.status} ${r.body.slice(0, 120)}`);
      }
      expect(wrong).toEqual([]);
    });

    it('the services are still alive afterwards', () => {
      for (const svc of ['auth', 'authz', 'secrets', 'audit', 'retention']) expect(ctx().stack.get(svc).alive(), svc).toBe(true);
    });
  });
}
