import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as plainRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Controller, Get, Module, Req, type DynamicModule } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommonConfig, ConfigError } from '@soma/config';
import { grpcClientConstructor } from '@soma/contracts';
import { SomaRuntimeModule, startSomaService, type SomaServiceDefinition, type StartedService } from '@soma/service-runtime';
import { freePort } from '../support/ports.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'soma-tls-'));
const file = (name: string) => join(dir, name);

/** openssl with an argument array (never a shell string). */
async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir, timeout: 30_000 });
}

async function makeCa(name: string): Promise<void> {
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-days', '1', '-subj', `/CN=${name}`);
}

/** A leaf certificate signed by `ca`, usable for both ends of a mutual TLS connection. */
async function makeLeaf(name: string, ca: string): Promise<void> {
  writeFileSync(file(`${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n');
  await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}`);
  await openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-CAcreateserial', '-days', '1', '-out', file(`${name}.pem`), '-extfile', file(`${name}.ext`));
}

const pem = (name: string) => readFileSync(file(name));

/** A REST route behind the client-certificate guard that tells who the peer is. */
@Controller('v1/tls-test')
class WhoAmIController {
  @Get('whoami')
  whoami(@Req() req: { socket: TLSSocket }): { subject: string | null } {
    const peer = req.socket.getPeerCertificate?.();
    return { subject: peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : null };
  }
}

@Module({})
class TlsTestModule {}

/** The shared runtime (health, GetServiceInfo, listeners) with one REST route: TLS lives there, not in a service's domain. */
function definition(ports: { grpc: number; http: number }): SomaServiceDefinition<CommonConfig> {
  return {
    service: 'authz',
    configClass: CommonConfig,
    ports: () => ports,
    module: (deps): DynamicModule => ({ module: TlsTestModule, imports: [SomaRuntimeModule.forRoot(deps.runtime)], controllers: [WhoAmIController] }),
    grpcStatusOf: () => grpc.status.INTERNAL,
    httpStatusOf: () => 500,
  };
}

const started: StartedService<CommonConfig>[] = [];
async function start(env: Record<string, string>): Promise<{ grpcPort: number; httpPort: number }> {
  const ports = { grpc: await freePort(), http: await freePort() };
  const s = await startSomaService(definition(ports), {
    ...process.env,
    LOG_LEVEL: 'silent',
    OTEL_ENABLED: 'false',
    // One outbox per instance: a buffer directory of its own.
    EVENT_BUFFER_DIR: mkdtempSync(join(dir, 'buffer-')),
    ...env,
  });
  started.push(s);
  return { grpcPort: ports.grpc, httpPort: ports.http };
}

const AuthzClient: typeof grpc.Client = grpcClientConstructor('authz');

function serviceInfo(port: number, creds: grpc.ChannelCredentials): Promise<{ service: string }> {
  const client = new AuthzClient(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost' }) as grpc.Client & { GetServiceInfo: (req: object, opts: object, cb: (e: grpc.ServiceError | null, r: { service: string }) => void) => void };
  return new Promise<{ service: string }>((resolve, reject) =>
    client.GetServiceInfo({}, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r))),
  ).finally(() => client.close());
}

async function refusedCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    return (e as grpc.ServiceError).code;
  }
  throw new Error('the call succeeded but should have been refused');
}

interface HttpAnswer { status: number; body: string; contentType?: string }
function httpsGet(port: number, path: string, tlsOptions: { ca?: Buffer; cert?: Buffer; key?: Buffer }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, path, method: 'GET', timeout: 10_000, ...tlsOptions }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, contentType: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

beforeAll(async () => {
  await makeCa('suite-ca');
  await makeCa('rogue-ca');
  await makeLeaf('authz', 'suite-ca');
  await makeLeaf('auth', 'suite-ca');
  await makeLeaf('intruder', 'rogue-ca');
});

afterAll(async () => {
  for (const s of started) await s.stop();
});

describe('TLS on both listeners (TLS_ENABLED, no CA)', () => {
  let ports: { grpcPort: number; httpPort: number };
  beforeAll(async () => {
    ports = await start({ TLS_ENABLED: 'true', TLS_CERT_PATH: file('authz.pem'), TLS_KEY_PATH: file('authz.key') });
  });

  it('answers gRPC over TLS to a client that trusts the CA', async () => {
    const info = await serviceInfo(ports.grpcPort, grpc.credentials.createSsl(pem('suite-ca.pem')));
    expect(info.service).toBe('authz');
  });

  it('answers HTTPS on /healthz and presents the configured certificate', async () => {
    const answer = await httpsGet(ports.httpPort, '/healthz', { ca: pem('suite-ca.pem') });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
  });

  it('refuses plain-text gRPC and plain-text HTTP', async () => {
    const code = await refusedCode(serviceInfo(ports.grpcPort, grpc.credentials.createInsecure()));
    expect(code).toBe(grpc.status.UNAVAILABLE);
    const plain = await new Promise<string>((resolve) => {
      const req = plainRequest({ host: '127.0.0.1', port: ports.httpPort, path: '/healthz', timeout: 10_000 }, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      req.end();
    });
    expect(plain).toMatch(/^error /);
  });

  it('refuses a client that does not trust the suite CA (no silent downgrade of verification)', async () => {
    const code = await refusedCode(serviceInfo(ports.grpcPort, grpc.credentials.createSsl(pem('rogue-ca.pem'))));
    expect(code).toBe(grpc.status.UNAVAILABLE);
    await expect(httpsGet(ports.httpPort, '/healthz', { ca: pem('rogue-ca.pem') })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
  });
});

describe('mutual TLS (TLS_CA_PATH): only the suite\'s own services get in', () => {
  let ports: { grpcPort: number; httpPort: number };
  beforeAll(async () => {
    ports = await start({
      TLS_ENABLED: 'true',
      TLS_CERT_PATH: file('authz.pem'),
      TLS_KEY_PATH: file('authz.key'),
      TLS_CA_PATH: file('suite-ca.pem'),
      TLS_HTTP_CLIENT_AUTH: 'require',
    });
  });

  it('accepts a gRPC client presenting a certificate issued by the suite CA', async () => {
    const creds = grpc.credentials.createSsl(pem('suite-ca.pem'), pem('auth.key'), pem('auth.pem'));
    expect((await serviceInfo(ports.grpcPort, creds)).service).toBe('authz');
  });

  it('refuses a gRPC client without a client certificate', async () => {
    const code = await refusedCode(serviceInfo(ports.grpcPort, grpc.credentials.createSsl(pem('suite-ca.pem'))));
    expect(code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses a gRPC client whose certificate another CA issued', async () => {
    const creds = grpc.credentials.createSsl(pem('suite-ca.pem'), pem('intruder.key'), pem('intruder.pem'));
    const code = await refusedCode(serviceInfo(ports.grpcPort, creds));
    expect(code).toBe(grpc.status.UNAVAILABLE);
  });

  it('keeps /healthz and /readyz reachable for probes without a client certificate', async () => {
    expect((await httpsGet(ports.httpPort, '/healthz', { ca: pem('suite-ca.pem') })).status).toBe(200);
    const ready = await httpsGet(ports.httpPort, '/readyz', { ca: pem('suite-ca.pem') });
    expect([200, 503]).toContain(ready.status);
    expect(JSON.parse(ready.body).status).toMatch(/ready/);
  });

  it('refuses REST routes without a verified client certificate (401 problem+json)', async () => {
    const none = await httpsGet(ports.httpPort, '/v1/tls-test/whoami', { ca: pem('suite-ca.pem') });
    expect(none.status).toBe(401);
    expect(none.contentType).toContain('application/problem+json');
    expect(JSON.parse(none.body).code).toBe('client_certificate_required');
    const rogue = await httpsGet(ports.httpPort, '/v1/tls-test/whoami', { ca: pem('suite-ca.pem'), cert: pem('intruder.pem'), key: pem('intruder.key') });
    expect(rogue.status).toBe(401);
  });

  it('serves REST routes to a suite client certificate and exposes its identity', async () => {
    const ok = await httpsGet(ports.httpPort, '/v1/tls-test/whoami', { ca: pem('suite-ca.pem'), cert: pem('auth.pem'), key: pem('auth.key') });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ subject: 'auth' });
  });
});

describe('TLS misconfiguration stops start-up', () => {
  it('refuses TLS_ENABLED=true with a missing key file, naming the variable', async () => {
    const ports = { grpc: await freePort(), http: await freePort() };
    const attempt = startSomaService(definition(ports), { ...process.env, LOG_LEVEL: 'silent', OTEL_ENABLED: 'false', EVENT_BUFFER_DIR: mkdtempSync(join(dir, 'buffer-')), TLS_ENABLED: 'true', TLS_CERT_PATH: file('authz.pem'), TLS_KEY_PATH: file('missing.key') });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(/TLS_KEY_PATH: cannot read the file \(ENOENT\)/);
  });
});
