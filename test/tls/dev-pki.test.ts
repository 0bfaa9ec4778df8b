import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Module, type DynamicModule } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommonConfig } from '@soma/config';
import { grpcClientConstructor } from '@soma/contracts';
import { grpcClientCredentials, SomaRuntimeModule, startSomaService, type StartedService } from '@soma/service-runtime';
import { cliChannelCredentials } from '../../apps/cli/src/grpc-credentials.js';
import { REPO_ROOT } from '../support/infra.js';
import { freePort } from '../support/ports.js';

// infra/tls/make-dev-pki.sh makes the certificates docker compose mounts. Proven here: every certificate chains
// to the CA, serves both ends of mutual TLS, and names the service as compose and Kubernetes address it; a
// service started with them (mutual TLS on gRPC) answers a sibling presenting its own certificate at the
// compose name (authz) and at the Kubernetes name (soma-authz), through grpcClientCredentials (the code the
// services use to call each other), and refuses a client without a certificate.

const run = promisify(execFile);
const out = join(mkdtempSync(join(tmpdir(), 'soma-dev-pki-')), 'tls');
const SERVICES = ['auth', 'authz', 'secrets', 'audit', 'retention'];

@Module({})
class EmptyModule {}

let service: StartedService<CommonConfig> | undefined;
let grpcPort = 0;

beforeAll(async () => {
  await run('bash', [join(REPO_ROOT, 'infra/tls/make-dev-pki.sh'), out], { timeout: 60_000 });
  grpcPort = await freePort();
  const httpPort = await freePort();
  service = await startSomaService(
    {
      service: 'authz',
      configClass: CommonConfig,
      ports: () => ({ grpc: grpcPort, http: httpPort }),
      module: (deps): DynamicModule => ({ module: EmptyModule, imports: [SomaRuntimeModule.forRoot(deps.runtime)] }),
      grpcStatusOf: () => grpc.status.INTERNAL,
      httpStatusOf: () => 500,
    },
    {
      ...process.env,
      LOG_LEVEL: 'silent',
      OTEL_ENABLED: 'false',
      EVENT_BUFFER_DIR: mkdtempSync(join(tmpdir(), 'soma-dev-pki-buffer-')),
      TLS_ENABLED: 'true',
      TLS_CERT_PATH: join(out, 'authz.pem'),
      TLS_KEY_PATH: join(out, 'authz.key'),
      TLS_CA_PATH: join(out, 'ca.pem'),
    },
  );
}, 120_000);

afterAll(async () => {
  await service?.stop();
});

const AuthzClient: typeof grpc.Client = grpcClientConstructor('authz');

function serviceInfo(creds: grpc.ChannelCredentials, name: string): Promise<{ service: string }> {
  const client = new AuthzClient(`127.0.0.1:${grpcPort}`, creds, { 'grpc.ssl_target_name_override': name, 'grpc.default_authority': name }) as grpc.Client & {
    GetServiceInfo: (req: object, opts: object, cb: (e: grpc.ServiceError | null, r: { service: string }) => void) => void;
  };
  return new Promise<{ service: string }>((resolve, reject) => client.GetServiceInfo({}, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r)))).finally(() => client.close());
}

describe('infra/tls/make-dev-pki.sh', () => {
  it('issues one certificate per service, chained to the CA, for server and client use, named for compose and Kubernetes', async () => {
    for (const svc of SERVICES) {
      await run('openssl', ['verify', '-CAfile', join(out, 'ca.pem'), '-purpose', 'sslserver', join(out, `${svc}.pem`)]);
      await run('openssl', ['verify', '-CAfile', join(out, 'ca.pem'), '-purpose', 'sslclient', join(out, `${svc}.pem`)]);
      const { stdout } = await run('openssl', ['x509', '-in', join(out, `${svc}.pem`), '-noout', '-ext', 'subjectAltName']);
      for (const name of [svc, `soma-${svc}`, `soma-${svc}.soma.svc`, `soma-${svc}.soma.svc.cluster.local`]) expect(stdout, svc).toContain(`DNS:${name},`);
      // Private keys: owner-only (docker compose mounts secret files with their host mode).
      expect(statSync(join(out, `${svc}.key`)).mode & 0o077, svc).toBe(0);
    }
    expect(statSync(join(out, 'ca.key')).mode & 0o077).toBe(0);
  });

  it('lets a sibling service in over mutual TLS at the compose and the Kubernetes name, and nobody without a certificate', async () => {
    const sibling = grpcClientCredentials({ TLS_ENABLED: true, TLS_CA_PATH: join(out, 'ca.pem'), TLS_CERT_PATH: join(out, 'secrets.pem'), TLS_KEY_PATH: join(out, 'secrets.key') });
    expect((await serviceInfo(sibling, 'authz')).service).toBe('authz');
    expect((await serviceInfo(sibling, 'soma-authz.soma.svc')).service).toBe('authz');
    const anonymous = grpc.credentials.createSsl(readFileSync(join(out, 'ca.pem')));
    await expect(serviceInfo(anonymous, 'authz')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('lets the operator CLI in with the same TLS_* variables (npx soma … under mutual TLS), and not without them', async () => {
    const operator = { TLS_ENABLED: 'true', TLS_CA_PATH: join(out, 'ca.pem'), TLS_CERT_PATH: join(out, 'auth.pem'), TLS_KEY_PATH: join(out, 'auth.key') };
    expect((await serviceInfo(cliChannelCredentials(operator), 'localhost')).service).toBe('authz');
    await expect(serviceInfo(cliChannelCredentials({ TLS_ENABLED: 'true', TLS_CA_PATH: join(out, 'ca.pem') }), 'localhost')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(serviceInfo(cliChannelCredentials({}), 'localhost')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(() => cliChannelCredentials({ TLS_ENABLED: 'true', TLS_CERT_PATH: join(out, 'auth.pem') })).toThrow(/set both or neither/);
  });
});
