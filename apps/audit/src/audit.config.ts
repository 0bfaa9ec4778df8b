import { availableParallelism } from 'node:os';
import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { EnvBoolean, Secret } from '@soma/config';
import { PostgresConfig } from '@soma/postgres';

/** The audit service's configuration; property names are the environment variable names. */
export class AuditConfig extends PostgresConfig {
  @IsInt() @Min(1) @Max(65535)
  AUDIT_GRPC_PORT: number = 20050;

  @IsInt() @Min(1) @Max(65535)
  AUDIT_HTTP_PORT: number = 20051;

  /** Key-encryption key of the per-subject keys (crypto-shredding, ADR 0401); ≥ 32 bytes, HKDF-derived to 32. */
  @Secret({ minBytes: 32 }) @IsString()
  AUDIT_KEK!: string;

  /** Ed25519 private key (PKCS#8 PEM) signing the chain checkpoints; usually AUDIT_CHECKPOINT_KEY_FILE. */
  @Secret({ minBytes: 0 }) @IsString()
  AUDIT_CHECKPOINT_KEY!: string;

  @IsInt() @Min(100) @Max(86_400_000)
  AUDIT_CHECKPOINT_INTERVAL_MS: number = 60_000;

  @IsString() @Matches(/^[A-Za-z0-9._-]{1,200}$/)
  AUDIT_CONSUMER_GROUP: string = 'soma-audit';

  /** A killed instance's partitions move to the others after this long. */
  @IsInt() @Min(6000) @Max(300_000)
  AUDIT_KAFKA_SESSION_TIMEOUT_MS: number = 30_000;

  @IsInt() @Min(65_536) @Max(64 * 1024 * 1024)
  AUDIT_KAFKA_MAX_BYTES_PER_PARTITION: number = 4 * 1024 * 1024;

  /** Events per PostgreSQL transaction and offset commit (ADR 0406): larger amortises the commit, smaller heartbeats sooner. */
  @IsInt() @Min(1) @Max(20_000)
  AUDIT_INGEST_CHUNK_SIZE: number = 5000;

  /**
   * Threads that protect, chain and store the chunks (ADR 0410); the ingest thread keeps Kafka, the DLQ and the
   * offsets. Partitions are spread over them, so more than the partitions this instance owns is of no use.
   */
  @IsInt() @Min(1) @Max(32)
  AUDIT_INGEST_WORKERS: number = Math.min(4, availableParallelism());

  /** Apply pending migrations at start-up (the same runner as `npx soma db migrate`). */
  @IsBoolean() @EnvBoolean()
  AUDIT_MIGRATE_ON_START: boolean = false;

  /** Monthly partitions kept created ahead of now (checked at start-up and daily). */
  @IsInt() @Min(1) @Max(24)
  AUDIT_PARTITIONS_AHEAD: number = 3;

  /**
   * This instance consumes security.events into audit_log. Ingest and the SIEM stream scale apart: a deployment
   * that needs ingest throughput runs ingest instances with AUDIT_SIEM_STREAM_ENABLED=false and one or more SIEM
   * instances with AUDIT_INGEST_ENABLED=false (ADR 0407). Both default on: one process does everything.
   */
  @IsBoolean() @EnvBoolean()
  AUDIT_INGEST_ENABLED: boolean = true;

  /** This instance publishes committed rows to security.audit (any number of instances: one drainer per chain). */
  @IsBoolean() @EnvBoolean()
  AUDIT_SIEM_STREAM_ENABLED: boolean = true;

  @IsInt() @Min(50) @Max(60_000)
  AUDIT_SIEM_DRAIN_INTERVAL_MS: number = 1_000;

  /** Static bearer key: NDJSON export and VerifyChain of every tenant, no queries (ADR 0405). */
  @Secret({ minBytes: 32, required: false }) @IsOptional() @IsString()
  AUDIT_EXPORT_API_KEY?: string = undefined;

  /** When set, API callers are authenticated by the auth service (JWT or API key; scopes audit:read/verify/export/admin). */
  @IsOptional() @IsString()
  AUTH_GRPC_ADDRESS?: string = undefined;

  /** Deadline of each call to auth; past it the request is refused with UNAVAILABLE (fail closed). */
  @IsInt() @Min(50) @Max(60_000)
  AUTH_DEADLINE_MS: number = 2000;
}
