import { type DynamicModule, Module } from '@nestjs/common';
import { SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { AuthzConfig } from './authz.config.js';

/** Composition root of the authz service: wires domain, transports and infrastructure. */
@Module({})
export class AuthzModule {
  static register(deps: ServiceDependencies<AuthzConfig>): DynamicModule {
    return {
      module: AuthzModule,
      imports: [SomaRuntimeModule.forRoot(deps.runtime)],
    };
  }
}
