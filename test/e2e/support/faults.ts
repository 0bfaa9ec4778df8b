/**
 * Stopping the shared servers for fault tests. Every stop/start goes through `infra/local/down <server>` /
 * `infra/local/up <server>` while this process holds /tmp/soma-infra-fault.lock (flock; taken here, so do
 * not wrap the test run in another flock on it), and the server is started again in `finally` whatever
 * happened in between.
 *
 *   await withServerDown('kafka', async () => { ...while Kafka is down... });
 */
import { spawn } from 'node:child_process';
import { infra, type InfraServer } from '../../support/infra.js';

export const FAULT_LOCK = '/tmp/soma-infra-fault.lock';

/**
 * Hold the fault lock until `release` (a `flock` child holds it; its stdin closing releases it). `shared`: for
 * runs that need the servers to stay up (no fault test may stop one meanwhile); exclusive to stop a server.
 */
export async function holdFaultLock(timeoutMs = 900_000, shared = false): Promise<{ release(): Promise<void> }> {
  const child = spawn('flock', [...(shared ? ['-s'] : []), '-w', String(Math.ceil(timeoutMs / 1000)), FAULT_LOCK, process.execPath, '-e', "process.stdout.write('locked\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));"], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
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

/**
 * Stop `server`, run `whileDown`, start it again (in finally), all under the fault lock. `afterUp` runs
 * still under the lock once the server answers again (e.g. wait for the services to reconnect).
 */
export async function withServerDown<T>(server: InfraServer, whileDown: () => Promise<T>, afterUp?: () => Promise<void>): Promise<T> {
  const lock = await holdFaultLock();
  try {
    let result: T;
    try {
      await infra('down', server);
      result = await whileDown();
    } finally {
      await infra('up', server);
    }
    await afterUp?.();
    return result;
  } finally {
    await lock.release();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
