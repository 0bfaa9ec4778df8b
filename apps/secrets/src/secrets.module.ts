import { type DynamicModule, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { AuthClient } from '@soma/auth-client';
import { AuthzClient } from '@soma/authz-client';
import { redisTlsOf } from '@soma/config';
import { parseFernetKeyList } from '@soma/fernet';
import { grpcClientCredentials, SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { SecurityEvents } from './domain/ports.js';
import { AccessCache } from './domain/access-cache.js';
import { SecretsManager } from './domain/secrets-manager.js';
import { AuthServiceAuthenticator } from './infra/auth-service-authenticator.js';
import { AuthzAccessPolicy } from './infra/authz-access-policy.js';
import { ConfigReferenceResolver } from './infra/config-reference-resolver.js';
import { FernetCipher } from './infra/fernet-cipher.js';
import { RedisSecretStore } from './infra/redis-secret-store.js';
import type { SecretsConfig } from './secrets.config.js';
import { SECRETS_LIFECYCLE, SECRETS_MANAGER } from './secrets.tokens.js';
import { SecretsGrpcController } from './transport/grpc/secrets.grpc.controller.js';

/** Closes the clients the module opened when the app stops. */
class SecretsLifecycle implements OnApplicationShutdown {
  constructor(private readonly close: () => Promise<void>) {}
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

/** Composition root of the secrets service: wires domain, transports and infrastructure. */
@Module({})
export class SecretsModule {
  static register(deps: ServiceDependencies<SecretsConfig>): DynamicModule {
    const { config: c, runtime, events } = deps;
    const log = runtime.logger.child({ component: 'secrets' });
    // Config validation already refused a malformed list; this cannot throw here.
    const cipher = new FernetCipher(parseFernetKeyList(c.FERNET_KEY));
    log.info({ key_ids: cipher.keyIds, prefix: c.SECRETS_KEY_PREFIX }, 'encryption keys loaded (newest first)');

    // Fail fast while Redis is down (UNAVAILABLE to callers) rather than queueing reads of secrets.
    const tls = redisTlsOf(c);
    const redis = new Redis(c.REDIS_URL, { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 3000, ...(tls ? { tls } : {}) });
    redis.on('error', (e: Error) => log.warn({ reason: e.message }, 'redis connection error'));
    runtime.readiness.register('redis', async () => ((await redis.ping()) === 'PONG' ? null : 'redis did not answer PING'));

    const auth = new AuthClient({ address: c.AUTH_GRPC_ADDRESS, deadlineMs: c.SECRETS_ACCESS_CHECK_TIMEOUT_MS, credentials: grpcClientCredentials(c) });
    const authz = new AuthzClient({ address: c.AUTHZ_GRPC_ADDRESS, deadlineMs: c.SECRETS_ACCESS_CHECK_TIMEOUT_MS, credentials: grpcClientCredentials(c), ...(c.AUTHZ_CREDENTIAL ? { credential: c.AUTHZ_CREDENTIAL } : {}) });
    const sink: SecurityEvents = { publish: (e) => events.publish(e), readiness: () => events.readiness() };

    const manager = new SecretsManager({
      authenticator: new AuthServiceAuthenticator(auth, c.SECRETS_ACCESS_CHECK_TIMEOUT_MS),
      policy: new AuthzAccessPolicy(authz, c.SECRETS_POLICY_PATH, c.SECRETS_ACCESS_CHECK_TIMEOUT_MS),
      store: new RedisSecretStore(redis, c.SECRETS_KEY_PREFIX),
      cipher,
      references: new ConfigReferenceResolver({ vaultEnabled: c.VAULT_ENABLED, vaultAddr: c.VAULT_ADDR, vaultToken: c.VAULT_TOKEN, fileDirs: c.SECRETS_FILE_REFERENCE_DIRS }),
      events: sink,
      clock: { now: () => new Date() },
      tenants: c.SECRETS_TENANTS,
      accessCache: new AccessCache({
        callerTtlMs: c.SECRETS_CALLER_CACHE_TTL_MS,
        decisionTtlMs: c.SECRETS_DECISION_CACHE_TTL_MS,
        maxCallers: c.SECRETS_ACCESS_CACHE_MAX,
        maxDecisions: c.SECRETS_ACCESS_CACHE_MAX,
      }),
    });

    const close = async () => {
      auth.close();
      authz.close();
      await redis.quit().catch(() => redis.disconnect());
    };
    return {
      module: SecretsModule,
      imports: [SomaRuntimeModule.forRoot(runtime)],
      controllers: [SecretsGrpcController],
      providers: [
        { provide: SECRETS_MANAGER, useValue: manager },
        { provide: SECRETS_LIFECYCLE, useFactory: () => new SecretsLifecycle(close) },
      ],
    };
  }
}
