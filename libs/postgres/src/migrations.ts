import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool } from './pool.js';

export interface MigrationFile {
  /** The numeric prefix, e.g. `0001` of `0001_audit_log.sql`. */
  version: string;
  name: string;
  sql: string;
  /** SHA-256 hex of the file's bytes: an applied migration must never change. */
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const FILE_PATTERN = /^(\d{4,})_[a-z0-9_]+\.sql$/;
/** One lock key for the whole database: two runners (two replicas starting at once) never interleave. */
const MIGRATION_LOCK_KEY = 0x736f6d61; // 'soma'

/** Read every `NNNN_name.sql` of a folder, in lexical order. Other files are refused, not ignored. */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<string>();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const match = FILE_PATTERN.exec(name);
    if (!match) throw new MigrationError(`migration file ${name} does not match NNNN_lower_snake_name.sql`);
    const version = match[1]!;
    if (seen.has(version)) throw new MigrationError(`two migration files share version ${version}`);
    seen.add(version);
    const bytes = await readFile(join(dir, name));
    files.push({ version, name, sql: bytes.toString('utf8'), checksum: createHash('sha256').update(bytes).digest('hex') });
  }
  return files;
}

/**
 * Apply every pending migration of `dir` in lexical order. A session advisory lock serialises
 * concurrent runners; each file runs in its own transaction together with its row in
 * `schema_migrations` (version, name, checksum), so a failed file leaves nothing half-applied.
 * An applied file whose checksum changed stops the run: history is never rewritten silently.
 */
export async function runMigrations(pool: Pool, dir: string, log: (msg: string) => void = () => undefined): Promise<MigrationResult> {
  const files = await readMigrations(dir);
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: string; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations');
      const applied = new Map(rows.map((r) => [r.version, r]));
      const result: MigrationResult = { applied: [], alreadyApplied: [] };
      for (const file of files) {
        const previous = applied.get(file.version);
        if (previous) {
          if (previous.checksum !== file.checksum) {
            throw new MigrationError(`migration ${file.name} was changed after it was applied (checksum differs); add a new migration instead`);
          }
          result.alreadyApplied.push(file.name);
          continue;
        }
        try {
          await client.query('BEGIN');
          await client.query(file.sql);
          await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [file.version, file.name, file.checksum]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new MigrationError(`migration ${file.name} failed: ${(e as Error).message}`);
        }
        log(`applied ${file.name}`);
        result.applied.push(file.name);
      }
      return result;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {
        broken = true;
      });
    }
  } finally {
    client.release(broken);
  }
}
