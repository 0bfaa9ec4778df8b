import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { GRPC_REASON_KEY, grpcClientConstructor } from '@soma/contracts';
import { startSomaService, type StartedService } from '@soma/service-runtime';
import { authzService } from '../../apps/authz/src/authz.service-definition.js';
import { secretsService } from '../../apps/secrets/src/secrets.service-definition.js';
import type { SecretsConfig } from '../../apps/secrets/src/secrets.config.js';
import { startAuthHarness } from '../support/auth-harness.js';
import { freePort } from '../support/ports.js';

export const tmp = mkdtempSync(join(tmpdir(), 'soma-secrets-test-'));

export interface CallError {
  code: grpc.status;
  reason: string | undefined;
  details: string;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/** A gRPC client of SecretsService: `call(method, request, credential)` → response or CallError. */
export class SecretsClient {
  private readonly client: grpc.Client;

  constructor(address: string) {
    this.client = new (grpcClientConstructor('secrets'))(address, grpc.credentials.createInsecure());
  }

  call<T = Record<string, unknown>>(method: string, request: unknown, credential?: string): Promise<T> {
    const md = new grpc.Metadata();
    if (credential) md.set('authorization', `Bearer ${credential}`);
    return new Promise<T>((resolve, reject) => {
      (this.client as unknown as Record<string, Unary>)[method]!.call(this.client, request, md, { deadline: new Date(Date.now() + 30_000) }, (err, res) => {
        if (err) {
          const reason = err.metadata?.get(GRPC_REASON_KEY)[0];
          reject({ code: err.code, reason: typeof reason === 'string' ? reason : undefined, details: err.details } satisfies CallError);
        } else resolve(res as T);
      });
    });
  }

  /** The CallError of a call expected to fail. */
  async failure(method: string, request: unknown, credential?: string): Promise<CallError> {
    try {
      await this.call(method, request, credential);
    } catch (e) {
      return e as CallError;
    }
    throw new Error(`${method} was expected to fail`);
  }

  close(): void {
    this.client.close();
  }
}

/** Real credentials from a real auth instance (test/support/auth-harness.ts). */
export interface CredentialSource {
  /** host:port of auth's gRPC API, for AUTH_GRPC_ADDRESS. */
  address: string;
  /** A JWT of `sub` in `tenant` holding `scopes`. */
  issue(sub: string, tenant: string, scopes: string[]): Promise<string>;
  /** An API key (sk-soma-…) of `sub` in `tenant` holding `scopes`. */
  apiKey(sub: string, tenant: string, scopes: string[]): Promise<string>;
  /** The same with its id, for revokeApiKey. */
  apiKeyWithId(sub: string, tenant: string, scopes: string[]): Promise<{ key: string; id: string }>;
  /** Revocations through auth's gRPC admin API (RevokeToken / RevokeApiKey), as an operator would. */
  revokeToken(tenant: string, token: string): Promise<void>;
  revokeApiKey(tenant: string, id: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startCredentialSource(): Promise<CredentialSource> {
  const auth = await startAuthHarness();
  const admin = async () => auth.client({ adminCredential: await auth.adminToken() });
  return {
    address: auth.grpcAddress,
    issue: async (sub, tenant, scopes) => (await auth.issueToken({ tenant, sub, scopes })).token,
    apiKey: async (sub, tenant, scopes) => (await auth.createApiKey({ tenant, scopes, owner_sub: sub })).key,
    apiKeyWithId: (sub, tenant, scopes) => auth.createApiKey({ tenant, scopes, owner_sub: sub }),
    revokeToken: async (tenant, token) => void (await (await admin()).revokeToken({ tenant, token })),
    revokeApiKey: async (tenant, id) => void (await (await admin()).revokeApiKey(tenant, id)),
    stop: () => auth.stop(),
  };
}

/**
 * authz in-process, evaluating infra/policy on the real OPA server. With `authAddress`, authz authenticates its
 * callers (AUTHZ_CALLER_AUTH=required) with that auth instance: secrets then needs AUTHZ_CREDENTIAL.
 */
export async function startAuthz(opts: { authAddress?: string } = {}): Promise<{ address: string; service: StartedService<unknown> }> {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const service = await startSomaService(authzService, {
    ...process.env,
    AUTHZ_GRPC_PORT: String(grpcPort),
    AUTHZ_HTTP_PORT: String(httpPort),
    AUTHZ_DECISION_CACHE_TTL_MS: '0',
    // Generous: these tests are about access rules, not OPA latency; a loaded machine must not turn a grant into policy_unavailable.
    OPA_TIMEOUT_MS: '5000',
    ...(opts.authAddress ? { AUTHZ_CALLER_AUTH: 'required', AUTH_GRPC_ADDRESS: opts.authAddress } : { AUTHZ_CALLER_AUTH: 'off' }),
    EVENT_BUFFER_PATH: join(tmp, `authz-${grpcPort}.sqlite`),
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
  });
  return { address: `127.0.0.1:${grpcPort}`, service: service as StartedService<unknown> };
}

export interface SecretsInstance {
  client: SecretsClient;
  service: StartedService<SecretsConfig>;
  address: string;
  stop(): Promise<void>;
}

/** The secrets service in-process with the given keys (newest first) and store prefix. */
export async function startSecrets(opts: { keys: string[]; prefix: string; authAddress: string; authzAddress: string; tenants: string[]; env?: Record<string, string> }): Promise<SecretsInstance> {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const service = await startSomaService(secretsService, {
    ...process.env,
    SECRETS_GRPC_PORT: String(grpcPort),
    SECRETS_HTTP_PORT: String(httpPort),
    FERNET_KEY: opts.keys.join(','),
    SECRETS_KEY_PREFIX: opts.prefix,
    SECRETS_TENANTS: opts.tenants.join(','),
    AUTH_GRPC_ADDRESS: opts.authAddress,
    AUTHZ_GRPC_ADDRESS: opts.authzAddress,
    SECRETS_ACCESS_CHECK_TIMEOUT_MS: '10000',
    EVENT_BUFFER_PATH: join(tmp, `secrets-${grpcPort}.sqlite`),
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
    ...opts.env,
  });
  const client = new SecretsClient(`127.0.0.1:${grpcPort}`);
  return {
    client,
    service,
    address: `127.0.0.1:${grpcPort}`,
    stop: async () => {
      client.close();
      await service.stop();
    },
  };
}
