import { type DynamicModule, Module } from '@nestjs/common';
import { SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { AuthConfig } from './auth.config.js';

/** Composition root of the auth service: wires domain, transports and infrastructure. */
@Module({})
export class AuthModule {
  static register(deps: ServiceDependencies<AuthConfig>): DynamicModule {
    return {
      module: AuthModule,
      imports: [SomaRuntimeModule.forRoot(deps.runtime)],
    };
  }
}
