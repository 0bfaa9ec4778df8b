import type { SomaServiceDefinition } from '@soma/service-runtime';
import { AuthConfig } from './auth.config.js';
import { AuthModule } from './auth.module.js';
import { grpcStatusOf } from './transport/grpc/grpc-status.js';
import { httpStatusOf } from './transport/http/http-status.js';

export const authService: SomaServiceDefinition<AuthConfig> = {
  service: 'auth',
  configClass: AuthConfig,
  ports: (c) => ({ grpc: c.AUTH_GRPC_PORT, http: c.AUTH_HTTP_PORT }),
  module: (deps) => AuthModule.register(deps),
  grpcStatusOf,
  httpStatusOf,
  cors: (c) => ({ origins: c.CORS_ORIGINS, allowCredentials: c.CORS_ALLOW_CREDENTIALS }),
  trustProxy: (c) => c.TRUST_PROXY,
};
