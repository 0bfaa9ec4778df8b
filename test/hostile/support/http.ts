/**
 * HTTP tooling for hostile input: every route of every service, found in the Nest controllers' decorators
 * (so a new endpoint is fuzzed without touching the tests), and a raw request helper that can send any bytes
 * from any loopback source address.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { SomaServiceName } from '@soma/contracts';
import { REPO_ROOT } from '../../support/infra.js';

export interface HttpRoute {
  /** Service whose HTTP server serves it (the shared runtime routes are listed for every service). */
  service: SomaServiceName;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** `/v1/tenants/:tenant/api-keys/:id` */
  path: string;
  source: string;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (e.endsWith('.ts') && !e.endsWith('.spec.ts')) out.push(p);
  }
  return out;
}

const join2 = (a: string, b: string) => `/${[a, b].filter(Boolean).join('/')}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');

/** Routes declared by `@Controller(prefix)` + `@Get/@Post/...(path)` in a file. */
function routesIn(file: string): Array<Omit<HttpRoute, 'service'>> {
  const text = readFileSync(file, 'utf8');
  const out: Array<Omit<HttpRoute, 'service'>> = [];
  let prefix: string | null = null;
  const re = /@Controller\(\s*(?:'([^']*)')?\s*\)|@(Get|Post|Put|Delete|Patch)\(\s*(?:'([^']*)')?\s*\)/g;
  for (const m of text.matchAll(re)) {
    if (m[0].startsWith('@Controller')) prefix = m[1] ?? '';
    else if (prefix !== null) out.push({ method: m[2]!.toUpperCase() as HttpRoute['method'], path: join2(prefix, m[3] ?? ''), source: file.slice(REPO_ROOT.length + 1) });
  }
  return out;
}

/** Every HTTP route of every service: its own transport/http controllers plus the runtime's shared ones. */
export function allHttpRoutes(services: readonly SomaServiceName[]): HttpRoute[] {
  const shared = tsFiles(join(REPO_ROOT, 'libs/service-runtime/src')).flatMap(routesIn);
  const out: HttpRoute[] = [];
  for (const service of services) {
    const dir = join(REPO_ROOT, 'apps', service, 'src/transport/http');
    let own: Array<Omit<HttpRoute, 'service'>> = [];
    try {
      own = tsFiles(dir).flatMap(routesIn);
    } catch {
      own = [];
    }
    for (const r of [...own, ...shared]) out.push({ ...r, service });
  }
  return out;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP/1.1 request with exactly these bytes, optionally from another loopback address (127.0.0.x). */
export function httpRaw(url: string, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | string; localAddress?: string; timeoutMs?: number } = {}): Promise<RawResponse> {
  const u = new URL(url);
  // Framed explicitly: Node sends a DELETE/GET body unframed (no chunking), which the server would read as a second request.
  const headers = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path ?? `${u.pathname}${u.search}`, headers, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}), agent: false, insecureHTTPParser: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}
