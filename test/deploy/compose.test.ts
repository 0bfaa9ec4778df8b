import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { composeProject, envNamesOf, PORTS, PUBLIC, RENDER_TIMEOUT_MS, renderDeployment, SECRET_LIKE, secretNamesOf, SERVERS, SERVICES, type ComposeProject } from './rendered.js';

const run = promisify(execFile);
let project: ComposeProject;

beforeAll(() => {
  renderDeployment();
  project = composeProject();
}, RENDER_TIMEOUT_MS);

const networksOf = (name: string) => Object.keys(project.services[name]?.networks ?? {}).sort();

describe('docker-compose.yaml: network isolation', () => {
  it('has a bridge frontend and an internal bridge backend', () => {
    expect(project.networks['frontend']).toMatchObject({ driver: 'bridge' });
    expect(project.networks['frontend']?.internal ?? false).toBe(false);
    expect(project.networks['backend']).toMatchObject({ driver: 'bridge', internal: true });
  });

  it('keeps databases, the broker, OPA and OpenFGA on the backend only, with no published port', () => {
    for (const server of SERVERS) {
      expect(networksOf(server), server).toEqual(['backend']);
      expect(project.services[server]?.ports ?? [], server).toEqual([]);
    }
  });

  it('puts only the public entry points on the frontend and publishes only their HTTP port', () => {
    const onFrontend = Object.keys(project.services).filter((s) => networksOf(s).includes('frontend')).sort();
    expect(onFrontend).toEqual([...PUBLIC].sort());
    for (const svc of SERVICES) {
      const published = (project.services[svc]?.ports ?? []).map((p) => p.target);
      expect(published, svc).toEqual(PUBLIC.has(svc) ? [PORTS[svc].http] : []);
      expect(networksOf(svc), svc).toContain('backend');
    }
  });
});

describe('docker-compose.yaml: secrets and TLS', () => {
  it('passes every credential as a Docker secret file, never as an environment literal', () => {
    for (const svc of SERVICES) {
      const s = project.services[svc]!;
      const env = s.environment ?? {};
      const mounted = new Set((s.secrets ?? []).map((x) => x.target ?? `/run/secrets/${x.source}`));
      for (const name of secretNamesOf(svc)) expect(env[name], `${svc} sets ${name} literally`).toBeUndefined();
      for (const [name, value] of Object.entries(env)) {
        if (!SECRET_LIKE.test(name)) continue;
        expect(name, `${svc}: ${name} must be an X_FILE variable`).toMatch(/_FILE$/);
        expect(mounted.has(String(value)), `${svc}: ${name}=${value} is not a mounted secret`).toBe(true);
      }
      // The TLS private key is a secret too; the certificate and CA are read-only bind mounts.
      expect(mounted.has(String(env['TLS_KEY_PATH'])), `${svc} TLS key`).toBe(true);
      for (const path of [env['TLS_CERT_PATH'], env['TLS_CA_PATH']]) {
        const mount = (s.volumes ?? []).find((v) => v.target === path);
        expect(mount, `${svc} mounts ${path}`).toBeDefined();
        expect(mount?.read_only, `${svc} mounts ${path} read-only`).toBe(true);
      }
      expect(env['TLS_ENABLED']).toBe('true');
    }
  });

  it('serves TLS on the public entry points and requires client certificates on the internal REST APIs', () => {
    for (const svc of SERVICES) {
      expect(project.services[svc]?.environment?.['TLS_HTTP_CLIENT_AUTH'], svc).toBe(PUBLIC.has(svc) ? 'none' : 'require');
    }
  });

  it('mounts exactly the files infra/tls/make-dev-pki.sh writes (<svc>.pem, <svc>.key, ca.pem)', () => {
    for (const svc of SERVICES) {
      const s = project.services[svc]!;
      const keySecret = (s.secrets ?? []).find((x) => (x.target ?? `/run/secrets/${x.source}`) === s.environment?.['TLS_KEY_PATH']);
      expect(project.secrets[keySecret!.source]?.file, svc).toMatch(new RegExp(`/${svc}\\.key$`));
      const sources = (s.volumes ?? []).map((v) => v.source ?? '');
      expect(sources.some((x) => x.endsWith(`/${svc}.pem`)), svc).toBe(true);
      expect(sources.some((x) => x.endsWith('/ca.pem')), svc).toBe(true);
    }
  });

  it('declares every secret as a file', () => {
    for (const [name, secret] of Object.entries(project.secrets)) expect(secret.file, name).toMatch(/^\//);
  });

  it('names only environment variables the services read (the config classes are the source of truth)', () => {
    for (const svc of SERVICES) {
      const known = envNamesOf(svc);
      const unknown = Object.keys(project.services[svc]?.environment ?? {}).filter((k) => !known.has(k));
      expect(unknown, `${svc} sets variables its config does not read`).toEqual([]);
    }
  });
});

describe('docker-compose.yaml: hardening, health and limits', () => {
  it('runs the five services read-only, non-root, without capabilities or privilege escalation', () => {
    for (const svc of SERVICES) {
      const s = project.services[svc]!;
      expect(s.command, svc).toEqual([svc]);
      expect(s.read_only, svc).toBe(true);
      expect(s.user, svc).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      expect(s.cap_drop, svc).toEqual(['ALL']);
      expect(s.security_opt, svc).toContain('no-new-privileges:true');
    }
  });

  it('gives every container a restart policy and CPU/memory limits, and a health check where the image allows one', () => {
    for (const [name, s] of Object.entries(project.services)) {
      expect(s.restart, name).toMatch(/^(unless-stopped|always|on-failure)/);
      if (name === 'openfga-migrate') continue; // one-shot job
      expect(s.deploy?.resources?.limits?.cpus, name).toBeDefined();
      expect(s.deploy?.resources?.limits?.memory, name).toBeDefined();
      // OPA's static image has neither a shell nor an HTTP client; authz's /readyz checks OPA instead.
      if (name !== 'opa') expect(s.healthcheck?.test?.[0], name).toBe('CMD');
    }
  });

  it('health-checks a service over plain HTTP and over TLS with the command compose runs', async () => {
    const test = project.services['authz']!.healthcheck!.test!;
    expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    const script = test[3]!;
    const dir = mkdtempSync(join(tmpdir(), 'soma-hc-'));
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=authz'], { timeout: 30_000 });
    const answer = (status: number) => (req: { url?: string }, res: { writeHead(s: number): { end(): void } }) => res.writeHead(req.url === '/healthz' ? status : 404).end();
    const listen = async (server: Server) => {
      const port = await freePort();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      return port;
    };
    const probe = (env: Record<string, string>) =>
      run('node', ['-e', script], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 20_000 }).then(() => 0, (e: { code?: number }) => e.code ?? -1);

    const plain = createHttpServer(answer(200));
    const tls = createHttpsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, answer(200));
    const sick = createHttpServer(answer(503));
    try {
      const [p1, p2, p3] = [await listen(plain), await listen(tls), await listen(sick)];
      expect(await probe({ AUTHZ_HTTP_PORT: String(p1), TLS_ENABLED: 'false' })).toBe(0);
      expect(await probe({ AUTHZ_HTTP_PORT: String(p2), TLS_ENABLED: 'true' })).toBe(0);
      expect(await probe({ AUTHZ_HTTP_PORT: String(p3), TLS_ENABLED: 'false' })).toBe(1);
      expect(await probe({ AUTHZ_HTTP_PORT: String(p2), TLS_ENABLED: 'false' })).toBe(1);
    } finally {
      for (const s of [plain, tls, sick]) s.close();
    }
  });
});
