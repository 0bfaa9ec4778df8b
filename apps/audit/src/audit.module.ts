import { type DynamicModule, Inject, Injectable, Module, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { createPgPool, postgresSettingsOf, runMigrations, type Pool } from '@soma/postgres';
import { grpcClientCredentials, SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { Logger } from '@soma/observability';
import { kafkaSslOf } from '@soma/config';
import type { AuditConfig } from './audit.config.js';
import { AuditAccessLog } from './domain/audit-access-log.js';
import { AuditQueries } from './domain/audit-query.js';
import { ed25519Signer } from './domain/checkpoint.js';
import { deriveKek } from './domain/subject-crypto.js';
import { Checkpointer } from './infra/checkpointer.js';
import { auditAuthenticator, type AuditAuthenticator } from './infra/export-auth.js';
import { ChunkWorkers } from './infra/ingest-workers/chunk-workers.js';
import { KafkaAuditIngest } from './infra/kafka-ingest.js';
import { PgAuditStore } from './infra/pg-audit-store.js';
import { SiemStream } from './infra/siem-stream.js';
import { AUDIT_AUTH } from './audit.tokens.js';
import { AuditGrpcController } from './transport/grpc/audit.grpc-controller.js';
import { AuditExportController } from './transport/http/audit-export.controller.js';

const AUDIT_PARTS = Symbol('audit:parts');
const DAY_MS = 86_400_000;

interface AuditParts {
  config: Readonly<AuditConfig>;
  logger: Logger;
  pool: Pool;
  store: PgAuditStore;
  ingest: KafkaAuditIngest | undefined;
  siem: SiemStream | undefined;
  checkpointer: Checkpointer;
  auth: AuditAuthenticator;
}

/** Starts and stops the moving parts in order: schema → partitions → consumer, checkpoints, SIEM stream. */
@Injectable()
class AuditLifecycle implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private partitionTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private stopped = false;

  constructor(@Inject(AUDIT_PARTS) private readonly p: AuditParts) {}

  async onModuleInit(): Promise<void> {
    const { config, pool, store, logger } = this.p;
    if (config.AUDIT_MIGRATE_ON_START) {
      const r = await runMigrations(pool, config.POSTGRES_MIGRATIONS_DIR, (m) => logger.info(m));
      logger.info({ applied: r.applied.length, already: r.alreadyApplied.length }, 'migrations checked');
    }
    const created = await store.ensurePartitions(config.AUDIT_PARTITIONS_AHEAD);
    if (created.length) logger.info({ partitions: created }, 'created audit_log partitions');
  }

  onApplicationBootstrap(): void {
    const { config, store, logger } = this.p;
    this.partitionTimer = setInterval(() => {
      store.ensurePartitions(config.AUDIT_PARTITIONS_AHEAD).catch((e: unknown) => logger.error({ reason: (e as Error).message }, 'could not create audit_log partitions ahead'));
    }, DAY_MS);
    this.partitionTimer.unref();
    this.p.checkpointer.start();
    // An instance that ingests drains its own chains as it commits; a SIEM-only one hears of other instances' commits.
    this.p.siem?.start(!this.p.ingest);
    // The consumer joins in the background: a broker that is down now delays ingest, not the API.
    if (this.p.ingest) this.starting = this.startIngest(this.p.ingest);
  }

  private async startIngest(ingest: KafkaAuditIngest): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        await ingest.start();
        return;
      } catch (e) {
        this.p.logger.warn({ reason: (e as Error).message }, 'audit consumer could not start; retrying');
        await ingest.stop();
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.partitionTimer) clearInterval(this.partitionTimer);
    await this.starting?.catch(() => undefined);
    await this.p.ingest?.stop();
    await this.p.checkpointer.stop();
    await this.p.siem?.stop();
    this.p.auth.close();
    await this.p.pool.end().catch(() => undefined);
  }
}

/** Composition root of the audit service: wires domain, transports and infrastructure. */
@Module({})
export class AuditModule {
  static register(deps: ServiceDependencies<AuditConfig>): DynamicModule {
    const { config, runtime, events } = deps;
    const logger = runtime.logger;
    const pool = createPgPool(config, {
      applicationName: `soma-audit-${runtime.instanceId}`,
      onIdleError: (e) => logger.warn({ reason: e.message }, 'idle PostgreSQL connection failed'),
    });
    const store = new PgAuditStore(pool);
    const kek = deriveKek(config.AUDIT_KEK);
    const signer = ed25519Signer(config.AUDIT_CHECKPOINT_KEY);
    const ssl = kafkaSslOf(config);
    const kafka = new Kafka({ clientId: `soma-audit-siem-${runtime.instanceId}`, brokers: config.KAFKA_BROKERS, ...(ssl ? { ssl } : {}), logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const siem = config.AUDIT_SIEM_STREAM_ENABLED ? new SiemStream(kafka, pool, store, logger, runtime.metrics, config.AUDIT_SIEM_DRAIN_INTERVAL_MS) : undefined;
    const ingest = !config.AUDIT_INGEST_ENABLED ? undefined : new KafkaAuditIngest({
      brokers: config.KAFKA_BROKERS,
      ssl,
      groupId: config.AUDIT_CONSUMER_GROUP,
      clientId: `soma-audit-${runtime.instanceId}`,
      sessionTimeoutMs: config.AUDIT_KAFKA_SESSION_TIMEOUT_MS,
      maxBytesPerPartition: config.AUDIT_KAFKA_MAX_BYTES_PER_PARTITION,
      chunkSize: config.AUDIT_INGEST_CHUNK_SIZE,
      logger,
      metrics: runtime.metrics,
      workers: new ChunkWorkers({
        count: config.AUDIT_INGEST_WORKERS,
        // Only what a worker needs to reach PostgreSQL (plain values: they are cloned into the thread).
        data: { postgres: postgresSettingsOf(config), applicationName: `soma-audit-${runtime.instanceId}-ingest`, kek },
        logger,
      }),
      onCommitted: (chain, rows) => siem?.notify(chain, rows),
      // Rows cross from the workers only for this instance's own SIEM stream (it reads PostgreSQL otherwise).
      wantRows: siem !== undefined,
    });
    const checkpointer = new Checkpointer(store, signer, logger, config.AUDIT_CHECKPOINT_INTERVAL_MS);
    const auth = auditAuthenticator({ authAddress: config.AUTH_GRPC_ADDRESS, deadlineMs: config.AUTH_DEADLINE_MS, apiKey: config.AUDIT_EXPORT_API_KEY, credentials: grpcClientCredentials(config) });
    runtime.readiness.register('postgres', async () => {
      try {
        await pool.query('SELECT 1');
        return null;
      } catch (e) {
        return `postgres unreachable (${(e as Error).message})`;
      }
    });
    if (ingest) runtime.readiness.register('audit-consumer', async () => (ingest.isJoined ? null : 'not a member of the consumer group yet'));
    logger.info({ checkpoint_key_id: signer.keyId, ingest: config.AUDIT_INGEST_ENABLED, siem_stream: config.AUDIT_SIEM_STREAM_ENABLED }, 'checkpoint signing key loaded');
    const parts: AuditParts = { config, logger, pool, store, ingest, siem, checkpointer, auth };
    return {
      module: AuditModule,
      imports: [SomaRuntimeModule.forRoot(runtime)],
      controllers: [AuditGrpcController, AuditExportController],
      providers: [
        { provide: AUDIT_PARTS, useValue: parts },
        // Every read of the log is itself recorded on security.events (audit_log_accessed, ADR 0408).
        { provide: AuditQueries, useValue: new AuditQueries(store, kek, signer, new AuditAccessLog(events)) },
        { provide: AUDIT_AUTH, useValue: auth },
        { provide: Checkpointer, useValue: checkpointer },
        AuditLifecycle,
      ],
      exports: [Checkpointer],
    };
  }
}
