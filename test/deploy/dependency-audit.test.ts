import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/infra.js';
import { freePort } from '../support/ports.js';

// scripts/audit-deps.sh (the dependency-audit step of `npm test`) against a local registry that answers npm's
// bulk advisory endpoint as the npm registry does: the gate must fail on a high advisory for an installed
// production dependency, pass on a clean report, and say NOT CHECKED (exit 75) when the endpoint refuses.

const run = promisify(execFile);
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };
// A production dependency that is certainly installed (ioredis is used by auth and secrets).
const victim = 'ioredis';
const version = lock.packages[`node_modules/${victim}`]!.version!;

type Mode = 'vulnerable' | 'clean' | 'refuse';
let mode: Mode = 'clean';
let server: Server;
let registry = '';
const advisoryRequests: string[][] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    if (req.url?.startsWith('/-/npm/v1/security/advisories/bulk')) {
      if (mode === 'refuse') return void res.writeHead(405, { allow: 'GET,HEAD' }).end();
      // npm may gzip the request body; the test only needs to know a request came.
      advisoryRequests.push([req.headers['content-encoding'] ?? 'identity']);
      const advisories = mode === 'vulnerable'
        ? { [victim]: [{ id: 1999001, url: 'https://example.invalid/advisory/1999001', title: 'Test advisory: remote code execution', severity: 'high', vulnerable_versions: `<=${version}`, cwe: ['CWE-94'], cvss: { score: 8.1, vectorString: null } }] }
        : {};
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(advisories));
    }
    // The packument of the advised package (npm computes the affected versions from it).
    if (req.url === `/${victim}`) {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: victim, 'dist-tags': { latest: version }, versions: { [version]: { name: victim, version, dependencies: {} } } }));
    }
    res.writeHead(404).end('{}');
  });
}

beforeAll(async () => {
  const port = await freePort();
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  registry = `http://127.0.0.1:${port}/`;
});

afterAll(() => {
  server.close();
});

async function audit(env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const opts = { cwd: REPO_ROOT, timeout: 120_000, env: { ...process.env, npm_config_registry: registry, ...env } };
  return run('bash', ['scripts/audit-deps.sh'], opts).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
}

describe('scripts/audit-deps.sh (npm audit --omit=dev --audit-level=high)', () => {
  it('fails on a high advisory against an installed production dependency, naming it', async () => {
    mode = 'vulnerable';
    const { code, out } = await audit();
    expect(out).toContain(`HIGH ${victim}`);
    expect(out).toContain('Test advisory: remote code execution');
    expect(code).toBe(1);
  });

  it('passes on a clean report', async () => {
    mode = 'clean';
    const { code, out } = await audit();
    expect(out).toMatch(/production dependencies: 0 critical, 0 high/);
    expect(code).toBe(0);
  });

  it('says NOT CHECKED (75) when the advisory endpoint refuses, and fails when the audit is required', async () => {
    mode = 'refuse';
    const refused = await audit();
    expect(refused.out).toMatch(/dependency audit NOT CHECKED: 405 Method Not Allowed/);
    expect(refused.code).toBe(75);
    expect((await audit({ SOMA_REQUIRE_DEP_AUDIT: '1' })).code).toBe(1);
    expect(advisoryRequests.length).toBeGreaterThanOrEqual(2);
  });
});
