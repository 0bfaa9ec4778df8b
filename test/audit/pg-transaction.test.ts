import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { createPgPool, withTransaction } from '@soma/postgres';
import { POSTGRES_URL } from '../support/infra.js';

/**
 * What a PostgreSQL restart does to a transaction whose client is checked out but between queries (the
 * audit ingest does CPU work there, the SIEM drain awaits Kafka): the server closes the connection, pg emits
 * 'error' on the client. That must reject the transaction, not kill the process with an uncaught exception.
 * Reproduced without stopping the shared server: the backend of this one connection is terminated.
 */
describe('withTransaction across a dropped connection', () => {
  it('rejects the transaction, discards the client, and the pool keeps working', async () => {
    const pool = createPgPool({ POSTGRES_URL }, { applicationName: 'soma-audit-it-tx', onIdleError: () => undefined });
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const attempt = withTransaction(pool, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((r) => setTimeout(r, 300)); // "CPU work / Kafka send": the error arrives now
        await client.query('SELECT 1');
      });
      await expect(attempt).rejects.toThrow();
      expect(uncaught).toEqual([]);
      const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0]!.one).toBe(1);
    } finally {
      process.off('uncaughtException', onUncaught);
      await admin.end();
      await pool.end();
    }
  });
});
