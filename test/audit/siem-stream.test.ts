import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { TOPIC_PARTITIONS, Topics } from '@soma/contracts';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { auditService } from '../../apps/audit/src/audit.service-definition.js';
import type { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { KAFKA_BROKERS } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { TopicCollector, type ReceivedMessage } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { auditEnv, event, EventProducer, freshGroupAtEnd, TestDatabase } from './audit-harness.js';

/*
 * The SIEM stream's delivery guarantee (ADR 0404) against the two ways a drainer can die mid-page:
 * - after Kafka committed a page but before PostgreSQL recorded it (the cursor row lags): the page must not be
 *   sent again;
 * - with a Kafka transaction open (a crashed or stalled process, a "zombie"): what it wrote must never become
 *   visible, and it must not be able to commit once another drainer took the chain over.
 * The SIEM side reads like a SIEM should: a read_committed consumer (kafkajs' default).
 */

const db = new TestDatabase();
const producer = new EventProducer();
const tenant = `siem-${randomUUID()}`;
const splitTenant = `${tenant}-split`;
const FIRST = 300;
const SECOND = 200;
let siem: TopicCollector;
let group = '';
let ports = { grpc: 0, http: 0 };
let service: StartedService<AuditConfig> | undefined;
let zombie: Producer | undefined;

const start = async () => (service = await startSomaService(auditService, auditEnv(db, group, ports)));
const values = (n: number, batch: string) => Array.from({ length: n }, (_, i) => JSON.stringify(event(tenant, { details: { batch, i } })));
const position = (m: ReceivedMessage) => (m.json as { audit: { chain_partition: number; chain_seq: number } }).audit;
/** One chain position seen at one offset: a consumer that rejoins may read an offset twice, that is not a duplicate on the topic. */
const onTopic = (key = tenant) => [...new Map(siem.messages.filter((m) => m.key === key).map((m) => [`${m.partition}:${m.offset}`, m])).values()];

/** Records an instance's SIEM stream read back from PostgreSQL rather than took from what its own ingest committed. */
async function readBack(instance: StartedService<AuditConfig>): Promise<number> {
  const metric = await instance.runtime.metrics.getSingleMetric('soma_audit_siem_read_back_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

async function headAndCursor(of = tenant): Promise<{ chain: number; head: number; cursor: number }> {
  const { rows } = await db.pool.query<{ chain: number; head: string; cursor: string }>(
    `SELECT h.chain_partition AS chain, h.last_seq AS head, c.published_seq AS cursor
       FROM audit_chain_heads h JOIN audit_siem_cursor c USING (chain_partition)
      WHERE h.chain_partition = (SELECT chain_partition FROM audit_log WHERE tenant = $1 LIMIT 1)`,
    [of],
  );
  return { chain: rows[0]!.chain, head: Number(rows[0]!.head), cursor: Number(rows[0]!.cursor) };
}

beforeAll(async () => {
  await db.create();
  await producer.connect();
  group = await freshGroupAtEnd();
  ports = { grpc: await freePort(), http: await freePort() };
  siem = await new TopicCollector(Topics.SecurityAudit, (m) => m.key === tenant || m.key === splitTenant).start();
  await start();
});

afterAll(async () => {
  await service?.stop();
  await zombie?.disconnect().catch(() => undefined);
  await Promise.all([siem?.stop(), producer.disconnect()]);
  await db.drop();
});

describe('SIEM stream: each chain position once on security.audit (real Kafka transactions + PostgreSQL)', () => {
  it('neither re-sends a committed page whose cursor row lagged, nor lets a fenced drainer publish', { timeout: 180_000 }, async () => {
    await producer.send(tenant, values(FIRST, 'first'));
    await waitFor(() => onTopic().length >= FIRST, { timeoutMs: 60_000, what: 'first batch on security.audit' });
    const before = await waitFor(async () => {
      const s = await headAndCursor();
      return s.cursor === s.head ? s : undefined;
    }, { what: 'cursor at the head' });
    await service!.stop();
    service = undefined;

    // A crash between the Kafka commit and the cursor update leaves the cursor behind what Kafka holds.
    await db.pool.query('UPDATE audit_siem_cursor SET published_seq = 0 WHERE chain_partition = $1', [before.chain]);
    // A drainer of the same chain that died (or stalled) with a transaction open.
    const { rows } = await db.pool.query<{ stream_id: string }>('SELECT stream_id FROM audit_stream_identity');
    const transactionalId = `soma-audit-siem-${rows[0]!.stream_id}-${before.chain}`;
    zombie = new Kafka({ clientId: 'soma-siem-zombie', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
    await zombie.connect();
    const open = await zombie.transaction();
    await open.send({
      topic: Topics.SecurityAudit,
      messages: [{ key: tenant, partition: before.chain % TOPIC_PARTITIONS[Topics.SecurityAudit], value: JSON.stringify({ zombie: true }) }],
    });

    await start();
    await producer.send(tenant, values(SECOND, 'second'));
    await waitFor(() => onTopic().length >= FIRST + SECOND, { timeoutMs: 60_000, what: 'second batch on security.audit' });
    await waitFor(async () => {
      const s = await headAndCursor();
      return s.head === before.head + SECOND && s.cursor === s.head;
    }, { what: 'cursor at the new head' });
    // The zombie was fenced when the restarted drainer initialised the chain's transactional id.
    await expect(open.commit()).rejects.toThrow();
    // The restarted instance continued after Kafka's position (not the lagging cursor) with the rows its own ingest
    // had just committed: nothing was read back from PostgreSQL (ADR 0404).
    expect(await readBack(service!)).toBe(0);
    // Anything sent twice would be on the topic by now (it is sent before the cursor moves); give the collector
    // a few fetch rounds to see it.
    await new Promise((r) => setTimeout(r, 3000));

    const messages = onTopic();
    expect(messages.some((m) => (m.json as { zombie?: boolean }).zombie === true)).toBe(false);
    expect(messages).toHaveLength(FIRST + SECOND);
    const seqs = messages.map(position).filter((p) => p.chain_partition === before.chain).map((p) => p.chain_seq);
    expect(seqs).toHaveLength(FIRST + SECOND);
    expect(new Set(seqs).size).toBe(FIRST + SECOND);
    expect(Math.max(...seqs) - Math.min(...seqs)).toBe(FIRST + SECOND - 1);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('ingest and the SIEM stream in separate instances: the SIEM-only one stays out of the consumer group, every record arrives once', { timeout: 120_000 }, async () => {
    const N = 250;
    const ports2 = [{ grpc: await freePort(), http: await freePort() }, { grpc: await freePort(), http: await freePort() }];
    await service?.stop(); // only the split pair works from here on
    service = undefined;
    const ingestOnly = await startSomaService(auditService, auditEnv(db, group, ports2[0]!, { AUDIT_SIEM_STREAM_ENABLED: 'false', INSTANCE_ID: 'split-ingest' }));
    // Its poll is set to a minute: the records can only arrive in time because it hears the ingest instance's
    // commits (LISTEN soma_audit_committed, ADR 0407).
    const siemOnly = await startSomaService(auditService, auditEnv(db, group, ports2[1]!, { AUDIT_INGEST_ENABLED: 'false', INSTANCE_ID: 'split-siem', AUDIT_SIEM_DRAIN_INTERVAL_MS: '60000' }));
    const admin = new Kafka({ clientId: 'soma-siem-split', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    try {
      const earlier = onTopic().length;
      await producer.send(splitTenant, Array.from({ length: N }, (_, i) => JSON.stringify(event(splitTenant, { details: { i } }))));
      await waitFor(async () => (await db.count(splitTenant)) === N, { timeoutMs: 60_000, what: 'split: all stored' });
      await waitFor(() => onTopic(splitTenant).length >= N, { timeoutMs: 20_000, what: 'split: all on security.audit' });
      await waitFor(async () => {
        const s = await headAndCursor(splitTenant);
        return s.cursor === s.head;
      }, { what: 'split: cursor at the head' });
      await admin.connect();
      const { groups } = await admin.describeGroups([group]);
      expect(groups[0]!.members).toHaveLength(1);
      const seqs = onTopic(splitTenant).map(position).map((p) => `${p.chain_partition}:${p.chain_seq}`);
      expect(seqs).toHaveLength(N);
      expect(new Set(seqs).size).toBe(N);
      expect(onTopic()).toHaveLength(earlier); // nothing of the first test published again
      // The SIEM-only instance holds no rows of its own: it read every record back from PostgreSQL.
      expect(await readBack(siemOnly)).toBe(N);
    } finally {
      await admin.disconnect().catch(() => undefined);
      await ingestOnly.stop();
      await siemOnly.stop();
    }
  });
});
