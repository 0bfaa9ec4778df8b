import { type DynamicModule, Module } from '@nestjs/common';
import { SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { SecretsConfig } from './secrets.config.js';

/** Composition root of the secrets service: wires domain, transports and infrastructure. */
@Module({})
export class SecretsModule {
  static register(deps: ServiceDependencies<SecretsConfig>): DynamicModule {
    return {
      module: SecretsModule,
      imports: [SomaRuntimeModule.forRoot(deps.runtime)],
    };
  }
}
