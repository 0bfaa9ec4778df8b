import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { Topics } from '@soma/contracts';
import { KAFKA_BROKERS } from '../support/infra.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { auditClient, auditEnv, buildAudit, chainPositionOf, eventBatch, EventProducer, exited, freshGroupAtEnd, spawnAudit, TestDatabase } from './audit-harness.js';

// The 100,000 events; AUDIT_IT_EVENTS lowers it on a slow machine.
const TOTAL = Number(process.env['AUDIT_IT_EVENTS'] ?? 100_000);
const prefix = `eo-${randomUUID().slice(0, 8)}`;
const tenants = Array.from({ length: 6 }, (_, i) => `${prefix}-t${i}`);
const db = new TestDatabase();
const producer = new EventProducer();
const children: Array<Awaited<ReturnType<typeof spawnAudit>>> = [];

async function stored(): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_log WHERE tenant LIKE $1', [`${prefix}-%`]);
  return Number(rows[0]!.n);
}

async function distinctStored(): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>('SELECT count(DISTINCT event_id) AS n FROM audit_log WHERE tenant LIKE $1', [`${prefix}-%`]);
  return Number(rows[0]!.n);
}

/**
 * What a SIEM sees on security.audit for our tenants: chain positions (`audit.chain_partition:chain_seq`) by offset, read
 * like a SIEM reads (read_committed), from the topic's end at start. Only positions are kept: 100k messages.
 */
class SiemPositions {
  private consumer: Consumer | undefined;
  readonly byOffset = new Map<string, string>();

  async start(keyPrefix: string): Promise<this> {
    const kafka = new Kafka({ clientId: 'soma-eo-siem', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(Topics.SecurityAudit);
    await admin.disconnect();
    const consumer = kafka.consumer({ groupId: `soma-eo-siem-${randomUUID()}`, sessionTimeout: 10_000 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: Topics.SecurityAudit, fromBeginning: false });
    let joined!: () => void;
    const ready = new Promise<void>((r) => (joined = r));
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const { partition, offset } of ends) consumer.seek({ topic: Topics.SecurityAudit, partition, offset });
      joined();
    });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (!m.key?.toString('utf8').startsWith(keyPrefix)) continue;
          this.byOffset.set(`${batch.partition}:${m.offset}`, chainPositionOf(m.value));
        }
      },
    });
    await ready;
    return this;
  }

  stop(): Promise<void> {
    return this.consumer?.disconnect() ?? Promise.resolve();
  }
}

beforeAll(async () => {
  await Promise.all([buildAudit(), db.create(), producer.connect()]);
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map(exited));
  await producer.disconnect();
  await db.drop();
});

describe('exactly once under SIGKILL and rebalances (child processes, real Kafka + PostgreSQL)', () => {
  it(`${TOTAL} events, one instance SIGKILLed mid-stream and restarted → exactly ${TOTAL} rows, chain intact, each once on security.audit`, { timeout: 600_000 }, async () => {
    const group = await freshGroupAtEnd();
    const grpcPort = await freePort();
    const env = auditEnv(db, group, { grpc: grpcPort, http: await freePort() });
    const siem = await new SiemPositions().start(`${prefix}-t`);
    const first = await spawnAudit(env);
    children.push(first);
    const batches = eventBatch(tenants, TOTAL);
    const sending = Promise.all([...batches].map(([t, values]) => producer.send(t, values, 2000)));
    await waitFor(async () => (await stored()) >= TOTAL * 0.3, { timeoutMs: 240_000, intervalMs: 50, what: `30% stored (${first.output()})` });
    first.kill('SIGKILL');
    await exited(first);
    const killedAt = await stored();
    expect(killedAt).toBeLessThan(TOTAL);
    const second = await spawnAudit(env);
    children.push(second);
    await sending;
    await waitFor(async () => (await stored()) >= TOTAL, { timeoutMs: 400_000, intervalMs: 200, what: `all stored (${second.output()})` });
    expect(await stored()).toBe(TOTAL);
    expect(await distinctStored()).toBe(TOTAL);
    const client = auditClient(`127.0.0.1:${grpcPort}`);
    try {
      const verify = await waitFor(() => client.call<{ intact: boolean; rows_checked: string }>('VerifyChain', {}), { what: 'VerifyChain' });
      expect(verify).toMatchObject({ intact: true });
      expect(Number(verify.rows_checked)).toBeGreaterThanOrEqual(TOTAL);
      // The SIEM saw every stored event once, across the kill (a page the killed instance left in an open
      // Kafka transaction was aborted when the restarted one fenced it, and published again by it).
      await waitFor(() => siem.byOffset.size >= TOTAL, { timeoutMs: 240_000, intervalMs: 500, what: `all on security.audit (${siem.byOffset.size})` });
      await new Promise((r) => setTimeout(r, 3000)); // a duplicate would be on the topic by now
      const positions = [...siem.byOffset.values()];
      expect(positions).toHaveLength(TOTAL);
      expect(new Set(positions).size).toBe(TOTAL);
    } finally {
      client.close();
      await siem.stop();
    }
    second.kill('SIGTERM');
    await exited(second);
  });

  it('two instances side by side: one joins mid-stream, the other leaves → every event exactly once, chain intact', { timeout: 600_000 }, async () => {
    const count = Math.max(10_000, Math.floor(TOTAL / 4));
    const prefix2 = `${prefix}-rb`;
    const tenants2 = Array.from({ length: 6 }, (_, i) => `${prefix2}-t${i}`);
    const storedHere = async () => Number((await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_log WHERE tenant LIKE $1', [`${prefix2}-%`])).rows[0]!.n);
    const group = await freshGroupAtEnd();
    const portsA = { grpc: await freePort(), http: await freePort() };
    const portsB = { grpc: await freePort(), http: await freePort() };
    const a = await spawnAudit(auditEnv(db, group, portsA, { INSTANCE_ID: 'rb-a' }));
    children.push(a);
    // The last quarter goes out only after a has left: the stream is still running when it leaves however fast
    // ingest is (with all of it on the topic at once, a faster ingest had stored everything before a exited).
    const batches = [...eventBatch(tenants2, count)].map(([t, values]) => ({ t, head: values.slice(0, Math.ceil(values.length * 0.75)), tail: values.slice(Math.ceil(values.length * 0.75)) }));
    const sending = Promise.all(batches.map(({ t, head }) => producer.send(t, head, 500)));
    await waitFor(async () => (await storedHere()) >= count * 0.1, { timeoutMs: 240_000, intervalMs: 50, what: `10% stored (${a.output()})` });
    const b = await spawnAudit(auditEnv(db, group, portsB, { INSTANCE_ID: 'rb-b' }));
    children.push(b);
    await waitFor(async () => (await storedHere()) >= count * 0.5, { timeoutMs: 240_000, intervalMs: 50, what: '50% stored' });
    a.kill('SIGTERM'); // leaves the group: its partitions move to b
    await exited(a);
    expect(await storedHere()).toBeLessThan(count);
    await sending;
    await Promise.all(batches.map(({ t, tail }) => producer.send(t, tail, 500)));
    await waitFor(async () => (await storedHere()) >= count, { timeoutMs: 400_000, intervalMs: 200, what: `all stored by the remaining instance (${b.output()})` });
    expect(await storedHere()).toBe(count);
    const distinct = Number((await db.pool.query<{ n: string }>('SELECT count(DISTINCT event_id) AS n FROM audit_log WHERE tenant LIKE $1', [`${prefix2}-%`])).rows[0]!.n);
    expect(distinct).toBe(count);
    const client = auditClient(`127.0.0.1:${portsB.grpc}`);
    try {
      expect(await client.call('VerifyChain', {})).toMatchObject({ intact: true });
    } finally {
      client.close();
    }
    b.kill('SIGTERM');
    await exited(b);
  });
});
