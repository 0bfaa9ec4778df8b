import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@soma/observability';
import { postgresSettingsOf } from '@soma/postgres';
import { deriveKek } from '../../apps/audit/src/domain/subject-crypto.js';
import { verifyChains } from '../../apps/audit/src/domain/verify-chain.js';
import type { IncomingMessage } from '../../apps/audit/src/domain/audit-ingest.js';
import { ChunkWorkerLostError, ChunkWorkers } from '../../apps/audit/src/infra/ingest-workers/chunk-workers.js';
import { PgAuditStore } from '../../apps/audit/src/infra/pg-audit-store.js';
import { event, TestDatabase } from './audit-harness.js';

/*
 * The chunk workers of ingest (ADR 0410) against the real PostgreSQL: a chunk crosses to a worker thread, is
 * classified and protected there, stored in one chain transaction by that worker's own pool, and what comes back
 * names each reject by its index in the chunk.
 */
const db = new TestDatabase();
let workers: ChunkWorkers;

beforeAll(async () => {
  await db.create();
  workers = new ChunkWorkers({
    count: 2,
    data: { postgres: postgresSettingsOf({ POSTGRES_URL: db.url, POSTGRES_POOL_MAX: 2 }), applicationName: 'soma-audit-it-workers', kek: deriveKek(randomBytes(32).toString('base64url')) },
    logger: createLogger({ service: 'audit-it', level: 'silent' }),
  });
  workers.start();
});

afterAll(async () => {
  await workers?.close();
  await db.drop();
});

const message = (value: Buffer | null, offset: number): IncomingMessage => ({ offset: String(offset), key: null, value });

describe('audit chunk workers (worker threads, real PostgreSQL)', () => {
  it('protects and stores a chunk on the lane worker; rejects come back by index; rows only when asked for', async () => {
    const events = Array.from({ length: 50 }, () => event('workers-tenant'));
    const chunk = [
      ...events.slice(0, 20).map((e, i) => message(Buffer.from(JSON.stringify(e)), i)),
      message(Buffer.from('{not json'), 20),
      message(null, 21),
      message(Buffer.from(JSON.stringify({ ...events[20], actor: { ...events[20]!.actor, user_agent: 'nul \u0000 here' } })), 22),
      ...events.slice(21).map((e, i) => message(Buffer.from(JSON.stringify(e)), 23 + i)),
      message(Buffer.from(JSON.stringify(events[0])), 52), // a repeat within the chunk
    ];
    const lane = workers.assign();
    const { handle, rejected } = await workers.protect(lane, chunk);
    expect(rejected.map((r) => r.index)).toEqual([20, 21, 22]);
    expect(rejected[0]!.reason).toMatch(/not valid JSON/);
    expect(rejected[2]!.reason).toMatch(/NUL/);

    const stored = await workers.store(lane, handle, 4, true);
    expect(stored).toMatchObject({ inserted: 49, duplicates: 1, refused: [] });
    expect(stored.rows!.map((r) => r.event_id)).toEqual(events.filter((_, i) => i !== 20).map((e) => e.id));
    expect(Buffer.isBuffer(stored.rows![0]!.hash) && Buffer.isBuffer(stored.rows![0]!.pii)).toBe(true);
    expect(await db.count('workers-tenant')).toBe(49);

    // Stored again (a retry after a lost reply): every event is a duplicate, nothing is stored twice.
    const again = await workers.store(lane, handle, 4, false);
    expect(again).toMatchObject({ inserted: 0, duplicates: 50, rows: null });
    expect(await verifyChains(new PgAuditStore(db.pool), { verify: () => true })).toMatchObject({ intact: true, rows_checked: 49 });
  });

  it('a chunk no longer held is reported lost, never stored from nothing', async () => {
    const lane = workers.assign();
    const { handle } = await workers.protect(lane, [message(Buffer.from(JSON.stringify(event('workers-lost'))), 0)]);
    workers.release(lane, handle);
    await expect(workers.store(lane, handle, 5, false)).rejects.toBeInstanceOf(ChunkWorkerLostError);
    expect(await db.count('workers-lost')).toBe(0);
  });

  it('a worker that dies reports what was asked of it lost (never a hang, never a crash of the instance), and closes', async () => {
    // A worker that cannot even open its pool (a certificate without its key) dies as it loads, again after each respawn.
    const broken = new ChunkWorkers({
      count: 1,
      data: { postgres: postgresSettingsOf({ POSTGRES_URL: db.url, POSTGRES_SSLMODE: 'require', POSTGRES_SSLCERT: '/nonexistent/cert.pem' }), applicationName: 'soma-audit-it-broken', kek: Buffer.alloc(32) },
      logger: createLogger({ service: 'audit-it', level: 'silent' }),
    });
    broken.start();
    try {
      await expect(broken.protect(broken.assign(), [message(Buffer.from(JSON.stringify(event('workers-dead'))), 0)])).rejects.toBeInstanceOf(ChunkWorkerLostError);
      await expect(broken.store(0, 1, 8, false)).rejects.toBeInstanceOf(ChunkWorkerLostError);
    } finally {
      await broken.close();
    }
    expect(await db.count('workers-dead')).toBe(0);
  });

  it('server trouble comes back as an error to retry, with its SQLSTATE', async () => {
    const lane = workers.assign();
    const { handle } = await workers.protect(lane, [message(Buffer.from(JSON.stringify(event('workers-trouble'))), 0)]);
    // The writer's table is missing for a moment (as after a botched restore): the chain transaction fails as a whole.
    await db.pool.query('ALTER TABLE audit_chain_heads RENAME TO audit_chain_heads_away');
    try {
      await expect(workers.store(lane, handle, 6, false)).rejects.toMatchObject({ code: '42P01' });
    } finally {
      await db.pool.query('ALTER TABLE audit_chain_heads_away RENAME TO audit_chain_heads');
    }
    expect(await workers.store(lane, handle, 6, false)).toMatchObject({ inserted: 1 });
  });
});
