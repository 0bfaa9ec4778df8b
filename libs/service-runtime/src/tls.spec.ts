import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@soma/config';
import { clientCertificateGuard, httpsServerOptions, loadServerTls } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'soma-tls-spec-'));
const pem = (name: string, label: string) => {
  const path = join(dir, name);
  writeFileSync(path, `-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`);
  return path;
};
const cert = pem('cert.pem', 'CERTIFICATE');
const key = pem('key.pem', 'PRIVATE KEY');
const ca = pem('ca.pem', 'CERTIFICATE');
const notPem = join(dir, 'not.pem');
writeFileSync(notPem, 'hello');

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadServerTls', () => {
  it('is off by default', () => {
    expect(loadServerTls({ TLS_ENABLED: false })).toBeUndefined();
  });

  it('refuses certificate paths without TLS_ENABLED rather than silently serving plain text', () => {
    expect(problemsOf(() => loadServerTls({ TLS_ENABLED: false, TLS_CERT_PATH: cert, TLS_KEY_PATH: key })).join()).toMatch(/TLS_CERT_PATH, TLS_KEY_PATH set but TLS_ENABLED/);
  });

  it('names every missing or unreadable file, never its content', () => {
    const problems = problemsOf(() => loadServerTls({ TLS_ENABLED: true, TLS_KEY_PATH: join(dir, 'absent.pem'), TLS_CA_PATH: notPem }));
    expect(problems).toEqual([
      'TLS_CERT_PATH is required when TLS_ENABLED=true',
      'TLS_KEY_PATH: cannot read the file (ENOENT)',
      'TLS_CA_PATH: the file is not PEM',
    ]);
    expect(problems.join()).not.toContain('hello');
  });

  it('serves server-only TLS without a CA and mutual TLS on gRPC with one', () => {
    const server = loadServerTls({ TLS_ENABLED: true, TLS_CERT_PATH: cert, TLS_KEY_PATH: key })!;
    expect(server.grpcClientAuth).toBe(false);
    expect(server.ca).toBeUndefined();
    const mutual = loadServerTls({ TLS_ENABLED: true, TLS_CERT_PATH: cert, TLS_KEY_PATH: key, TLS_CA_PATH: ca })!;
    expect(mutual.grpcClientAuth).toBe(true);
    expect(mutual.httpClientAuth).toBe(false);
    expect(mutual.ca?.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('needs a CA to require HTTP client certificates', () => {
    expect(problemsOf(() => loadServerTls({ TLS_ENABLED: true, TLS_CERT_PATH: cert, TLS_KEY_PATH: key, TLS_HTTP_CLIENT_AUTH: 'require' }))).toEqual([
      'TLS_HTTP_CLIENT_AUTH=require needs TLS_CA_PATH (the CA client certificates are checked against)',
    ]);
  });
});

describe('httpsServerOptions', () => {
  it('requires TLS 1.2+ and requests client certificates only when HTTP client auth is on', () => {
    const plain = httpsServerOptions(loadServerTls({ TLS_ENABLED: true, TLS_CERT_PATH: cert, TLS_KEY_PATH: key, TLS_CA_PATH: ca })!) as Record<string, unknown>;
    expect(plain['minVersion']).toBe('TLSv1.2');
    expect(plain['requestCert']).toBeUndefined();
    const required = httpsServerOptions(loadServerTls({ TLS_ENABLED: true, TLS_CERT_PATH: cert, TLS_KEY_PATH: key, TLS_CA_PATH: ca, TLS_HTTP_CLIENT_AUTH: 'require' })!) as Record<string, unknown>;
    // The handshake lets a certificate-less probe in; the route guard refuses everything else.
    expect(required).toMatchObject({ requestCert: true, rejectUnauthorized: false });
  });
});

describe('clientCertificateGuard', () => {
  function run(path: string, authorized: boolean) {
    const sent: { status?: number; type?: string; body?: string; next: boolean } = { next: false };
    const res = {
      status(code: number) { sent.status = code; return res; },
      type(t: string) { sent.type = t; return res; },
      send(body: string) { sent.body = body; return res; },
    };
    clientCertificateGuard()({ path, socket: { authorized } }, res, () => { sent.next = true; });
    return sent;
  }

  it('lets probes and metrics through without a certificate', () => {
    for (const p of ['/healthz', '/readyz', '/metrics']) expect(run(p, false).next).toBe(true);
  });

  it('refuses other routes without a verified certificate with 401 problem+json', () => {
    const r = run('/v1/check', false);
    expect(r.next).toBe(false);
    expect(r.status).toBe(401);
    expect(r.type).toBe('application/problem+json');
    expect(JSON.parse(r.body!)).toMatchObject({ status: 401, code: 'client_certificate_required' });
    expect(run('/healthz/../v1/check', false).next).toBe(false);
  });

  it('passes routes when the handshake verified the client certificate', () => {
    expect(run('/v1/check', true).next).toBe(true);
  });
});
