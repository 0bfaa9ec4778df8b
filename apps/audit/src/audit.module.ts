import { type DynamicModule, Module } from '@nestjs/common';
import { SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { AuditConfig } from './audit.config.js';

/** Composition root of the audit service: wires domain, transports and infrastructure. */
@Module({})
export class AuditModule {
  static register(deps: ServiceDependencies<AuditConfig>): DynamicModule {
    return {
      module: AuditModule,
      imports: [SomaRuntimeModule.forRoot(deps.runtime)],
    };
  }
}
