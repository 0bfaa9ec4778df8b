/**
 * Stopping the shared servers for fault tests. Every stop/start goes through `infra/local/down <server>` /
 * `infra/local/up <server>` while this process holds /tmp/soma-infra-fault.lock (flock; taken here, so do
 * not wrap the test run in another flock on it), and the server is started again in `finally` whatever
 * happened in between.
 *
 *   await withServerDown('kafka', async () => { ...while Kafka is down... });
 */
import { holdFaultLock, infra, type InfraServer } from '../../support/infra.js';

export { holdFaultLock } from '../../support/infra.js';

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
