import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type SomaServiceName = 'auth' | 'authz' | 'secrets' | 'audit' | 'retention';

/** gRPC package and service names, one per service: `soma.<service>.v1.<Service>Service`. */
export const GrpcServices: Readonly<Record<SomaServiceName, { package: string; service: string; file: string }>> = {
  auth: { package: 'soma.auth.v1', service: 'AuthService', file: 'soma/auth/v1/auth.proto' },
  authz: { package: 'soma.authz.v1', service: 'AuthzService', file: 'soma/authz/v1/authz.proto' },
  secrets: { package: 'soma.secrets.v1', service: 'SecretsService', file: 'soma/secrets/v1/secrets.proto' },
  audit: { package: 'soma.audit.v1', service: 'AuditService', file: 'soma/audit/v1/audit.proto' },
  retention: { package: 'soma.retention.v1', service: 'RetentionService', file: 'soma/retention/v1/retention.proto' },
};

/**
 * The folder holding the .proto files. `SOMA_PROTO_DIR` wins (images copy the protos there);
 * otherwise it is found beside the sources, from `src/` and from `dist/libs/contracts/src/` alike.
 */
export function protoRoot(): string {
  const fromEnv = process.env['SOMA_PROTO_DIR'];
  if (fromEnv) return resolve(fromEnv);
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../proto'), join(here, '../../../../libs/contracts/proto')];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`proto folder not found (looked in ${candidates.join(', ')}); set SOMA_PROTO_DIR`);
  return found;
}

export function protoPath(service: SomaServiceName): string {
  return join(protoRoot(), GrpcServices[service].file);
}
