import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { AuthConfig } from './auth.config.js';
import { AUTH_RUNTIME, createAuthRuntime, rootKeyOf, type AuthRuntime } from './auth.runtime.js';
import { AuthGrpcController } from './transport/grpc/auth.grpc.controller.js';
import { ApiKeysHttpController, AuthHttpController } from './transport/http/auth.http.controller.js';

class AuthRuntimeLifecycle implements OnApplicationShutdown {
  constructor(@Inject(AUTH_RUNTIME) private readonly rt: AuthRuntime) {}
  async onApplicationShutdown(): Promise<void> {
    await this.rt.close();
  }
}

/** Composition root of the auth service: wires domain, transports and infrastructure. */
@Module({})
export class AuthModule {
  static register(deps: ServiceDependencies<AuthConfig>): DynamicModule {
    // Cross-field configuration problems stop start-up here, as a ConfigError (exit 78), not inside Nest.
    const root = rootKeyOf(deps.config);
    return {
      module: AuthModule,
      imports: [SomaRuntimeModule.forRoot(deps.runtime)],
      controllers: [AuthGrpcController, AuthHttpController, ApiKeysHttpController],
      providers: [
        {
          provide: AUTH_RUNTIME,
          useFactory: async () => {
            const rt = await createAuthRuntime(deps.config, deps.events, deps.runtime.logger, root);
            deps.runtime.readiness.register('redis', async () => {
              try {
                await rt.redis.ping();
                return null;
              } catch {
                return 'redis unreachable: verification fails closed';
              }
            });
            return rt;
          },
        },
        AuthRuntimeLifecycle,
      ],
    };
  }
}
