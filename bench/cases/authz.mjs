// AuthzService.CheckTool against OPA's POST /v1/data/tool_policy/allow called directly, and
// AuthzService.Check against OpenFGA's Check called directly; same concurrency, same inputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, freePort, startService } from '../lib/common.mjs';
import { describeRun, ghz, vegeta } from '../lib/load.mjs';
import { startAuth } from './auth.mjs';

const PROTO = 'soma/authz/v1/authz.proto';
const OPA_URL = process.env.OPA_URL ?? `http://127.0.0.1:${process.env.OPA_PORT ?? 20009}`;
const FGA_URL = process.env.OPENFGA_API_URL ?? `http://127.0.0.1:${process.env.OPENFGA_HTTP_PORT ?? 8080}`;

/**
 * authz as it runs in production (NODE_ENV=production: callers authenticated by auth, AUTHZ_CALLER_AUTH
 * defaults to required), with its own auth process (a dependency: not pinned) and a caller credential
 * (JWT, tenant *, authz:check) that the load generator sends as `authorization` metadata.
 */
async function startAuthz(ctx, env, tag) {
  const auth = await startAuth('HS256', { ...ctx, pinAuth: false });
  try {
    const caller = (await auth.client.call('IssueToken', { tenant: '*', sub: 'bench-service', scopes: ['authz:check'], ttl_seconds: 7200 }, auth.admin)).token;
    const svc = await startService('authz', { AUTHZ_GRPC_PORT: String(await freePort()), AUTHZ_HTTP_PORT: String(await freePort()), AUTHZ_POLICY_MODE: 'server', OPA_URL, AUTHZ_GRANTED_EVENTS: 'none', AUTH_GRPC_ADDRESS: auth.svc.grpc, ...env }, { nodeArgs: ctx.nodeArgs('authz', tag) });
    const stop = svc.stop;
    return Object.assign(svc, {
      metadata: { authorization: `Bearer ${caller}` },
      async stop() {
        await stop();
        auth.client.close();
        await auth.svc.stop();
      },
    });
  } catch (e) {
    auth.client.close();
    await auth.svc.stop();
    throw e;
  }
}

/** The same input document authz builds (apps/authz/src/domain/policy-input.ts toolInputJson). */
function toolInput(tool, p) {
  return JSON.stringify({ tool, tenant: p.tenant, user: p.sub, persona_id: p.persona_id, principal: { sub: p.sub, tenant: p.tenant, persona_id: p.persona_id } });
}

function toolRequests(n) {
  const tools = ['web_search', 'code_execution', 'file_read', 'browser'];
  return Array.from({ length: n }, (_, i) => ({ tool: tools[i % tools.length], principal: { sub: `user-${i}`, tenant: i % 3 === 0 ? 'trusted' : `tenant-${i % 7}`, persona_id: 'default' } }));
}

async function checkTool(ctx, cacheTtlMs) {
  const reqs = toolRequests(100);
  const svc = await startAuthz(ctx, { AUTHZ_DECISION_CACHE_TTL_MS: String(cacheTtlMs), OPENFGA_ENABLED: 'false' }, `cache${cacheTtlMs}`);
  try {
    const opa = await vegeta({ targets: reqs.map((r) => ({ method: 'POST', url: `${OPA_URL}/v1/data/tool_policy/allow`, body: `{"input":${toolInput(r.tool, r.principal)}}` })), concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup });
    describeRun('OPA direct', opa);
    const target = await ghz({ address: svc.grpc, proto: PROTO, call: 'soma.authz.v1.AuthzService.CheckTool', data: reqs, metadata: svc.metadata, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: svc.pid });
    describeRun(`CheckTool (cache ${cacheTtlMs} ms)`, target);
    const empty = await ghz({ address: svc.grpc, proto: PROTO, call: 'soma.authz.v1.AuthzService.GetServiceInfo', data: {}, metadata: svc.metadata, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: svc.pid });
    describeRun('empty call', empty);
    return {
      id: cacheTtlMs ? 'check-tool' : 'check-tool-nocache',
      path: `AuthzService.CheckTool${cacheTtlMs ? '' : ' (decision cache off)'}`,
      goal: { text: 'throughput ≥ 1.0× OPA direct', baseline: 'opa-direct', min: 1.0 },
      target,
      baselines: { 'opa-direct': opa, 'empty-call': empty },
      notes: [
        `${reqs.length} distinct (tool, principal) inputs round-robin, allowed and denied mixed; AUTHZ_DECISION_CACHE_TTL_MS=${cacheTtlMs}${cacheTtlMs ? ' (default: repeated inputs are answered from the cache)' : ' (every call goes to OPA)'}; OPA is the shared local server (not pinned); callers authenticated through auth (own process, not pinned) as in production`,
      ],
    };
  } finally {
    await svc.stop();
  }
}

async function fga(method, path, body) {
  const r = await fetch(`${FGA_URL}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) throw new Error(`OpenFGA ${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function check(ctx) {
  const store = await fga('POST', '/stores', { name: `soma-bench-${Date.now()}` });
  const model = JSON.parse(readFileSync(join(ROOT, 'infra/openfga/model.json'), 'utf8'));
  const { authorization_model_id: modelId } = await fga('POST', `/stores/${store.id}/authorization-models`, model);
  const tuples = Array.from({ length: 200 }, (_, i) => ({ user: `user:u${i}`, relation: i % 2 ? 'owner' : 'viewer', object: `session:s${i}` }));
  for (let i = 0; i < tuples.length; i += 50) await fga('POST', `/stores/${store.id}/write`, { writes: { tuple_keys: tuples.slice(i, i + 50) }, authorization_model_id: modelId });
  // Half the checks hit a tuple (directly or through owner → viewer), half do not.
  const checks = Array.from({ length: 200 }, (_, i) => ({ user: `user:u${i}`, relation: 'viewer', object: i % 4 === 3 ? `session:s${i + 1}` : `session:s${i}` }));
  const svc = await startAuthz(ctx, { OPENFGA_ENABLED: 'true', OPENFGA_API_URL: FGA_URL, OPENFGA_STORE_ID: store.id, OPENFGA_MODEL_ID: modelId }, 'fga');
  try {
    const direct = await vegeta({ targets: checks.map((t) => ({ method: 'POST', url: `${FGA_URL}/stores/${store.id}/check`, body: JSON.stringify({ tuple_key: t, authorization_model_id: modelId }) })), concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup });
    describeRun('OpenFGA direct', direct);
    const target = await ghz({ address: svc.grpc, proto: PROTO, call: 'soma.authz.v1.AuthzService.Check', data: checks.map((tuple) => ({ tuple, tenant: 'bench' })), metadata: svc.metadata, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: svc.pid });
    describeRun('Check', target);
    return {
      id: 'check-openfga',
      path: 'AuthzService.Check (OpenFGA)',
      goal: { text: 'throughput ≥ 1.0× OpenFGA direct', baseline: 'openfga-direct', min: 1.0 },
      target,
      baselines: { 'openfga-direct': direct },
      notes: [`${checks.length} distinct checks round-robin (¾ allowed), ${tuples.length} tuples, default decision cache; OpenFGA HTTP API direct (memory store unless OPENFGA_DATASTORE=postgres), not pinned`],
    };
  } finally {
    await svc.stop();
    await fga('DELETE', `/stores/${store.id}`).catch(() => undefined);
  }
}

export const cases = {
  'check-tool': (ctx) => checkTool(ctx, 2000),
  'check-tool-nocache': (ctx) => checkTool(ctx, 0),
  'check-openfga': check,
};
