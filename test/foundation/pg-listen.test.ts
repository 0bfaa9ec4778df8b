import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { createPgPool, listen } from '@soma/postgres';
import { POSTGRES_URL } from '../support/infra.js';
import { waitFor } from '../support/wait.js';

/**
 * `listen` (libs/postgres) against the real server: notifications arrive, a dropped connection is replaced
 * (reproduced by terminating the listening backend, as a server restart would), and stop() lets go of it.
 */
describe('LISTEN with reconnection (real PostgreSQL)', () => {
  it('delivers notifications, survives its connection being killed, and releases it on stop', async () => {
    const channel = `soma_it_${process.pid}_${Date.now()}`;
    const pool = createPgPool({ POSTGRES_URL }, { applicationName: 'soma-it-listen', onIdleError: () => undefined });
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    const got: string[] = [];
    const errors: Error[] = [];
    const listener = listen(pool, channel, { onNotify: (p) => got.push(p), onError: (e) => errors.push(e), retryMs: 100 });
    const listeners = async () =>
      (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'soma-it-listen' AND query LIKE 'LISTEN%'`)).rows.map((r) => r.pid);
    try {
      const [pid] = await waitFor(async () => ((await listeners()).length === 1 ? listeners() : undefined), { what: 'a LISTEN connection' });
      await admin.query('SELECT pg_notify($1, $2)', [channel, 'one']);
      await waitFor(() => got.includes('one') || undefined, { what: 'the first notification' });

      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(() => errors.length > 0 || undefined, { what: 'the lost connection reported' });
      const [again] = await waitFor(async () => {
        const now = await listeners();
        return now.length === 1 && now[0] !== pid ? now : undefined;
      }, { what: 'a new LISTEN connection' });
      expect(again).not.toBe(pid);
      await admin.query('SELECT pg_notify($1, $2)', [channel, 'two']);
      await waitFor(() => got.includes('two') || undefined, { what: 'a notification after the reconnect' });
      await admin.query('SELECT pg_notify($1, $2)', [`${channel}_other`, 'elsewhere']);

      await listener.stop();
      await waitFor(async () => ((await listeners()).length === 0 ? true : undefined), { what: 'the connection released' });
      expect(got).toEqual(['one', 'two']);
      expect(() => listen(pool, 'bad; DROP TABLE x', { onNotify: () => undefined })).toThrow(/not a channel name/);
    } finally {
      await listener.stop();
      await admin.end();
      await pool.end();
    }
  });
});
