import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { EnvBoolean, Secret } from '@soma/config';
import { PostgresConfig } from '@soma/postgres';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/** The retention service's configuration; property names are the environment variable names. */
export class RetentionConfig extends PostgresConfig {
  @IsInt() @Min(1) @Max(65535)
  RETENTION_GRPC_PORT: number = 20060;

  @IsInt() @Min(1) @Max(65535)
  RETENTION_HTTP_PORT: number = 20061;

  /** JSON array of policies (README); unset = the seed's defaults. Validated at start-up. */
  @IsString()
  RETENTION_POLICIES: string = '';

  /** Maximum age of audit_log months (whole monthly partitions are dropped). */
  @IsInt() @Min(30) @Max(36_500)
  RETENTION_AUDIT_LOG_MAX_AGE_DAYS: number = 365;

  /** JSON array of the platform tables holding a user's rows (export/erasure); unset = sessions, messages, session_events. */
  @IsString()
  RETENTION_SUBJECT_TABLES: string = '';

  /** Schema of the platform's tables (sessions, messages, session_events). */
  @IsString() @Matches(IDENT)
  RETENTION_PLATFORM_SCHEMA: string = 'public';

  /** Schema of audit_log, audit_subject_keys and the audit functions. */
  @IsString() @Matches(IDENT)
  RETENTION_AUDIT_SCHEMA: string = 'public';

  /** Schema of the retention service's own tables (consent_records). */
  @IsString() @Matches(IDENT)
  RETENTION_SCHEMA: string = 'public';

  /** Role assumed for audit-key erasure and partition drops (SET LOCAL ROLE); empty = the login role. */
  @IsString() @Matches(/^$|^[a-z_][a-z0-9_]{0,62}$/)
  RETENTION_AUDIT_ROLE: string = 'audit_retention';

  @IsBoolean() @EnvBoolean()
  RETENTION_SCHEDULER_ENABLED: boolean = true;

  /** Delay of the first scheduled run after start-up (then each policy's own interval). */
  @IsInt() @Min(1) @Max(86_400)
  RETENTION_SCHEDULER_FIRST_RUN_SECONDS: number = 300;

  /** Most rows (platform + audit) one export may hold; larger requests get RESOURCE_EXHAUSTED. */
  @IsInt() @Min(1) @Max(10_000_000)
  RETENTION_EXPORT_MAX_ROWS: number = 200_000;

  /** The audit log's key-encryption secret (same value as the audit service's): needed to export audit entries. */
  @Secret({ minBytes: 32, required: false }) @IsOptional() @IsString()
  AUDIT_KEK?: string;

  @IsString()
  AUTH_GRPC_ADDRESS: string = '127.0.0.1:20020';

  @IsInt() @Min(50) @Max(60_000)
  AUTH_DEADLINE_MS: number = 2000;

  /** The retention service's own credential for auth's admin RPCs (API key or JWT with auth:admin, tenant *). */
  @Secret({ minBytes: 16, required: false }) @IsOptional() @IsString()
  RETENTION_AUTH_CREDENTIAL?: string;
}
