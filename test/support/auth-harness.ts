/**
 * Test harness for every service that needs real credentials: starts a real auth instance in-process
 * (real Redis, real Kafka via the event buffer) with test secrets and a unique Redis prefix, and hands
 * out real JWTs and API keys. Usage:
 *
 *   const auth = await startAuthHarness();            // once per file (beforeAll)
 *   const { token } = await auth.issueToken({ tenant: 'acme', sub: 'alice', scopes: ['secrets:read'] });
 *   const { key } = await auth.createApiKey({ tenant: 'acme', scopes: ['audit:read'] });
 *   const client = auth.client();                    // @soma/auth-client pointed at this instance
 *   await auth.stop();                               // afterAll
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthClient } from '@soma/auth-client';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import type { AuthConfig } from '../../apps/auth/src/auth.config.js';
import { AUTH_RUNTIME, type AuthRuntime } from '../../apps/auth/src/auth.runtime.js';
import { authService } from '../../apps/auth/src/auth.service-definition.js';
import type { CreateApiKeyInput } from '../../apps/auth/src/domain/api-key-service.js';
import { freePort } from './ports.js';

export interface AuthHarness {
  service: StartedService<AuthConfig>;
  runtime: AuthRuntime;
  /** host:port of the gRPC server. */
  grpcAddress: string;
  httpUrl: string;
  redisPrefix: string;
  password: string;
  env: Record<string, string>;
  issueToken(input: { tenant: string; sub?: string; scopes?: string[]; personaId?: string; ttlSeconds?: number }): Promise<{ token: string; jti: string; exp: number }>;
  createApiKey(input: Partial<CreateApiKeyInput> & { tenant: string }): Promise<{ key: string; id: string }>;
  /** A token with auth:admin for every tenant (for admin gRPC/HTTP calls). */
  adminToken(): Promise<string>;
  client(options?: { adminCredential?: string; deadlineMs?: number }): AuthClient;
  stop(): Promise<void>;
}


export interface AuthHarnessOptions {
  /** Extra/overriding env (e.g. JWT_ALGORITHM=RS256, JWT_PRIVATE_KEY_FILE=...). */
  env?: Record<string, string>;
  /** Share a keyring/deny-list with another instance by passing its prefix and secret. */
  redisPrefix?: string;
  jwtSecret?: string;
  grpcPort?: number;
  httpPort?: number;
}

export async function startAuthHarness(options: AuthHarnessOptions = {}): Promise<AuthHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'soma-auth-harness-'));
  const ports = { grpc: options.grpcPort ?? (await freePort()), http: options.httpPort ?? (await freePort()) };
  const redisPrefix = options.redisPrefix ?? `test:auth:${randomUUID()}:`;
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  const env: Record<string, string> = {
    AUTH_GRPC_PORT: String(ports.grpc),
    AUTH_HTTP_PORT: String(ports.http),
    EVENT_BUFFER_PATH: join(dir, 'events.sqlite'),
    // Also the directory: the shared config loader currently ignores EVENT_BUFFER_PATH (no default value).
    EVENT_BUFFER_DIR: dir,
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
    JWT_SECRET: options.jwtSecret ?? randomBytes(48).toString('base64url'),
    AUTH_PASSWORD: password,
    AUTH_REDIS_PREFIX: redisPrefix,
    INSTANCE_ID: `auth-test-${ports.grpc}`,
    ...options.env,
  };
  const service = await startSomaService(authService, { ...process.env, ...env });
  const runtime = service.server.app.get<AuthRuntime>(AUTH_RUNTIME);
  const grpcAddress = `127.0.0.1:${ports.grpc}`;
  const clients: AuthClient[] = [];
  let admin: string | undefined;
  const harness: AuthHarness = {
    service,
    runtime,
    grpcAddress,
    httpUrl: service.server.httpUrl,
    redisPrefix,
    password,
    env,
    async issueToken(input) {
      const t = await runtime.admin.issueToken(null, {
        tenant: input.tenant,
        sub: input.sub ?? 'test-user',
        persona_id: input.personaId ?? 'default',
        scopes: input.scopes ?? [],
        ...(input.ttlSeconds ? { ttl_seconds: input.ttlSeconds } : {}),
      });
      return { token: t.token, jti: t.jti, exp: t.exp };
    },
    async createApiKey(input) {
      const out = await runtime.admin.createApiKey(null, { name: input.name ?? 'test key', scopes: [], metadata: {}, ...input });
      return { key: out.key, id: out.record.id };
    },
    async adminToken() {
      admin ??= (await harness.issueToken({ tenant: '*', sub: 'test-admin', scopes: ['auth:admin'] })).token;
      return admin;
    },
    client(opts) {
      const c = new AuthClient({ address: grpcAddress, deadlineMs: opts?.deadlineMs ?? 5000, ...(opts?.adminCredential ? { adminCredential: opts.adminCredential } : {}) });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
