import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infra, type InfraServer } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { auditClient, auditEnv, buildAudit, eventBatch, EventProducer, exited, freshGroupAtEnd, spawnAudit, TestDatabase, withInfraFaultLock } from './audit-harness.js';

/**
 * Exactly once while the shared servers restart under the audit service's feet: PostgreSQL restarted
 * during ingest, then the Kafka broker restarted during ingest. Each outage stops and starts the real
 * server with infra/local/down|up under /tmp/soma-infra-fault.lock (taken by the test itself; do not
 * wrap this file in another flock on that file), and the server is always started again in finally.
 * Each test holds the lock from before ingest starts to the end, so the outage always falls mid-stream
 * (waiting for the lock first would let ingest finish before the server stops).
 */
const TOTAL = Number(process.env['AUDIT_IT_EVENTS'] ?? 100_000);
/** How long each server stays down: long enough for batches to fail and be retried. */
const OUTAGE_MS = 4000;
const db = new TestDatabase();
const producer = new EventProducer();
const children: Array<Awaited<ReturnType<typeof spawnAudit>>> = [];

async function storedLike(prefix: string): Promise<{ rows: number; distinct: number }> {
  const { rows } = await db.pool.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_log WHERE tenant LIKE $1', [`${prefix}-%`]);
  return { rows: Number(rows[0]!.n), distinct: Number(rows[0]!.d) };
}

/** Stop `server`, keep it down for OUTAGE_MS, start it again — the start is in finally. Call it holding the lock. */
async function outage(server: InfraServer): Promise<void> {
  try {
    await infra('down', server);
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
  } finally {
    await infra('up', server);
  }
}

beforeAll(async () => {
  await Promise.all([buildAudit(), db.create(), producer.connect()]);
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map(exited));
  await producer.disconnect().catch(() => undefined);
  await db.drop();
});

async function expectExactlyOnce(prefix: string, grpcPort: number): Promise<void> {
  await waitFor(async () => (await storedLike(prefix)).rows >= TOTAL, { timeoutMs: 400_000, intervalMs: 500, what: `all ${TOTAL} stored (${children.at(-1)?.output() ?? ''})` });
  expect(await storedLike(prefix)).toEqual({ rows: TOTAL, distinct: TOTAL });
  const client = auditClient(`127.0.0.1:${grpcPort}`);
  try {
    const verify = await waitFor(() => client.call<{ intact: boolean; rows_checked: string }>('VerifyChain', {}), { what: 'VerifyChain' });
    expect(verify).toMatchObject({ intact: true });
    expect(Number(verify.rows_checked)).toBeGreaterThanOrEqual(TOTAL);
  } finally {
    client.close();
  }
}

describe('exactly once across server restarts (child process, real Kafka + PostgreSQL)', () => {
  it(`${TOTAL} events, PostgreSQL restarted during ingest → exactly ${TOTAL} rows, chain intact`, { timeout: 1_800_000 }, () => withInfraFaultLock(async () => {
    const prefix = `pgr-${randomUUID().slice(0, 8)}`;
    const ports = { grpc: await freePort(), http: await freePort() };
    const child = await spawnAudit(auditEnv(db, await freshGroupAtEnd(), ports));
    children.push(child);
    const tenants = Array.from({ length: 6 }, (_, i) => `${prefix}-t${i}`);
    const sending = Promise.all([...eventBatch(tenants, TOTAL)].map(([t, values]) => producer.send(t, values, 2000)));
    await waitFor(async () => (await storedLike(prefix)).rows >= TOTAL * 0.2, { timeoutMs: 240_000, intervalMs: 50, what: `20% stored (${child.output()})` });
    await outage('postgres');
    expect((await storedLike(prefix)).rows).toBeLessThan(TOTAL);
    await sending;
    await expectExactlyOnce(prefix, ports.grpc);
    expect(child.exitCode).toBeNull(); // the same instance rode out the outage
    child.kill('SIGTERM');
    await exited(child);
  }));

  it(`${TOTAL} events, the Kafka broker restarted during ingest → exactly ${TOTAL} rows, chain intact`, { timeout: 1_800_000 }, () => withInfraFaultLock(async () => {
    const prefix = `kfr-${randomUUID().slice(0, 8)}`;
    const ports = { grpc: await freePort(), http: await freePort() };
    const group = await freshGroupAtEnd();
    const tenants = Array.from({ length: 6 }, (_, i) => `${prefix}-t${i}`);
    // Produced before the outage (the producer is not under test): the consumer is mid-stream when the broker stops.
    await Promise.all([...eventBatch(tenants, TOTAL)].map(([t, values]) => producer.send(t, values, 2000)));
    const child = await spawnAudit(auditEnv(db, group, ports));
    children.push(child);
    await waitFor(async () => (await storedLike(prefix)).rows >= TOTAL * 0.2, { timeoutMs: 240_000, intervalMs: 50, what: `20% stored (${child.output()})` });
    await outage('kafka');
    expect((await storedLike(prefix)).rows).toBeLessThan(TOTAL);
    await expectExactlyOnce(prefix, ports.grpc);
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    await exited(child);
  }));
});
