import type { SomaServiceDefinition } from '@soma/service-runtime';
import { AuditConfig } from './audit.config.js';
import { AuditModule } from './audit.module.js';
import { grpcStatusOf } from './transport/grpc/grpc-status.js';
import { httpStatusOf } from './transport/http/http-status.js';

export const auditService: SomaServiceDefinition<AuditConfig> = {
  service: 'audit',
  configClass: AuditConfig,
  ports: (c) => ({ grpc: c.AUDIT_GRPC_PORT, http: c.AUDIT_HTTP_PORT }),
  module: (deps) => AuditModule.register(deps),
  grpcStatusOf,
  httpStatusOf,
};
