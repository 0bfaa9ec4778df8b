import type { SomaServiceDefinition } from '@soma/service-runtime';
import { RetentionConfig } from './retention.config.js';
import { RetentionModule } from './retention.module.js';
import { grpcStatusOf } from './transport/grpc/grpc-status.js';
import { httpStatusOf } from './transport/http/http-status.js';

export const retentionService: SomaServiceDefinition<RetentionConfig> = {
  service: 'retention',
  configClass: RetentionConfig,
  ports: (c) => ({ grpc: c.RETENTION_GRPC_PORT, http: c.RETENTION_HTTP_PORT }),
  module: (deps) => RetentionModule.register(deps),
  grpcStatusOf,
  httpStatusOf,
};
