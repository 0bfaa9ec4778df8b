/**
 * End-to-end journeys (issue 8): every service as its own process (test/e2e/support/stack.ts) on the
 * real PostgreSQL, Redis, Kafka and OPA. One stack for the file; each journey uses its own users.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClientError } from '@soma/auth-client';
import { Topics } from '@soma/contracts';
import { TopicCollector } from '../support/kafka.js';
import { holdFaultLock } from './support/faults.js';
import { waitFor } from '../support/wait.js';
import { newTraceparent, startStack, uiLogin, type Stack } from './support/stack.js';

const run = randomBytes(4).toString('hex');
const TENANT = 'acme';
/** Platform credentials belong to the platform tenant, not to a customer's (SECRETS_TENANTS). */
const PLATFORM = 'platform';
const CLIENT_IP = '203.0.113.42';
const CLIENT_UA = `Mozilla/5.0 (soma-e2e ${run})`;

let stack: Stack;
let siem: TopicCollector;
let events: TopicCollector;
let serversUp: { release(): Promise<void> } | undefined;

beforeAll(async () => {
  // Shared: no fault test stops a server under the journeys (they judge the system, not outages).
  serversUp = await holdFaultLock({ timeoutMs: 900_000, shared: true });
  // Everything the stack's services publish and everything audit streams, from now on.
  const ours = (t: unknown) => t === TENANT || t === PLATFORM;
  events = await new TopicCollector(Topics.SecurityEvents, (m) => ours(m.json?.['tenant'])).start();
  siem = await new TopicCollector(Topics.SecurityAudit, (m) => ours((m.json?.['event'] as Record<string, unknown> | undefined)?.['tenant'])).start();
  stack = await startStack({ name: 'journeys' });
}, 1_200_000);

afterAll(async () => {
  await siem?.stop();
  await events?.stop();
  await stack?.stop();
  await serversUp?.release();
});

describe('the stack', () => {
  it('runs each of the five services as its own process on its own (non-default) ports', async () => {
    const pids = new Set<number | undefined>();
    for (const svc of ['auth', 'authz', 'secrets', 'audit', 'retention'] as const) {
      const i = stack.get(svc);
      expect(i.alive()).toBe(true);
      pids.add(i.child.pid);
      expect([20020, 20030, 20040, 20050, 20060]).not.toContain(i.grpcPort);
      const info = await stack.grpc(svc).call<Record<string, unknown>>('GetServiceInfo', {});
      expect(JSON.stringify(info)).toContain(`e2e-${stack.runId}-${svc}`);
    }
    expect(pids.size).toBe(5);
  });
});

describe('journey: UI login → JWT → Authenticate → authz → audited denial', () => {
  it('allows web_search, denies code_execution for acme; the denial is in audit_log with the client IP and agent and on security.audit with the request trace id', async () => {
    const user = `alice-${run}`;
    // The UI's auth instance: its password login issues session tokens of tenant acme.
    const ui = await stack.start('auth', { name: 'auth-ui', env: { AUTH_LOGIN_USERNAME: user, AUTH_LOGIN_TENANT: TENANT, AUTH_LOGIN_SCOPES: 'tools:use' } });
    const login = await uiLogin(ui, { username: user, password: stack.authPassword }, CLIENT_UA);
    expect(login.status).toBe(200);
    const jwt = String(login.json['access_token']);
    expect(jwt.split('.')).toHaveLength(3);

    // The gateway authenticates the client's request over gRPC and asks authz, all in the request's trace.
    const { traceparent, traceId } = newTraceparent();
    const principal = await stack.authClient('auth').authenticate(jwt, { traceparent, ipAddress: CLIENT_IP, userAgent: CLIENT_UA });
    expect(principal).toMatchObject({ sub: user, tenant: TENANT, method: 'jwt' });

    const authz = stack.grpc('authz');
    const who = { sub: principal.sub, tenant: principal.tenant, persona_id: 'default' };
    const client = { ip_address: CLIENT_IP, user_agent: CLIENT_UA };
    const allowed = await authz.call<{ allowed: boolean; reason: string }>('CheckTool', { tool: 'web_search', principal: who, ...client }, { traceparent });
    expect(allowed).toMatchObject({ allowed: true, reason: 'allowed' });
    const denied = await authz.call<{ allowed: boolean; reason: string; decision_id: string }>('CheckTool', { tool: 'code_execution', principal: who, ...client }, { traceparent });
    expect(denied).toMatchObject({ allowed: false, reason: 'policy_violation' });

    // audit_log: the row, in the request's trace.
    const [row] = await stack.waitForAuditRows({ tenant: TENANT, eventType: 'authorization_denied', details: { decision_id: denied.decision_id } });
    expect(row).toMatchObject({ service: 'authz', action: 'check_tool', resource: 'code_execution', outcome: 'denied', reason: 'policy_violation', trace_id: traceId });
    // The client's address and agent are stored encrypted per subject; audit's query reveals them for that user.
    const audit = stack.grpc('audit');
    const q = await audit.call<{ records: Array<Record<string, unknown>> }>('QueryEvents', { filter: { tenant: TENANT, user_id: user, event_type: 'authorization_denied' }, page_size: 10 });
    const record = q.records.find((r) => r['event_id'] === row!.event_id);
    expect(record).toMatchObject({ personal_revealed: true, user_id: user, ip_address: CLIENT_IP, user_agent: CLIENT_UA, trace_id: traceId });
    // The grant is not audited (AUTHZ_GRANTED_EVENTS=none), Authenticate is, in the same trace with the same client.
    const [authn] = await stack.waitForAuditRows({ tenant: TENANT, eventType: 'authentication_succeeded', traceId });
    const q2 = await audit.call<{ records: Array<Record<string, unknown>> }>('QueryEvents', { filter: { tenant: TENANT, user_id: user, event_type: 'authentication_succeeded' }, page_size: 10 });
    expect(q2.records.find((r) => r['event_id'] === authn!.event_id)).toMatchObject({ ip_address: CLIENT_IP, user_agent: CLIENT_UA });

    // security.audit (the SIEM stream): the same event, same trace id, with its chain position.
    const streamed = await waitFor(() => siem.messages.find((m) => (m.json?.['event'] as Record<string, unknown>)['id'] === row!.event_id), { timeoutMs: 30_000, what: 'denial on security.audit' });
    const siemRecord = streamed.json as { event: Record<string, unknown>; audit: Record<string, unknown> };
    expect(siemRecord.event).toMatchObject({ type: 'authorization_denied', tenant: TENANT, trace_id: traceId });
    expect([Number(siemRecord.audit['chain_partition']), String(siemRecord.audit['chain_seq'])]).toEqual([Number(row!.chain_partition), String(row!.chain_seq)]);
  });
});

describe('journey: API key lifecycle for acme across two auth instances', () => {
  it('creates, uses, rotates and revokes a key; every step audited; the revoked key fails on every auth instance', async () => {
    const second = stack.instances.get('auth-2') ?? (await stack.start('auth', { name: 'auth-2' }));
    const admin = stack.authClient('auth');
    const instances = [stack.authClient('auth'), stack.authClient(second.name)];
    const owner = `svc-${run}`;

    const created = await admin.createApiKey({ tenant: TENANT, name: `e2e ${run}`, owner_sub: owner, scopes: ['tools:use'] });
    expect(created.key).toMatch(/^sk-soma-/);
    const id = created.api_key.id;
    for (const c of instances) expect(await c.authenticate(created.key, { ipAddress: CLIENT_IP, userAgent: CLIENT_UA })).toMatchObject({ tenant: TENANT, sub: owner, method: 'api_key' });

    const rotated = await admin.rotateApiKey(TENANT, id, 600);
    expect(rotated.key).not.toBe(created.key);
    const newId = rotated.api_key.id;
    for (const c of instances) {
      expect(await c.authenticate(rotated.key)).toMatchObject({ tenant: TENANT, sub: owner });
      // Within the rotation grace the old key still works (clients switch over without an outage).
      expect(await c.authenticate(created.key)).toMatchObject({ tenant: TENANT, sub: owner });
    }

    // Revoking ends both at once, whatever the grace, on every instance (each one had them cached).
    await admin.revokeApiKey(TENANT, newId);
    await admin.revokeApiKey(TENANT, id);
    for (const c of instances) {
      for (const key of [rotated.key, created.key]) {
        await waitFor(() => c.authenticate(key).then(() => false, (e: AuthClientError) => e.code === status.UNAUTHENTICATED), { timeoutMs: 5000, what: 'revoked key refused' });
        // And it stays refused (no cache brings it back), as a bearer and through VerifyApiKey.
        for (let i = 0; i < 3; i++) await expect(c.authenticate(key)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
        expect((await c.verifyApiKey(key)).result).not.toBe('VALID');
      }
    }

    for (const [type, keyId] of [['api_key_created', id], ['api_key_rotated', id], ['api_key_revoked', newId], ['api_key_revoked', id]] as const) {
      const [r] = await stack.waitForAuditRows({ tenant: TENANT, eventType: type, resource: `api_key:${keyId}` });
      expect(r, `${type} of ${keyId} in audit_log`).toBeDefined();
      expect(r).toMatchObject({ outcome: 'success' });
    }
    // Use is audited too: successes of the key and failures of the revoked one.
    await stack.waitForAuditRows({ tenant: TENANT, eventType: 'authentication_succeeded', details: { credential_id: id } });
    const refusals = await stack.waitForAuditRows({ tenant: TENANT, eventType: 'authentication_failed' });
    expect(refusals.length).toBeGreaterThan(0);
    // No key in any event.
    const raw = events.messages.map((m) => m.value?.toString('utf8') ?? '').join('\n');
    expect(raw).not.toContain(created.key);
    expect(raw).not.toContain(rotated.key);
  });
});

describe('journey: a secret through write, read, refusal and key rotation', () => {
  it('is read by an allowed principal, refused to another, still readable after the key rotation; secret_accessed carries no value', async () => {
    const auth = stack.authClient('auth');
    const name = `e2e-${run}/openai`;
    const value = `sk-live-${randomBytes(24).toString('base64url')}`;
    const writer = (await auth.issueToken({ tenant: PLATFORM, sub: `writer-${run}`, scopes: ['secret:write'] })).token;
    const reader = (await auth.issueToken({ tenant: PLATFORM, sub: `reader-${run}`, scopes: [`secret:read:e2e-${run}/*`] })).token;
    const stranger = (await auth.issueToken({ tenant: PLATFORM, sub: `stranger-${run}`, scopes: ['secret:read:other/*'] })).token;
    const rotator = (await auth.issueToken({ tenant: PLATFORM, sub: `rotator-${run}`, scopes: ['secret:rotate'] })).token;

    let secrets = stack.grpc('secrets');
    const put = await secrets.call<{ created: boolean }>('PutSecret', { name, value }, { bearer: writer });
    expect(put.created).toBe(true);
    expect((await secrets.call<{ value: string }>('GetSecret', { name }, { bearer: reader })).value).toBe(value);
    const refused = await secrets.fails('GetSecret', { name }, { bearer: stranger });
    expect(refused.code).toBe(status.PERMISSION_DENIED);

    // Rotate: the new key first, the old one still listed for reading; restart; re-encrypt everything.
    const newKey = randomBytes(32).toString('base64url') + '=';
    const oldKey = stack.get('secrets').env['FERNET_KEY_FILE']!;
    const keyFile = join(stack.dir, 'secrets', 'secrets-rotated.fernet');
    writeFileSync(keyFile, `${newKey},${readFileSync(oldKey, 'utf8').trim()}`, { mode: 0o600 });
    await stack.kill('secrets', 'SIGTERM');
    await stack.restart('secrets', { FERNET_KEY_FILE: keyFile });
    secrets = stack.grpc('secrets');
    const rotation = await secrets.call<{ rotated: number; complete: boolean; unreadable: number }>('RotateEncryptionKey', {}, { bearer: rotator });
    expect(rotation).toMatchObject({ complete: true, unreadable: 0 });
    expect(rotation.rotated).toBeGreaterThanOrEqual(1);
    expect((await secrets.call<{ value: string }>('GetSecret', { name }, { bearer: reader })).value).toBe(value);

    // Only the new key is needed from now on.
    writeFileSync(keyFile, newKey, { mode: 0o600 });
    await stack.kill('secrets', 'SIGTERM');
    await stack.restart('secrets');
    secrets = stack.grpc('secrets');
    expect((await secrets.call<{ value: string }>('GetSecret', { name }, { bearer: reader })).value).toBe(value);

    const accessed = await stack.waitForAuditRows({ tenant: PLATFORM, eventType: 'secret_accessed', outcome: 'success' }, 3);
    const mine = accessed.filter((r) => r.resource?.includes(name));
    expect(mine.length).toBeGreaterThanOrEqual(3);
    const denials = await stack.waitForAuditRows({ tenant: PLATFORM, eventType: 'secret_access_denied' });
    expect(denials.some((r) => r.resource?.includes(name))).toBe(true);
    await stack.waitForAuditRows({ tenant: PLATFORM, eventType: 'secret_written' });
    // Neither the value nor a key appears in any event, stored row or captured log line.
    const { rows } = await stack.db.pool.query<{ doc: string }>("SELECT row_to_json(a)::text AS doc FROM audit_log a WHERE event_type LIKE 'secret%'");
    const everything = [rows.map((r) => r.doc).join('\n'), events.messages.map((m) => m.value?.toString('utf8') ?? '').join('\n'), siem.messages.map((m) => m.value?.toString('utf8') ?? '').join('\n'), stack.capturedText()].join('\n');
    for (const s of [value, newKey, ...stack.secretValues()]) expect(everything.includes(s), 'a secret in an event, row or log').toBe(false);
  });
});

describe('journey: GDPR export and erasure', () => {
  it('exports one user, erases them, and the audit chain still verifies', async () => {
    const auth = stack.authClient('auth');
    const user = `gdpr-${run}`;
    const other = `gdpr-other-${run}`;
    const pool = stack.db.pool;
    for (const u of [user, other]) {
      const s = await pool.query<{ id: string }>("INSERT INTO sessions (tenant, user_id, title) VALUES ($1, $2, 'chat') RETURNING id", [TENANT, u]);
      await pool.query("INSERT INTO messages (session_id, tenant, user_id, role, content) VALUES ($1, $2, $3, 'user', 'hello')", [s.rows[0]!.id, TENANT, u]);
    }
    // Security events about the user reach the audit log through the real pipeline.
    const own = await auth.issueToken({ tenant: TENANT, sub: user, scopes: [] });
    await auth.authenticate(own.token, { ipAddress: CLIENT_IP, userAgent: CLIENT_UA });
    await stack.authzClient().checkTool('code_execution', { sub: user, tenant: TENANT });
    const audit = stack.grpc('audit');
    const aboutUser = await waitFor(async () => {
      const r = await audit.call<{ records: Array<Record<string, unknown>> }>('QueryEvents', { filter: { tenant: TENANT, user_id: user }, page_size: 50 });
      return r.records.length >= 2 && r.records.every((x) => x['personal_revealed'] === true) ? r.records.map((x) => String(x['event_id'])) : null;
    }, { what: "the user's audit rows" });

    const dpo = (await auth.issueToken({ tenant: TENANT, sub: `dpo-${run}`, scopes: ['gdpr:export', 'gdpr:erase'] })).token;
    const retention = stack.grpc('retention');
    const exported = await retention.call<{ format: string; document_json: string; sha256: string }>('ExportUserData', { tenant: TENANT, user_id: user }, { bearer: dpo });
    const doc = JSON.parse(exported.document_json) as Record<string, unknown>;
    const text = exported.document_json;
    expect(text).toContain(user);
    expect(text).not.toContain(other);
    expect(text).toContain(CLIENT_IP); // the audit entries about the user, decrypted for the export
    expect(doc).toBeTypeOf('object');

    const erased = await retention.call<{ rows_deleted: Array<{ table: string; rows: string }>; audit_key_destroyed: boolean }>('EraseUserData', { tenant: TENANT, user_id: user, reason: 'gdpr art. 17 request' }, { bearer: dpo });
    expect(erased.audit_key_destroyed).toBe(true);
    expect(erased.rows_deleted.reduce((n, t) => n + Number(t.rows), 0)).toBeGreaterThanOrEqual(2);
    expect((await pool.query('SELECT count(*)::int AS n FROM messages WHERE user_id = $1', [user])).rows[0].n).toBe(0);
    expect((await pool.query('SELECT count(*)::int AS n FROM messages WHERE user_id = $1', [other])).rows[0].n).toBe(1);
    // The audit rows about the user stay (the chain needs them) but their key is gone: nothing is revealed.
    const after = await audit.call<{ records: Array<Record<string, unknown>> }>('QueryEvents', { filter: { tenant: TENANT, user_id: user }, page_size: 50 });
    const { rows: kept } = await pool.query<{ event_id: string }>('SELECT event_id::text FROM audit_log WHERE event_id::text = ANY($1::text[])', [aboutUser]);
    expect(kept).toHaveLength(aboutUser.length);
    expect(after.records.filter((r) => aboutUser.includes(String(r['event_id'])) && r['personal_revealed'] === true)).toEqual([]);
    // The user's credentials were revoked with the erasure.
    await expect(auth.authenticate(own.token)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    await stack.waitForAuditRows({ tenant: TENANT, eventType: 'data_erased' });
    await stack.waitForAuditRows({ tenant: TENANT, eventType: 'data_exported' });

    const verdict = await audit.call<{ intact: boolean; rows_checked: string }>('VerifyChain', {});
    expect(verdict.intact).toBe(true);
    expect(Number(verdict.rows_checked)).toBeGreaterThan(0);
  });
});
