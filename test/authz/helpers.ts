import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthzClient, AuthzClientError } from '@soma/authz-client';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { authzService } from '../../apps/authz/src/authz.service-definition.js';
import type { AuthzConfig } from '../../apps/authz/src/authz.config.js';
import { freePort } from '../support/ports.js';

export interface RunningAuthz {
  service: StartedService<AuthzConfig>;
  client: AuthzClient;
  httpUrl: string;
  stop(): Promise<void>;
}

/** An in-process authz instance on free ports with its own event buffer, and a client for it. */
export async function startAuthz(env: Record<string, string> = {}): Promise<RunningAuthz> {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'soma-authz-test-'));
  const service = await startSomaService(authzService, {
    ...process.env,
    AUTHZ_GRPC_PORT: String(grpcPort),
    AUTHZ_HTTP_PORT: String(httpPort),
    EVENT_BUFFER_PATH: join(dir, 'authz.sqlite'),
    // EVENT_BUFFER_PATH has no default in CommonConfig, so loadConfig does not read it: a per-instance
    // directory is what actually separates the buffers.
    EVENT_BUFFER_DIR: dir,
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
    // Caller authentication has its own suite (security-matrix.test.ts); elsewhere it is explicitly off.
    AUTHZ_CALLER_AUTH: 'off',
    ...env,
  });
  const client = new AuthzClient({ address: `127.0.0.1:${grpcPort}`, deadlineMs: 10_000 });
  return {
    service,
    client,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    stop: async () => {
      client.close();
      await service.stop();
    },
  };
}

export function uniqueTenant(prefix = 'authz-it'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** The gRPC status and Soma reason of a rejected call. */
export async function rejection(p: Promise<unknown>): Promise<{ code: number; reason: string | undefined }> {
  const e = await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (x: unknown) => x,
  );
  if (!(e instanceof AuthzClientError)) throw e;
  return { code: e.code, reason: e.reason };
}

export { holdFaultLock } from '../support/infra.js';
