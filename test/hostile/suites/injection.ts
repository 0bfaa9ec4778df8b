import { existsSync, rmSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { CallError } from '../../e2e/support/stack.js';
import { waitFor } from '../../support/wait.js';
import { INJECTION_STRINGS, PWNED_FILE } from '../support/corpus.js';
import { SERVER_FAILURE_CODES, type HostileContext } from '../support/context.js';

type Outcome = { stored: string[]; rejected: string[]; wrong: string[] };

/**
 * SQL-injection and shell-metacharacter strings in every string field that reaches storage or a query: each is
 * either stored and read back byte for byte, or refused with INVALID_ARGUMENT, and nothing ran (the tables are
 * intact, no file appeared, the audit rows carry the strings literally).
 */
export function injectionSuite(ctx: () => HostileContext): void {
  describe('SQL-injection and shell-metacharacter strings are stored or rejected literally', () => {
    const outcome: Outcome = { stored: [], rejected: [], wrong: [] };
    const tables = ['audit_log', 'audit_event_ids', 'audit_chain_heads', 'consent_records', 'sessions', 'messages'];
    let before: Record<string, number> = {};

    /** Run `write(s)`; a failure must be INVALID_ARGUMENT, a success must read back `s` exactly. */
    async function literally(field: string, write: (s: string) => Promise<unknown>, readBack: (s: string, written: unknown) => Promise<unknown>, alsoRefusedWith: status[] = []): Promise<void> {
      for (const s of INJECTION_STRINGS) {
        let written: unknown;
        try {
          written = await write(s);
        } catch (e) {
          const err = e as CallError;
          ctx().error(err.details ?? String(e));
          if (err.code === status.INVALID_ARGUMENT || alsoRefusedWith.includes(err.code)) outcome.rejected.push(`${field} ${JSON.stringify(s)}`);
          else outcome.wrong.push(`${field} ${JSON.stringify(s)}: ${SERVER_FAILURE_CODES.has(err.code) ? 'SERVER FAILURE ' : ''}${status[err.code] ?? ''} ${err.details ?? err.message}`);
          continue;
        }
        const got = await readBack(s, written);
        if (got === s) outcome.stored.push(`${field} ${JSON.stringify(s)}`);
        else outcome.wrong.push(`${field} ${JSON.stringify(s)}: read back ${JSON.stringify(got)}`);
      }
    }

    it('records the state the strings could harm', async () => {
      rmSync(PWNED_FILE, { force: true });
      const pool = ctx().stack.db.pool;
      before = {};
      for (const t of tables) before[t] = Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
      expect(Object.keys(before)).toHaveLength(tables.length);
    });

    it('secrets: names, values, references and list prefixes', async () => {
      const mark = outcome.wrong.length;
      const { stack } = ctx();
      const s = stack.grpc('secrets');
      const admin = ctx().credentialFor('secrets');
      let n = 0;
      await literally('secret value', async (v) => {
        const name = `inj-${n++}`;
        await s.call('PutSecret', { name, value: ctx().secret(`secret value ${name}`, `${v}-${'k'.repeat(8)}${n}`) }, { bearer: admin });
        return name;
      }, async (v, name) => ((await s.call<{ value: string }>('GetSecret', { name }, { bearer: admin })).value === `${v}-${'k'.repeat(8)}${n}` ? v : 'mismatch'));
      await literally('secret name', async (v) => s.call('PutSecret', { name: v, value: 'x-literal-value' }, { bearer: admin }), async (v) => (await s.call<{ value: string }>('GetSecret', { name: v }, { bearer: admin })).value === 'x-literal-value' ? v : 'mismatch');
      await literally('secret reference', async (v) => s.call('PutSecret', { name: `ref-${n++}`, reference: v }, { bearer: admin }), async () => 'a reference that is not vault:// or file:// was accepted');
      await literally('list prefix', async (v) => s.call<{ secrets: unknown[] }>('ListSecrets', { prefix: v }, { bearer: admin }), async (v, out) => ((out as { secrets: unknown[] }).secrets.length === 0 ? v : 'listed something'));
      expect(outcome.wrong.slice(mark)).toEqual([]);
    });

    it('auth: API key name, owner, external id, persona, scopes and metadata; token subjects', async () => {
      const mark = outcome.wrong.length;
      const { stack, tenant } = ctx();
      const a = stack.grpc('auth');
      const admin = stack.adminToken();
      type Key = { key: string; api_key: { id: string; name: string; owner_sub: string; external_id: string; persona_id: string; scopes: string[]; metadata: Record<string, string> } };
      const create = async (over: Record<string, unknown>) => {
        const out = await a.call<Key>('CreateApiKey', { tenant, name: 'k', scopes: ['audit:read'], ...over }, { bearer: admin });
        ctx().secret(`api key ${out.api_key.id}`, out.key);
        return out;
      };
      const listed = async (id: string) => (await a.call<{ api_keys: Key['api_key'][] }>('ListApiKeys', { tenant }, { bearer: admin })).api_keys.find((k) => k.id === id);
      await literally('api key name', (v) => create({ name: v }), async (_v, out) => (await listed((out as Key).api_key.id))?.name);
      await literally('api key owner_sub', (v) => create({ owner_sub: v }), async (_v, out) => (await listed((out as Key).api_key.id))?.owner_sub);
      await literally('api key external_id', (v) => create({ external_id: v }), async (_v, out) => (await listed((out as Key).api_key.id))?.external_id);
      await literally('api key persona_id', (v) => create({ persona_id: v }), async (_v, out) => (await listed((out as Key).api_key.id))?.persona_id);
      await literally('api key scope', (v) => create({ scopes: [v] }), async (_v, out) => (await listed((out as Key).api_key.id))?.scopes[0]);
      await literally('api key metadata value', (v) => create({ metadata: { note: v } }), async (_v, out) => (await listed((out as Key).api_key.id))?.metadata['note']);
      await literally('api key tenant', (v) => a.call('ListApiKeys', { tenant: v }, { bearer: admin }), async (v, out) => ((out as { api_keys: unknown[] }).api_keys.length === 0 ? v : 'listed keys'));
      await literally('token sub', async (v) => {
        const t = await a.call<{ token: string }>('IssueToken', { tenant, sub: v, scopes: [] }, { bearer: admin });
        return ctx().secret(`token for ${v}`, t.token);
      }, async (_v, token) => (await a.call<{ principal: { sub: string } }>('VerifyToken', { token: token as string })).principal.sub);
      expect(outcome.wrong.slice(mark)).toEqual([]);
    });

    it('retention: consent purposes, sources, policy versions and user ids; export and erasure subjects', async () => {
      const mark = outcome.wrong.length;
      const { stack, tenant } = ctx();
      const r = stack.grpc('retention');
      const admin = ctx().power;
      type Consent = { current: Array<{ purpose: string; source: string; policy_version: string; user_id: string }> };
      const get = (user: string, purpose: string) => r.call<Consent>('GetConsent', { tenant, user_id: user, purpose, include_history: false }, { bearer: admin });
      await literally('consent purpose', (v) => r.call('RecordConsent', { tenant, user_id: 'inj-user', purpose: v, granted: true, source: 'hostile', policy_version: 'v1' }, { bearer: admin }), async (v) => (await get('inj-user', v)).current[0]?.purpose);
      await literally('consent source', (v) => r.call('RecordConsent', { tenant, user_id: 'inj-user-src', purpose: `src-${INJECTION_STRINGS.indexOf(v)}`, granted: true, source: v, policy_version: 'v1' }, { bearer: admin }), async (v) => (await get('inj-user-src', `src-${INJECTION_STRINGS.indexOf(v)}`)).current[0]?.source);
      await literally('consent policy_version', (v) => r.call('RecordConsent', { tenant, user_id: 'inj-user-pv', purpose: `pv-${INJECTION_STRINGS.indexOf(v)}`, granted: false, source: 'hostile', policy_version: v }, { bearer: admin }), async (v) => (await get('inj-user-pv', `pv-${INJECTION_STRINGS.indexOf(v)}`)).current[0]?.policy_version);
      await literally('consent user_id', (v) => r.call('RecordConsent', { tenant, user_id: v, purpose: 'analytics', granted: true, source: 'hostile', policy_version: 'v1' }, { bearer: admin }), async (v) => (await get(v, 'analytics')).current[0]?.user_id);
      await literally('export user_id', (v) => r.call<{ document_json: string }>('ExportUserData', { tenant, user_id: v }, { bearer: admin }), async (v, out) => (JSON.stringify(JSON.parse((out as { document_json: string }).document_json)).includes(JSON.stringify(v).slice(1, -1)) ? v : 'subject not in the export'));
      await literally('erase reason', (v) => r.call('EraseUserData', { tenant, user_id: `erase-${INJECTION_STRINGS.indexOf(v)}`, reason: v }, { bearer: admin }), async (v) => v);
      expect(outcome.wrong.slice(mark)).toEqual([]);
    });

    it('audit and authz: query filters, tools, tuples and policy paths', async () => {
      const mark = outcome.wrong.length;
      const { stack } = ctx();
      const audit = stack.grpc('audit');
      const bearer = ctx().credentialFor('audit');
      const authz = stack.grpc('authz');
      for (const field of ['tenant', 'event_type', 'user_id', 'outcome', 'from']) {
        // A tenant filter outside the credential's tenant is refused before any query (PERMISSION_DENIED).
        // A user_id filter matches exactly the events whose subject is literally that string (the GDPR calls and tokens above).
        await literally(`audit filter ${field}`, (v) => audit.call<{ records: Array<{ user_id: string; personal_revealed: boolean; event_type: string }> }>('QueryEvents', { filter: { [field]: v }, page_size: 10 }, { bearer }), async (v, out) => {
          const records = (out as { records: Array<{ user_id: string; personal_revealed: boolean; event_type: string }> }).records;
          if (records.length === 0) return v;
          // Had the string been interpreted ("x' OR '1'='1"), the page would be full of other subjects' rows.
          const literal = field === 'user_id' && records.length < 10 && records.every((r) => !r.personal_revealed || r.user_id === v);
          return literal ? v : `matched ${records.length} rows`;
        }, [status.PERMISSION_DENIED]);
      }
      await literally('audit page_token', (v) => audit.call('QueryEvents', { filter: {}, page_size: 10, page_token: v }, { bearer }), async () => 'a forged page token was accepted');
      // The strings must not change a decision: each gets the answer a plain value of the same field gets.
      const principal = (tenant: string) => ({ sub: 'mallory', tenant, persona_id: 'default' });
      const baselineTool = (await authz.call<{ allowed: boolean }>('CheckTool', { tool: 'no_such_tool', principal: principal('acme') })).allowed;
      const baselineTenant = (await authz.call<{ allowed: boolean }>('CheckTool', { tool: 'code_execution', principal: principal('plain-tenant') })).allowed;
      await literally('authz tool', (v) => authz.call<{ allowed: boolean }>('CheckTool', { tool: v, principal: principal('acme') }), async (v, out) => ((out as { allowed: boolean }).allowed === baselineTool ? v : 'decision changed'));
      await literally('authz tenant', (v) => authz.call<{ allowed: boolean }>('CheckTool', { tool: 'code_execution', principal: principal(v) }), async (v, out) => ((out as { allowed: boolean }).allowed === baselineTenant ? v : 'decision changed'));
      await literally('authz policy path', (v) => authz.call('Evaluate', { path: v, input_json: '{}' }), async () => 'an injected policy path was evaluated');
      await literally('authz input_json', (v) => authz.call('Evaluate', { path: 'tool_policy/allow', input_json: v }), async (v) => {
        try {
          JSON.parse(v);
          return v; // valid JSON is legitimately evaluated as data
        } catch {
          return 'non-JSON input was evaluated';
        }
      });
      expect(outcome.wrong.slice(mark)).toEqual([]);
    });

    it('nothing ran: tables intact, no file created, audit rows hold the strings literally', async () => {
      const { stack, tenant } = ctx();
      const pool = stack.db.pool;
      for (const t of tables) {
        const n = Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
        if (t === 'sessions' || t === 'messages') expect(n, t).toBe(before[t]);
        else expect(n, t).toBeGreaterThanOrEqual(before[t]!);
      }
      expect(existsSync(PWNED_FILE)).toBe(false);
      // Consent fields reach audit_log.details through Kafka and the audit ingest: byte for byte.
      const missing = async (eventType: string, field: string, wanted: string[]) => {
        const rows = await stack.auditRows({ tenant, eventType });
        const have = new Set(rows.map((r) => r.details[field]));
        return wanted.filter((s) => !have.has(s));
      };
      const storedAs = (label: string) => INJECTION_STRINGS.filter((s) => outcome.stored.includes(`${label} ${JSON.stringify(s)}`));
      const consent: Array<[string, string[]]> = [['purpose', storedAs('consent purpose')], ['source', storedAs('consent source')], ['policy_version', storedAs('consent policy_version')]];
      expect(consent.reduce((n, [, v]) => n + v.length, 0)).toBeGreaterThan(10);
      for (const [field, wanted] of consent) {
        await waitFor(async () => (await missing('consent_changed', field, wanted)).length === 0, { timeoutMs: 60_000, what: `consent ${field} in audit_log` }).catch(() => undefined);
        expect(await missing('consent_changed', field, wanted), field).toEqual([]);
      }
      // API key names reach audit_log.details the same way.
      const names = INJECTION_STRINGS.filter((s) => outcome.stored.includes(`api key name ${JSON.stringify(s)}`));
      expect(names.length).toBeGreaterThan(10);
      await waitFor(async () => (await missing('api_key_created', 'name', names)).length === 0, { timeoutMs: 60_000, what: 'api key names in audit_log' }).catch(() => undefined);
      expect(await missing('api_key_created', 'name', names)).toEqual([]);
      const byField = (list: string[]) => Object.entries(list.reduce<Record<string, number>>((m, e) => ({ ...m, [e.slice(0, e.indexOf(' "'))]: (m[e.slice(0, e.indexOf(' "'))] ?? 0) + 1 }), {})).map(([k, n]) => `${k}=${n}`).join(', ');
      console.log(`[hostile] injection stored: ${byField(outcome.stored)}`);
      console.log(`[hostile] injection rejected: ${byField(outcome.rejected)}`);
      console.log(`[hostile] injection: ${outcome.stored.length} stored literally, ${outcome.rejected.length} rejected with INVALID_ARGUMENT, ${outcome.wrong.length} wrong`);
      expect(outcome.wrong).toEqual([]);
    });
  });
}
