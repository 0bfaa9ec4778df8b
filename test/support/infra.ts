import { execFile, spawn } from 'node:child_process';
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

/** The lock every stop/start of a shared server happens under (flock on this file). */
export const FAULT_LOCK = '/tmp/soma-infra-fault.lock';

export interface FaultLock {
  release(): Promise<void>;
}

/**
 * Hold the infrastructure fault lock until `release()`. Exclusive (default) to stop or restart a shared server;
 * `shared` for a run that needs the servers to stay up, so that fault tests wait for it instead of breaking it.
 * A child `flock` holds the lock for a node process waiting on its stdin: closing stdin releases it, and so
 * does this process dying. Do not run a test under an outer flock on the same file.
 */
export async function holdFaultLock(options: { shared?: boolean; timeoutMs?: number } = {}): Promise<FaultLock> {
  const seconds = String(Math.ceil((options.timeoutMs ?? 900_000) / 1000));
  const holder = "process.stdout.write('locked\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));";
  const child = spawn('flock', [...(options.shared ? ['-s'] : []), '-w', seconds, FAULT_LOCK, process.execPath, '-e', holder], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => (b.toString().includes('locked') ? resolve() : undefined));
    child.once('exit', (code) => reject(new Error(`could not take ${FAULT_LOCK} (flock exited ${code})`)));
  });
  return {
    release: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

/** Run `work` while holding the fault lock (exclusive unless `shared`). */
export async function withFaultLock<T>(work: () => Promise<T>, options: { shared?: boolean; timeoutMs?: number } = {}): Promise<T> {
  const lock = await holdFaultLock(options);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
