import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { GRPC_REASON_KEY, grpcClientConstructor, type SecurityEvent } from '@soma/contracts';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import type { RetentionConfig } from '../../apps/retention/src/retention.config.js';
import { retentionService } from '../../apps/retention/src/retention.service-definition.js';
import type { AuthHarness } from '../support/auth-harness.js';
import { freePort } from '../support/ports.js';
import { appendToChain } from '../../apps/audit/src/domain/audit-ingest.js';
import { deriveKek } from '../../apps/audit/src/domain/subject-crypto.js';
import { verifyChains } from '../../apps/audit/src/domain/verify-chain.js';
import { PgAuditStore } from '../../apps/audit/src/infra/pg-audit-store.js';
import { POSTGRES_URL, REPO_ROOT } from '../support/infra.js';

/**
 * A throw-away PostgreSQL schema per test file: the platform reference tables, the audit log migration
 * (0001, the audit service's own file) and the retention migrations (01xx), applied with the schema
 * first on the search_path, exactly as `soma db migrate` would apply them to `public`.
 */
export interface TestSchema {
  name: string;
  /** A pool whose sessions resolve unqualified names in the test schema. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createTestSchema(options: { audit?: boolean } = {}): Promise<TestSchema> {
  const name = `retention_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${name}`, max: 8 });
  const files = [join(REPO_ROOT, 'infra/postgres/platform/0001_platform_tables.sql'), join(REPO_ROOT, 'infra/postgres/migrations/0100_retention_consent.sql')];
  if (options.audit) files.unshift(join(REPO_ROOT, 'infra/postgres/migrations/0001_audit_log.sql'));
  const client = await pool.connect();
  try {
    for (const file of files) {
      await client.query('BEGIN');
      await client.query(readFileSync(file, 'utf8'));
      await client.query('COMMIT');
    }
    // The audit_retention role reaches the audit tables through this schema (public grants USAGE by default).
    if (options.audit) await client.query(`GRANT USAGE ON SCHEMA ${pg.escapeIdentifier(name)} TO audit_retention`);
  } finally {
    client.release();
  }
  return {
    name,
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA ${pg.escapeIdentifier(name)} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Write events into the test schema's audit_log through the audit service's own ingest path
 * (`appendToChain`: pseudonyms, encrypted personal fields, subject keys, hash chain), recorded at `at`.
 */
export async function ingestAuditEvents(pool: pg.Pool, kekSecret: string, chain: number, at: Date, events: SecurityEvent[]): Promise<void> {
  await appendToChain(new PgAuditStore(pool as never), deriveKek(kekSecret), chain, events, () => at);
}

/** The audit service's chain verifier over the test schema (no checkpoints are signed in these tests). */
export async function verifyAuditChains(pool: pg.Pool): Promise<{ intact: boolean; rows_checked: number; broken?: unknown }> {
  return verifyChains(new PgAuditStore(pool as never), { verify: () => true });
}

export interface RetentionUnderTest {
  service: StartedService<RetentionConfig>;
  /** host:port of the gRPC server. */
  grpcAddress: string;
  httpUrl: string;
  client: grpc.Client;
  /** One unary call; resolves with the response or rejects with the grpc.ServiceError. */
  call<T = Record<string, unknown>>(method: string, request: unknown, bearer?: string): Promise<T>;
  /** The status code and `soma-reason` of a call expected to fail (throws when it succeeds). */
  callError(method: string, request: unknown, bearer?: string): Promise<{ code: number; reason: unknown }>;
  stop(): Promise<void>;
}

/**
 * A real retention service in-process (unique ports and event buffer) over a test schema, with the
 * scheduler off; `env` overrides (e.g. RETENTION_POLICIES). Auth is the real auth service from the harness.
 */
export async function startRetention(schema: TestSchema, auth: AuthHarness, options: { kek: string; env?: Record<string, string> }): Promise<RetentionUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'soma-retention-svc-'));
  const ports = { grpc: await freePort(), http: await freePort() };
  const service = await startSomaService(retentionService, {
    ...process.env,
    RETENTION_GRPC_PORT: String(ports.grpc),
    RETENTION_HTTP_PORT: String(ports.http),
    EVENT_BUFFER_PATH: join(dir, 'events.sqlite'),
    EVENT_BUFFER_DIR: dir,
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
    POSTGRES_URL,
    RETENTION_PLATFORM_SCHEMA: schema.name,
    RETENTION_AUDIT_SCHEMA: schema.name,
    RETENTION_SCHEMA: schema.name,
    RETENTION_AUDIT_ROLE: 'audit_retention',
    RETENTION_SCHEDULER_ENABLED: 'false',
    AUDIT_KEK: options.kek,
    AUTH_GRPC_ADDRESS: auth.grpcAddress,
    RETENTION_AUTH_CREDENTIAL: await auth.adminToken(),
    INSTANCE_ID: `retention-test-${ports.grpc}`,
    ...options.env,
  });
  const grpcAddress = `127.0.0.1:${ports.grpc}`;
  const client = new (grpcClientConstructor('retention'))(grpcAddress, grpc.credentials.createInsecure());
  type Unary = (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
  const call = <T,>(method: string, request: unknown, bearer?: string): Promise<T> => {
    const md = new grpc.Metadata();
    if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
    return new Promise((resolve, reject) => {
      ((client as unknown as Record<string, Unary>)[method]!).call(client, request, md, (e, r) => (e ? reject(e) : resolve(r as T)));
    });
  };
  return {
    service,
    grpcAddress,
    httpUrl: service.server.httpUrl,
    client,
    call,
    async callError(method, request, bearer) {
      try {
        await call(method, request, bearer);
      } catch (e) {
        const err = e as grpc.ServiceError;
        return { code: err.code, reason: err.metadata?.get(GRPC_REASON_KEY)[0] };
      }
      throw new Error(`${method} unexpectedly succeeded`);
    },
    async stop() {
      client.close();
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
