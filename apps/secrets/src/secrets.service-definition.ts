import type { SomaServiceDefinition } from '@soma/service-runtime';
import { SecretsConfig } from './secrets.config.js';
import { SecretsModule } from './secrets.module.js';
import { grpcStatusOf } from './transport/grpc/grpc-status.js';
import { httpStatusOf } from './transport/http/http-status.js';

export const secretsService: SomaServiceDefinition<SecretsConfig> = {
  service: 'secrets',
  configClass: SecretsConfig,
  ports: (c) => ({ grpc: c.SECRETS_GRPC_PORT, http: c.SECRETS_HTTP_PORT }),
  module: (deps) => SecretsModule.register(deps),
  grpcStatusOf,
  httpStatusOf,
};
