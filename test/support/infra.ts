import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

export type InfraServer = 'postgres' | 'redis' | 'kafka' | 'opa' | 'openfga';

/** Run one of the infra/local scripts (argument arrays, never a shell string). */
export async function infra(command: 'up' | 'down' | 'status', ...servers: InfraServer[]): Promise<{ stdout: string; stderr: string }> {
  return run(join(REPO_ROOT, 'infra/local', command), servers, { cwd: REPO_ROOT, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
}

export const KAFKA_BROKERS = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(',');
export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env['POSTGRES_URL'] ?? 'postgres://soma:soma-local-dev-password@127.0.0.1:5432/soma';
export const OPA_URL = process.env['OPA_URL'] ?? 'http://127.0.0.1:20009';
export const OPENFGA_API_URL = process.env['OPENFGA_API_URL'] ?? 'http://127.0.0.1:8080';
