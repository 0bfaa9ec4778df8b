import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { grpcClientConstructor, Topics, type SecurityEvent } from '@soma/contracts';
import { runMigrations } from '@soma/postgres';
import { KAFKA_BROKERS, POSTGRES_URL, REPO_ROOT, withFaultLock } from '../support/infra.js';

/** A database of its own per test file: the audit schema migrated into it, dropped afterwards. */
export class TestDatabase {
  readonly name = `audit_it_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  pool!: pg.Pool;
  private admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });

  constructor() {
    // A PostgreSQL restart (fault tests) terminates idle clients: that must not crash the test process.
    this.admin.on('error', () => undefined);
  }

  get url(): string {
    const u = new URL(POSTGRES_URL);
    u.pathname = `/${this.name}`;
    return u.toString();
  }

  async create(): Promise<this> {
    await this.admin.query(`CREATE DATABASE ${this.name}`);
    this.pool = new pg.Pool({ connectionString: this.url, max: 4 });
    this.pool.on('error', () => undefined);
    await runMigrations(this.pool, join(REPO_ROOT, 'infra/postgres/migrations'));
    return this;
  }

  async drop(): Promise<void> {
    await this.pool?.end().catch(() => undefined);
    await this.admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`).catch(() => undefined);
    await this.admin.end();
  }

  async count(tenant: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_log WHERE tenant = $1', [tenant]);
    return Number(rows[0]!.n);
  }
}

/** Secrets and env of one audit instance (ports, buffer file, its own DB and consumer group). */
export function auditEnv(db: TestDatabase, group: string, ports: { grpc: number; http: number }, extra: Record<string, string> = {}): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'soma-audit-it-'));
  const keyFile = join(dir, 'checkpoint.pem');
  writeFileSync(keyFile, sharedCheckpointKey);
  return {
    ...(process.env as Record<string, string>),
    NODE_ENV: 'test',
    LOG_LEVEL: process.env['AUDIT_TEST_LOG_LEVEL'] ?? 'silent',
    OTEL_ENABLED: 'false',
    POSTGRES_URL: db.url,
    AUDIT_GRPC_PORT: String(ports.grpc),
    AUDIT_HTTP_PORT: String(ports.http),
    EVENT_BUFFER_PATH: join(dir, 'buffer.sqlite'),
    // Also the directory: instances must never share .local/buffer/audit.sqlite (SQLite would be locked).
    EVENT_BUFFER_DIR: dir,
    AUDIT_KEK: sharedKek,
    AUDIT_CHECKPOINT_KEY_FILE: keyFile,
    AUDIT_CHECKPOINT_INTERVAL_MS: '500',
    AUDIT_CONSUMER_GROUP: group,
    AUDIT_KAFKA_SESSION_TIMEOUT_MS: '6000',
    AUDIT_SIEM_DRAIN_INTERVAL_MS: '200',
    AUDIT_EXPORT_API_KEY: exportApiKey,
    ...extra,
  };
}

export const sharedKek = randomBytes(32).toString('base64url');
export const sharedCheckpointKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
export const exportApiKey = randomBytes(32).toString('base64url');

/** A new consumer group positioned at the current end of security.events: no history, no race with the join. */
export async function freshGroupAtEnd(): Promise<string> {
  const group = `soma-audit-it-${randomUUID()}`;
  const admin = new Kafka({ clientId: 'soma-audit-it', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(Topics.SecurityEvents);
    await admin.setOffsets({ groupId: group, topic: Topics.SecurityEvents, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
  } finally {
    await admin.disconnect();
  }
  return group;
}

export function event(tenant: string, over: Partial<SecurityEvent> = {}): SecurityEvent {
  return {
    schema: 'soma.security.event/v1',
    id: uuidv7(),
    type: 'authentication_failed',
    occurred_at: new Date().toISOString(),
    service: 'auth',
    tenant,
    actor: { user_id: 'alice', ip_address: '203.0.113.7', user_agent: 'curl/8.0' },
    action: 'login',
    resource: 'session',
    outcome: 'failure',
    reason: 'bad_password',
    details: { attempts: 1 },
    trace_id: null,
    ...over,
  };
}

export class EventProducer {
  private producer: Producer;
  constructor() {
    this.producer = new Kafka({ clientId: 'soma-audit-it-producer', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).producer({ idempotent: true, maxInFlightRequests: 1 });
  }
  async connect(): Promise<this> {
    await this.producer.connect();
    return this;
  }
  /** Send raw values keyed by tenant (the contract's key), in chunks. */
  async send(tenant: string, values: Array<string | Buffer>, chunk = 1000): Promise<void> {
    for (let i = 0; i < values.length; i += chunk) {
      await this.producer.send({ topic: Topics.SecurityEvents, acks: -1, messages: values.slice(i, i + chunk).map((value) => ({ key: tenant, value })) });
    }
  }
  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}

type Unary = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/**
 * A promise-returning gRPC client of soma.audit.v1.AuditService. Calls carry `authorization: Bearer
 * <credential>` (default: the static AUDIT_EXPORT_API_KEY of auditEnv, which may verify and export);
 * `credential: null` sends none. A call may override it.
 */
export function auditClient(address: string, credential: string | null = exportApiKey): { call<T>(method: string, req: unknown, opts?: { credential?: string | null }): Promise<T>; close(): void } {
  const client = new (grpcClientConstructor('audit'))(address, grpc.credentials.createInsecure());
  return {
    call<T>(method: string, req: unknown, opts: { credential?: string | null } = {}): Promise<T> {
      const md = new grpc.Metadata();
      const bearer = opts.credential === undefined ? credential : opts.credential;
      if (bearer !== null) md.set('authorization', `Bearer ${bearer}`);
      return new Promise((resolve, reject) => {
        (client[method] as Unary).call(client, req, md, (err, res) => (err ? reject(err) : resolve(res as T)));
      });
    },
    close: () => client.close(),
  };
}

/** Build the audit app (and the libs it imports) to dist/ so it can run as a child process and be SIGKILLed. */
export async function buildAudit(): Promise<void> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  await run('npx', ['tsc', '-p', 'apps/audit/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 300_000 });
  await run('npx', ['tsc-alias', '-p', 'apps/audit/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 120_000 });
}

/** `node dist/apps/audit/src/main.js` as a child process; stderr kept for diagnostics. */
export async function spawnAudit(env: Record<string, string>): Promise<import('node:child_process').ChildProcess & { output: () => string }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['dist/apps/audit/src/main.js'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const keep = (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8000);
  };
  // Logs (stdout, silent unless AUDIT_TEST_LOG_LEVEL is set) and crashes (stderr) both end up in failure messages.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return Object.assign(child, { output: () => stderr });
}

export async function exited(child: import('node:child_process').ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

/** Many small valid events spread over `tenants` (tenant = key, so over several partitions). */
/** `<chain>:<seq>` of a security.audit record, read from the record itself (docs/events.md). */
export function chainPositionOf(value: Buffer | null): string {
  const { audit } = JSON.parse(value?.toString('utf8') ?? 'null') as { audit: { chain_partition: number; chain_seq: number } };
  return `${audit.chain_partition}:${audit.chain_seq}`;
}

export function eventBatch(tenants: string[], count: number): Map<string, string[]> {
  const out = new Map<string, string[]>(tenants.map((t) => [t, []]));
  for (let i = 0; i < count; i++) {
    const t = tenants[i % tenants.length]!;
    out.get(t)!.push(JSON.stringify(event(t, { actor: { user_id: `u${i % 50}`, ip_address: '198.51.100.9', user_agent: null }, details: { n: i } })));
  }
  return out;
}

/** Stops and starts of shared servers in these tests happen under the shared fault lock. */
export const withInfraFaultLock = <T>(work: () => Promise<T>): Promise<T> => withFaultLock(work, { timeoutMs: 1_200_000 });
