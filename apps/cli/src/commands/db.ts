import type { Command } from 'commander';
import { loadConfig } from '@soma/config';
import { PostgresConfig, createPgPool, runMigrations } from '@soma/postgres';

/** `soma db migrate`: apply every pending versioned migration of infra/postgres/migrations. */
export function register(program: Command): void {
  const db = program.command('db').description('PostgreSQL schema of the suite');
  db.command('migrate')
    .description('apply pending migrations (NNNN_name.sql, lexical order) and record them with checksums')
    .option('--dir <path>', 'migrations folder (default: POSTGRES_MIGRATIONS_DIR or infra/postgres/migrations)')
    .action(async (opts: { dir?: string }) => {
      // The same variables as the services: POSTGRES_URL or POSTGRES_HOST/PORT/USER/DB + POSTGRES_PASSWORD(_FILE).
      const config = await loadConfig(PostgresConfig, process.env);
      const pool = createPgPool(config, { applicationName: 'soma-cli-migrate' });
      try {
        const result = await runMigrations(pool, opts.dir ?? config.POSTGRES_MIGRATIONS_DIR, (m) => process.stdout.write(`${m}\n`));
        process.stdout.write(`${result.applied.length} applied, ${result.alreadyApplied.length} already applied\n`);
      } finally {
        await pool.end();
      }
    });
}
