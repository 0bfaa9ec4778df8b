import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthzClient } from '@soma/authz-client';
import { grpcClientCredentials } from '@soma/service-runtime';
import { startAuthz, uniqueTenant, type RunningAuthz } from '../authz/helpers.js';
import { OPA_URL, REPO_ROOT } from '../support/infra.js';

// A real service (authz, in-process, against the real OPA) started with certificates of a throw-away CA made
// by openssl for this run (infra/tls/make-dev-pki.sh into a temp dir), as compose runs it: TLS on both
// listeners, mutual TLS on gRPC (TLS_CA_PATH) and on its internal REST API (TLS_HTTP_CLIENT_AUTH=require).

const run = promisify(execFile);
const pki = join(mkdtempSync(join(tmpdir(), 'soma-service-tls-')), 'tls');
const f = (name: string) => join(pki, name);
let authz: RunningAuthz;
let grpcAddress = '';
let httpPort = 0;

beforeAll(async () => {
  await run('bash', [join(REPO_ROOT, 'infra/tls/make-dev-pki.sh'), pki], { timeout: 60_000 });
  authz = await startAuthz({
    OPA_URL,
    TLS_ENABLED: 'true',
    TLS_CERT_PATH: f('authz.pem'),
    TLS_KEY_PATH: f('authz.key'),
    TLS_CA_PATH: f('ca.pem'),
    TLS_HTTP_CLIENT_AUTH: 'require',
  });
  const ports = authz.service.config;
  grpcAddress = `localhost:${ports.AUTHZ_GRPC_PORT}`;
  httpPort = ports.AUTHZ_HTTP_PORT;
}, 120_000);

afterAll(async () => {
  await authz?.stop();
});

function client(credentials: grpc.ChannelCredentials): AuthzClient {
  return new AuthzClient({ address: grpcAddress, deadlineMs: 10_000, credentials });
}

function httpsGet(path: string, tls: { cert?: Buffer; key?: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port: httpPort, path, ca: readFileSync(f('ca.pem')), timeout: 10_000, ...tls }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('authz served over TLS with mutual TLS between the suite\'s services', () => {
  it('answers CheckTool to a sibling presenting its suite certificate (the seed example: web_search allowed)', async () => {
    const sibling = client(grpcClientCredentials({ TLS_ENABLED: true, TLS_CA_PATH: f('ca.pem'), TLS_CERT_PATH: f('secrets.pem'), TLS_KEY_PATH: f('secrets.key') }));
    try {
      expect(await sibling.checkTool('web_search', { sub: 'u-tls', tenant: uniqueTenant('tls') })).toMatchObject({ allowed: true, reason: 'allowed' });
    } finally {
      sibling.close();
    }
  });

  it('refuses a TLS client without a client certificate, and a plain-text client', async () => {
    for (const credentials of [grpc.credentials.createSsl(readFileSync(f('ca.pem'))), grpc.credentials.createInsecure()]) {
      const c = client(credentials);
      try {
        await expect(c.checkTool('web_search', { sub: 'u-tls', tenant: 'acme' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } finally {
        c.close();
      }
    }
  });

  it('serves probes over HTTPS without a client certificate, and its REST API only with one', async () => {
    expect(await httpsGet('/healthz', {})).toBe(200);
    expect(await httpsGet('/v1/policies', {})).toBe(401);
    expect(await httpsGet('/v1/policies', { cert: readFileSync(f('retention.pem')), key: readFileSync(f('retention.key')) })).toBe(200);
  });
});
