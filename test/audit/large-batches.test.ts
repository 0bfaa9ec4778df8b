import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { auditService } from '../../apps/audit/src/audit.service-definition.js';
import type { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { freePort } from '../support/ports.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { auditEnv, chainPositionOf, event, EventProducer, freshGroupAtEnd, TestDatabase } from './audit-harness.js';

/*
 * A chunk (up to AUDIT_INGEST_CHUNK_SIZE events) of large events is bigger than the broker's record batch limit
 * (message.max.bytes, 1 MiB): the DLQ sends and the SIEM pages built from it must be split, or the broker refuses
 * them as non-retriable and ingest loops on the same chunk forever (seen with a backlog of hostile-test events).
 */
const db = new TestDatabase();
const producer = new EventProducer();
const tenant = `big-${randomUUID()}`;
const N = 1500; // ~3 KiB each: ~4.5 MiB per kind, several times the limit
const pad = 'x'.repeat(3000);
let service: StartedService<AuditConfig>;
let dlq: TopicCollector;
let siem: TopicCollector;

beforeAll(async () => {
  await db.create();
  await producer.connect();
  dlq = await new TopicCollector(Topics.SecurityEventsDlq, (m) => m.key === tenant).start();
  siem = await new TopicCollector(Topics.SecurityAudit, (m) => m.key === tenant).start();
  service = await startSomaService(auditService, auditEnv(db, await freshGroupAtEnd(), { grpc: await freePort(), http: await freePort() }));
});

afterAll(async () => {
  await service?.stop();
  await Promise.all([dlq?.stop(), siem?.stop(), producer.disconnect()]);
  await db.drop();
});

describe('batches above the broker limit (real Kafka + PostgreSQL)', () => {
  it('dead-letters a chunk of large invalid events and streams a chunk of large valid ones, then keeps ingesting', { timeout: 180_000 }, async () => {
    const invalid = Array.from({ length: N }, (_, i) => JSON.stringify({ ...event(tenant, { details: { pad, i } }), type: 'made_up_event' }));
    const valid = Array.from({ length: N }, (_, i) => JSON.stringify(event(tenant, { details: { pad, i } })));
    await producer.send(tenant, invalid, 200); // 200 × 3 KiB: under the limit on the way in
    await producer.send(tenant, valid, 200);
    await waitFor(async () => (await db.count(tenant)) === N, { timeoutMs: 120_000, what: 'large valid events stored' });
    await waitFor(() => dlq.messages.length >= N, { timeoutMs: 60_000, what: `large invalid events on the DLQ (${dlq.messages.length})` });
    await waitFor(() => new Set(siem.messages.map((m) => `${m.partition}:${m.offset}`)).size >= N, { timeoutMs: 60_000, what: 'large records on security.audit' });
    expect(dlq.messages.length).toBe(N);
    const positions = new Set(siem.messages.map((m) => chainPositionOf(m.value)));
    expect(positions.size).toBe(N);
    // The partition is not stuck: a later event is stored too.
    await producer.send(tenant, [JSON.stringify(event(tenant))]);
    await waitFor(async () => (await db.count(tenant)) === N + 1, { what: 'the event after the large chunks' });
  });
});
