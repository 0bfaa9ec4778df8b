import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Topics } from '@soma/contracts';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { auditService } from '../../apps/audit/src/audit.service-definition.js';
import type { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { freePort } from '../support/ports.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { auditClient, auditEnv, event, EventProducer, exportApiKey, freshGroupAtEnd, TestDatabase } from './audit-harness.js';

interface VerifyWire {
  intact: boolean;
  rows_checked: string;
  checkpoints_checked: string;
  broken: { chain_partition: number; chain_seq: string; row_id: string; reason: string; detail: string } | null;
}
interface RecordWire {
  id: string;
  event_id: string;
  tenant: string;
  user_pseudonym: string;
  ip_network: string;
  personal_revealed: boolean;
  user_id: string;
  ip_address: string;
  user_agent: string;
  details_json: string;
  chain_partition: number;
  chain_seq: string;
}

const db = new TestDatabase();
const producer = new EventProducer();
const tenant = `it-${randomUUID()}`;
let service: StartedService<AuditConfig>;
let auth: AuthHarness;
/** A real JWT for every tenant with audit:admin (read, verify, export). */
let auditor = '';
let client: ReturnType<typeof auditClient>;
let httpUrl = '';
let dlq: TopicCollector;
let siem: TopicCollector;
const N = 600;

beforeAll(async () => {
  auth = await startAuthHarness();
  auditor = (await auth.issueToken({ tenant: '*', sub: 'auditor', scopes: ['audit:admin'] })).token;
  await db.create();
  await producer.connect();
  const group = await freshGroupAtEnd();
  const ports = { grpc: await freePort(), http: await freePort() };
  dlq = await new TopicCollector(Topics.SecurityEventsDlq, (m) => m.key === tenant).start();
  siem = await new TopicCollector(Topics.SecurityAudit, (m) => m.key === tenant).start();
  service = await startSomaService(auditService, auditEnv(db, group, ports, { AUTH_GRPC_ADDRESS: auth.grpcAddress }));
  client = auditClient(`127.0.0.1:${ports.grpc}`, auditor);
  httpUrl = `http://127.0.0.1:${ports.http}`;
  const valid = Array.from({ length: N }, (_, i) =>
    JSON.stringify(event(tenant, { actor: { user_id: i % 3 === 0 ? 'alice' : `user-${i % 7}`, ip_address: i % 2 ? '203.0.113.7' : '2001:db8:abcd:12::1', user_agent: 'curl/8.0' }, details: { i } })),
  );
  const dup = valid[5]!;
  const invalid = ['{not json', JSON.stringify({ ...event(tenant), type: 'made_up_event' }), JSON.stringify({ ...event(tenant), details: { x: 'nul\u0000here' } })];
  await producer.send(tenant, [...valid.slice(0, 300), invalid[0]!, dup, ...valid.slice(300), invalid[1]!, invalid[2]!, dup]);
  await waitFor(async () => (await db.count(tenant)) >= N, { timeoutMs: 60_000, what: 'all events stored' });
});

afterAll(async () => {
  client?.close();
  await service?.stop();
  await auth?.stop();
  await Promise.all([dlq?.stop(), siem?.stop(), producer.disconnect()]);
  await db.drop();
});

describe('audit ingest (real Kafka + PostgreSQL)', () => {
  it('stores every valid event exactly once, pseudonymised, with IP networks only', async () => {
    expect(await db.count(tenant)).toBe(N);
    const { rows } = await db.pool.query<{ d: string }>('SELECT count(DISTINCT event_id) AS d FROM audit_log WHERE tenant = $1', [tenant]);
    expect(Number(rows[0]!.d)).toBe(N);
    const sample = await db.pool.query<{ user_id: string; ip: string; pii: Buffer }>('SELECT user_id, host(ip_address) || \'/\' || masklen(ip_address) AS ip, pii FROM audit_log WHERE tenant = $1 LIMIT 50', [tenant]);
    for (const r of sample.rows) {
      expect(r.user_id).toMatch(/^[0-9a-f]{64}$/);
      expect(['203.0.113.0/24', '2001:db8:abcd::/48']).toContain(r.ip);
      expect(r.pii.toString('utf8')).not.toContain('alice');
    }
  });

  it('sends invalid events to the DLQ with the reason and the original bytes, without blocking the partition', async () => {
    await waitFor(() => dlq.messages.length >= 3, { what: 'three DLQ messages' });
    const reasons = dlq.messages.map((m) => m.headers['soma-dlq-reason']?.toString() ?? '');
    expect(reasons.some((r) => r.includes('not valid JSON'))).toBe(true);
    expect(reasons.some((r) => r.includes('unknown event type'))).toBe(true);
    expect(reasons.some((r) => r.includes('NUL'))).toBe(true);
    expect(dlq.messages.map((m) => m.value?.toString('utf8'))).toContain('{not json');
  });

  it('streams each stored record once to security.audit, in chain order per partition', async () => {
    // The topic is shared: another audit deployment running at the same time (a parallel test run, a bench)
    // may ingest these events into its own database and stream them too. Ours are the records whose hash is
    // in our log. A consumer that rejoins its group re-reads from where it started: the same offset read
    // twice is one message on the topic. What the SIEM must not see is one chain position at two offsets.
    const ours = new Set((await db.pool.query<{ h: string }>("SELECT encode(hash, 'hex') AS h FROM audit_log WHERE tenant = $1", [tenant])).rows.map((r) => r.h));
    const onTopic = () =>
      [...new Map(siem.messages.filter((m) => ours.has((m.json as { audit: { hash: string } }).audit.hash)).map((m) => [`${m.partition}:${m.offset}`, m])).values()].sort((a, b) =>
        Number(BigInt(a.offset) - BigInt(b.offset)),
      );
    await waitFor(() => onTopic().length >= N, { timeoutMs: 60_000, what: 'SIEM records' });
    const messages = onTopic();
    expect(messages.length).toBe(N);
    const seqs = messages.map((m) => (m.json as { audit: { chain_seq: number; chain_partition: number } }).audit);
    expect(new Set(seqs.map((s) => `${s.chain_partition}:${s.chain_seq}`)).size).toBe(N);
    const partitions = new Set(seqs.map((s) => s.chain_partition));
    expect(partitions.size).toBe(1); // one tenant = one key = one partition
    const ordered = seqs.map((s) => s.chain_seq);
    expect(ordered).toEqual([...ordered].sort((a, b) => a - b));
    const first = messages[0]!.json as { schema: string; event: { actor: { user_id: string; user_agent: null } } };
    expect(first.schema).toBe('soma.audit.record/v1');
    expect(first.event.actor.user_id).toMatch(/^[0-9a-f]{64}$/);
    expect(first.event.actor.user_agent).toBeNull();
  });

  it('answers QueryEvents newest first with cursor pages, reveals personal fields only to a query by user, counts', async () => {
    const seen = new Set<string>();
    let token = '';
    let pages = 0;
    let lastTs = '9999';
    do {
      const res = await client.call<{ records: Array<RecordWire & { timestamp: string }>; next_page_token: string }>('QueryEvents', { filter: { tenant }, page_size: 250, page_token: token });
      for (const r of res.records) {
        expect(r.timestamp <= lastTs).toBe(true);
        lastTs = r.timestamp;
        expect(r.personal_revealed).toBe(false);
        seen.add(r.event_id);
      }
      token = res.next_page_token;
      pages += 1;
    } while (token);
    expect(seen.size).toBe(N);
    expect(pages).toBe(3);

    const alice = await client.call<{ records: RecordWire[] }>('QueryEvents', { filter: { tenant, user_id: 'alice' }, page_size: 1000 });
    expect(alice.records.length).toBe(N / 3);
    expect(alice.records.every((r) => r.personal_revealed && r.user_id === 'alice' && r.user_agent === 'curl/8.0')).toBe(true);
    expect(alice.records.some((r) => r.ip_address === '203.0.113.7')).toBe(true);

    const count = await client.call<{ count: string }>('CountEvents', { filter: { tenant, user_id: 'alice' } });
    expect(Number(count.count)).toBe(N / 3);
    await expect(client.call('QueryEvents', { filter: { user_id: 'alice' } })).rejects.toMatchObject({ code: 3 });
    await expect(client.call('QueryEvents', { filter: { tenant }, page_token: 'forged' })).rejects.toMatchObject({ code: 3 });
  });

  it('exports a time range as NDJSON to a bearer of the export key only', async () => {
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const url = `${httpUrl}/v1/audit/export?from=${from}&to=${to}&tenant=${encodeURIComponent(tenant)}`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong-key-wrong-key-wrong-key-wrong' } })).status).toBe(401);
    const res = await fetch(url, { headers: { authorization: `Bearer ${exportApiKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { tenant: string; personal: unknown });
    expect(lines.length).toBe(N);
    expect(lines.every((l) => l.tenant === tenant && l.personal === null)).toBe(true);
  });

  it('erasure deletes the subject key: rows become unreadable and unlinkable, the chain still verifies', async () => {
    await db.pool.query('DELETE FROM audit_subject_keys WHERE tenant = $1 AND user_id = $2', [tenant, 'alice']);
    const alice = await client.call<{ records: RecordWire[] }>('QueryEvents', { filter: { tenant, user_id: 'alice' } });
    expect(alice.records).toEqual([]);
    const all = await client.call<{ records: RecordWire[] }>('QueryEvents', { filter: { tenant }, page_size: 1000 });
    expect(all.records.length).toBeGreaterThan(0);
    expect(all.records.every((r) => !r.personal_revealed)).toBe(true);
    expect((await client.call<VerifyWire>('VerifyChain', {})).intact).toBe(true);
  });

  it('VerifyChain is intact, then names a row altered by SQL, then detects a deleted tail via the checkpoint', async () => {
    await waitFor(async () => Number((await db.pool.query('SELECT count(*) AS n FROM audit_checkpoints')).rows[0].n) > 0, { what: 'a checkpoint' });
    const ok = await client.call<VerifyWire>('VerifyChain', {});
    expect(ok.intact).toBe(true);
    expect(Number(ok.rows_checked)).toBeGreaterThanOrEqual(N);

    const victim = (await db.pool.query<{ id: string; details: unknown }>("SELECT id, details FROM audit_log WHERE tenant = $1 ORDER BY chain_seq LIMIT 1 OFFSET 17", [tenant])).rows[0]!;
    await db.pool.query(`UPDATE audit_log SET details = '{"i": -1}' WHERE id = $1`, [victim.id]);
    const altered = await client.call<VerifyWire>('VerifyChain', {});
    expect(altered.intact).toBe(false);
    expect(altered.broken).toMatchObject({ row_id: victim.id, reason: 'HASH_MISMATCH' });
    await db.pool.query('UPDATE audit_log SET details = $2 WHERE id = $1', [victim.id, JSON.stringify(victim.details)]);
    expect((await client.call<VerifyWire>('VerifyChain', {})).intact).toBe(true);

    // Stop ingest so the chain stays still, make sure a checkpoint covers its head, then cut the tail and rewind the head.
    await service.stop();
    const chain = (await db.pool.query<{ chain_partition: number }>('SELECT chain_partition FROM audit_log WHERE tenant = $1 LIMIT 1', [tenant])).rows[0]!.chain_partition;
    const head = (await db.pool.query<{ last_seq: string }>('SELECT last_seq FROM audit_chain_heads WHERE chain_partition = $1', [chain])).rows[0]!;
    const cp = (await db.pool.query<{ s: string }>('SELECT max(chain_seq) AS s FROM audit_checkpoints WHERE chain_partition = $1', [chain])).rows[0]!;
    expect(Number(cp.s)).toBeGreaterThan(10);
    const keep = Number(cp.s) - 5;
    await db.pool.query('DELETE FROM audit_log WHERE chain_partition = $1 AND chain_seq > $2', [chain, keep]);
    await db.pool.query('UPDATE audit_chain_heads SET last_seq = $2, last_hash = (SELECT hash FROM audit_log WHERE chain_partition = $1 AND chain_seq = $2) WHERE chain_partition = $1', [chain, keep]);
    const ports = { grpc: await freePort(), http: await freePort() };
    service = await startSomaService(auditService, auditEnv(db, await freshGroupAtEnd(), ports, { AUDIT_CHECKPOINT_INTERVAL_MS: '3600000', AUTH_GRPC_ADDRESS: auth.grpcAddress }));
    client.close();
    client = auditClient(`127.0.0.1:${ports.grpc}`, auditor);
    const cut = await client.call<VerifyWire>('VerifyChain', {});
    expect(cut.intact).toBe(false);
    expect(cut.broken?.reason).toBe('CHECKPOINT_ROW_MISSING');
    expect(Number(cut.broken?.chain_seq)).toBeGreaterThan(keep);
    expect(Number(head.last_seq)).toBeGreaterThan(keep);
  });

  it('the writer role may only INSERT and SELECT; the trigger refuses UPDATE/DELETE to non-retention roles', async () => {
    const role = `audit_it_writer_${randomUUID().slice(0, 8)}`;
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'it-writer-password-123' IN ROLE audit_writer`);
    const u = new URL(db.url);
    u.username = role;
    u.password = 'it-writer-password-123';
    const w = new pg.Client({ connectionString: u.toString() });
    await w.connect();
    try {
      expect(Number((await w.query('SELECT count(*) AS n FROM audit_log WHERE tenant = $1', [tenant])).rows[0].n)).toBeGreaterThan(0);
      await expect(w.query("UPDATE audit_log SET tenant = 'x' WHERE tenant = $1", [tenant])).rejects.toThrow(/permission denied/);
      await expect(w.query('DELETE FROM audit_log WHERE tenant = $1', [tenant])).rejects.toThrow(/permission denied/);
      await expect(w.query('TRUNCATE audit_log')).rejects.toThrow(/permission denied|append-only/);
    } finally {
      await w.end();
      await db.pool.query(`DROP ROLE ${role}`);
    }
  });

  it('the trigger refuses UPDATE/DELETE even with table privileges, except to a member of audit_retention', async () => {
    const suffix = randomUUID().slice(0, 8);
    const rogue = `audit_it_rogue_${suffix}`;
    const retention = `audit_it_retention_${suffix}`;
    const password = 'it-role-password-123';
    // A role that was (wrongly) granted UPDATE/DELETE on every partition: only the trigger stands in the way.
    await db.pool.query(`CREATE ROLE ${rogue} LOGIN PASSWORD '${password}' IN ROLE audit_writer`);
    await db.pool.query(`CREATE ROLE ${retention} LOGIN PASSWORD '${password}' IN ROLE audit_retention`);
    const parts = (await db.pool.query<{ p: string }>("SELECT c.relname AS p FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_log'::regclass")).rows.map((r) => r.p);
    for (const t of ['audit_log', ...parts]) await db.pool.query(`GRANT UPDATE, DELETE ON ${t} TO ${rogue}`);
    const connect = async (role: string) => {
      const u = new URL(db.url);
      u.username = role;
      u.password = password;
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      return c;
    };
    const victim = (await db.pool.query<{ id: string }>('SELECT id FROM audit_log WHERE tenant = $1 ORDER BY chain_seq DESC LIMIT 1', [tenant])).rows[0]!;
    const r = await connect(rogue);
    try {
      await expect(r.query("UPDATE audit_log SET reason = 'rewritten' WHERE id = $1", [victim.id])).rejects.toThrow(/append-only: UPDATE refused/);
      await expect(r.query('DELETE FROM audit_log WHERE id = $1', [victim.id])).rejects.toThrow(/append-only: DELETE refused/);
    } finally {
      await r.end();
    }
    expect((await db.pool.query('SELECT 1 FROM audit_log WHERE id = $1', [victim.id])).rowCount).toBe(1);
    const ret = await connect(retention);
    try {
      expect((await ret.query('DELETE FROM audit_log WHERE id = $1', [victim.id])).rowCount).toBe(1);
    } finally {
      await ret.end();
      for (const t of ['audit_log', ...parts]) await db.pool.query(`REVOKE ALL ON ${t} FROM ${rogue}`);
      await db.pool.query(`DROP ROLE ${rogue}`);
      await db.pool.query(`DROP ROLE ${retention}`);
    }
    expect((await db.pool.query('SELECT 1 FROM audit_log WHERE id = $1', [victim.id])).rowCount).toBe(0);
  });

});
