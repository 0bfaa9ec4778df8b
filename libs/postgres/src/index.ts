export { PostgresConfig, postgresSettingsOf } from './postgres-config.js';
export type { PostgresSettings, PostgresSslMode } from './postgres-config.js';
export { createPgPool, poolConfigOf, sslOf, withTransaction } from './pool.js';
export type { Pool, PoolClient, CreatePoolOptions } from './pool.js';
export { runMigrations, readMigrations, MigrationError } from './migrations.js';
export { listen } from './listener.js';
export type { ListenOptions, PgListener } from './listener.js';
export type { MigrationFile, MigrationResult } from './migrations.js';
