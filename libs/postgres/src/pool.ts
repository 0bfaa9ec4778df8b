import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { PostgresSettings } from './postgres-config.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface CreatePoolOptions {
  /** Shown in pg_stat_activity: which service holds a connection. */
  applicationName: string;
  /** Called for errors of idle clients (a server restart); without a handler they would crash the process. */
  onIdleError?: (error: Error) => void;
}

/** The TLS options of a connection: libpq's sslmode semantics, plus the client certificate when one is set. */
export function sslOf(settings: Partial<PostgresSettings>): pg.PoolConfig['ssl'] {
  const mode = settings.POSTGRES_SSLMODE ?? 'disable';
  if (Boolean(settings.POSTGRES_SSLCERT) !== Boolean(settings.POSTGRES_SSLKEY)) {
    throw new Error('POSTGRES_SSLCERT and POSTGRES_SSLKEY: set both or neither');
  }
  if (mode === 'disable') {
    if (settings.POSTGRES_SSLCERT) throw new Error('POSTGRES_SSLCERT is set but POSTGRES_SSLMODE=disable: the certificate would never be sent');
    return false;
  }
  const client = settings.POSTGRES_SSLCERT && settings.POSTGRES_SSLKEY
    ? { cert: readFileSync(settings.POSTGRES_SSLCERT, 'utf8'), key: readFileSync(settings.POSTGRES_SSLKEY, 'utf8') }
    : {};
  const ca = settings.POSTGRES_SSL_CA_FILE ? readFileSync(settings.POSTGRES_SSL_CA_FILE, 'utf8') : undefined;
  if (mode === 'require') return { ...client, rejectUnauthorized: false };
  if (mode === 'verify-ca') return { ...client, ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return { ...client, ca, rejectUnauthorized: true };
}

/** The pg.PoolConfig for a settings object (exported for tests: no connection is opened). */
export function poolConfigOf(settings: Partial<PostgresSettings>, options: CreatePoolOptions): pg.PoolConfig {
  const base: pg.PoolConfig = {
    max: settings.POSTGRES_POOL_MAX ?? 10,
    connectionTimeoutMillis: settings.POSTGRES_CONNECT_TIMEOUT_MS ?? 5000,
    idleTimeoutMillis: 30_000,
    statement_timeout: settings.POSTGRES_STATEMENT_TIMEOUT_MS ?? 30_000,
    application_name: options.applicationName,
    ssl: sslOf(settings),
  };
  if (settings.POSTGRES_URL) return { ...base, connectionString: settings.POSTGRES_URL };
  return {
    ...base,
    host: settings.POSTGRES_HOST ?? '127.0.0.1',
    port: settings.POSTGRES_PORT ?? 5432,
    user: settings.POSTGRES_USER ?? 'soma',
    database: settings.POSTGRES_DB ?? 'soma',
    password: settings.POSTGRES_PASSWORD,
  };
}

/** A connection pool from config. Idle-client errors (server restart) are reported, never fatal. */
export function createPgPool(settings: Partial<PostgresSettings>, options: CreatePoolOptions): Pool {
  const pool = new pg.Pool(poolConfigOf(settings, options));
  pool.on('error', (e) => options.onIdleError?.(e));
  return pool;
}

/** Run `work` in a transaction on one pooled client: COMMIT on success, ROLLBACK on any error. */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  // pg-pool listens for errors only on idle clients. A server restart while this client is checked out but
  // between queries (the work awaits something else: CPU work, a Kafka send) emits 'error' on the client;
  // without a listener that is an uncaught exception and the process dies. The next query rejects instead.
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection itself failed; do not return it to the pool
    }
    throw e;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
