import { type DynamicModule, Module } from '@nestjs/common';
import { SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { RetentionConfig } from './retention.config.js';

/** Composition root of the retention service: wires domain, transports and infrastructure. */
@Module({})
export class RetentionModule {
  static register(deps: ServiceDependencies<RetentionConfig>): DynamicModule {
    return {
      module: RetentionModule,
      imports: [SomaRuntimeModule.forRoot(deps.runtime)],
    };
  }
}
