import type { SomaServiceDefinition } from '@soma/service-runtime';
import { AuthzConfig } from './authz.config.js';
import { AuthzModule } from './authz.module.js';
import { grpcStatusOf } from './transport/grpc/grpc-status.js';
import { httpStatusOf } from './transport/http/http-status.js';

export const authzService: SomaServiceDefinition<AuthzConfig> = {
  service: 'authz',
  configClass: AuthzConfig,
  ports: (c) => ({ grpc: c.AUTHZ_GRPC_PORT, http: c.AUTHZ_HTTP_PORT }),
  module: (deps) => AuthzModule.register(deps),
  grpcStatusOf,
  httpStatusOf,
};
