import { IsIn, IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { CommonConfig, Secret } from '@soma/config';

export type PostgresSslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/**
 * PostgreSQL settings a service config extends (`class XConfig extends PostgresConfig`).
 * Either POSTGRES_URL (a secret: it usually carries the password) or the discrete variables.
 */
export class PostgresConfig extends CommonConfig {
  /** postgres://user:pass@host:port/db — wins over the discrete variables when set. */
  @Secret({ minBytes: 0, required: false }) @IsOptional() @IsString()
  POSTGRES_URL?: string;

  @IsString()
  POSTGRES_HOST: string = '127.0.0.1';

  @IsInt() @Min(1) @Max(65535)
  POSTGRES_PORT: number = 5432;

  @IsString()
  POSTGRES_USER: string = 'soma';

  @IsString()
  POSTGRES_DB: string = 'soma';

  @Secret({ minBytes: 12, required: false }) @IsOptional() @IsString()
  POSTGRES_PASSWORD?: string;

  /** `disable` only on loopback; `verify-full` checks the server certificate and its name. */
  @IsIn(['disable', 'require', 'verify-ca', 'verify-full'])
  POSTGRES_SSLMODE: PostgresSslMode = 'disable';

  /** CA bundle (PEM) for verify-ca / verify-full. */
  @IsOptional() @IsString()
  POSTGRES_SSL_CA_FILE?: string = undefined;

  /** Client certificate (PEM) presented to the server, for `hostssl … cert` / `clientcert=verify-full` (libpq's sslcert). */
  @IsOptional() @IsString()
  POSTGRES_SSLCERT?: string = undefined;

  /** Its private key (PEM; a mounted secret file, libpq's sslkey). Set both or neither. */
  @IsOptional() @IsString()
  POSTGRES_SSLKEY?: string = undefined;

  @IsInt() @Min(1) @Max(200)
  POSTGRES_POOL_MAX: number = 10;

  /** Every statement is cancelled after this long: a stuck query never holds a pool slot forever. */
  @IsInt() @Min(100) @Max(3_600_000)
  POSTGRES_STATEMENT_TIMEOUT_MS: number = 30_000;

  @IsInt() @Min(100) @Max(120_000)
  POSTGRES_CONNECT_TIMEOUT_MS: number = 5_000;

  /** Folder of versioned `NNNN_name.sql` files, applied in lexical order by `soma db migrate`. */
  @IsString()
  POSTGRES_MIGRATIONS_DIR: string = 'infra/postgres/migrations';
}

/** The settings the pool factory reads: `PostgresSettings` and `postgresSettingsOf` both come from this one list. */
const SETTING_NAMES = [
  'POSTGRES_URL', 'POSTGRES_HOST', 'POSTGRES_PORT', 'POSTGRES_USER', 'POSTGRES_DB', 'POSTGRES_PASSWORD', 'POSTGRES_SSLMODE', 'POSTGRES_SSL_CA_FILE',
  'POSTGRES_SSLCERT', 'POSTGRES_SSLKEY', 'POSTGRES_POOL_MAX', 'POSTGRES_STATEMENT_TIMEOUT_MS', 'POSTGRES_CONNECT_TIMEOUT_MS',
] as const satisfies ReadonlyArray<keyof PostgresConfig>;

/** The subset of PostgresConfig the pool factory reads (tests and the CLI can build it by hand). */
export type PostgresSettings = Pick<PostgresConfig, (typeof SETTING_NAMES)[number]>;

/**
 * Just the pool's settings of a validated config, as a plain object: what a worker thread needs to open its own
 * pool (a structured clone of the whole config would carry every other secret into it).
 */
export function postgresSettingsOf(config: Partial<PostgresSettings>): Partial<PostgresSettings> {
  const settings: Partial<Record<keyof PostgresSettings, unknown>> = {};
  for (const name of SETTING_NAMES) if (config[name] !== undefined) settings[name] = config[name];
  return settings as Partial<PostgresSettings>;
}
