import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { PolicyEvaluator, PolicyOutcome } from '../domain/ports.js';

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

interface OpaResponse {
  status: number;
  body: string;
}

/**
 * A minimal OPA REST client on node:http with a keep-alive agent: the decision hot path is one
 * request on a warm socket, no per-call connection setup, no fetch/undici abstraction cost.
 */
export class OpaHttpClient {
  private readonly agent: http.Agent;
  private readonly base: URL;
  private readonly transport: typeof http | typeof https;

  constructor(baseUrl: string, private readonly timeoutMs: number) {
    this.base = new URL(baseUrl);
    this.transport = this.base.protocol === 'https:' ? https : http;
    const AgentCtor = this.base.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new AgentCtor({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 64, maxFreeSockets: 64, scheduling: 'lifo' });
  }

  request(method: 'GET' | 'POST', path: string, body?: string): Promise<OpaResponse> {
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        {
          host: this.base.hostname,
          port: this.base.port || (this.base.protocol === 'https:' ? 443 : 80),
          method,
          path,
          agent: this.agent,
          headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('OPA response too large'));
            else chunks.push(c);
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`OPA did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Policy decisions from the OPA server: POST /v1/data/<path> with {"input": …}. */
export class OpaHttpEvaluator implements PolicyEvaluator {
  readonly mode = 'server' as const;

  constructor(private readonly client: OpaHttpClient) {}

  async evaluate(path: string, inputJson: string): Promise<PolicyOutcome> {
    let res: OpaResponse;
    try {
      res = await this.client.request('POST', `/v1/data/${path}`, `{"input":${inputJson}}`);
    } catch (e) {
      return { kind: 'unavailable', detail: (e as Error).message };
    }
    if (res.status !== 200) return { kind: 'unavailable', detail: `OPA answered HTTP ${res.status}` };
    let parsed: { result?: unknown };
    try {
      parsed = JSON.parse(res.body) as { result?: unknown };
    } catch {
      return { kind: 'unavailable', detail: 'OPA answered a body that is not JSON' };
    }
    return parsed.result === undefined ? { kind: 'undefined' } : { kind: 'result', value: parsed.result };
  }
}

export interface PolicySetView {
  revision: string;
  policies: { id: string; bytes: number; sha256: string }[];
}

/**
 * Fingerprint of the policy set OPA has loaded (GET /v1/policies): the sha-256 of every module's id
 * and raw text. `--watch` reloads change it; so does any PUT /v1/policies.
 */
export async function fetchPolicySet(client: OpaHttpClient): Promise<PolicySetView & { raw: Map<string, string> }> {
  const res = await client.request('GET', '/v1/policies');
  if (res.status !== 200) throw new Error(`OPA answered HTTP ${res.status} to GET /v1/policies`);
  const body = JSON.parse(res.body) as { result?: { id: string; raw: string }[] };
  const modules = [...(body.result ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const total = createHash('sha256');
  const raw = new Map<string, string>();
  const policies = modules.map((m) => {
    total.update(m.id).update('\0').update(m.raw).update('\0');
    raw.set(m.id, m.raw);
    return { id: m.id, bytes: Buffer.byteLength(m.raw), sha256: createHash('sha256').update(m.raw).digest('hex') };
  });
  return { revision: total.digest('hex').slice(0, 16), policies, raw };
}
