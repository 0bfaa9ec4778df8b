// SecretsService.GetSecret (the whole path: auth Authenticate, authz policy, Redis, Fernet, event)
// against Redis HGET + Fernet decrypt in one process.
import { randomBytes, randomUUID } from 'node:crypto';
import { distPath, freePort, log, startService } from '../lib/common.mjs';
import { grpcClient } from '../lib/grpc.mjs';
import { describeRun, ghz, inProcess } from '../lib/load.mjs';
import { startAuth } from './auth.mjs';

const PROTO = 'soma/secrets/v1/secrets.proto';

async function getSecret(ctx) {
  // auth and authz are dependencies here: they float over both cores; secrets is on the service core.
  const auth = await startAuth('HS256', { ...ctx, pinAuth: false });
  const stops = [() => auth.svc.stop()];
  try {
    const authz = await startService('authz', { AUTHZ_GRPC_PORT: String(await freePort()), AUTHZ_HTTP_PORT: String(await freePort()), OPENFGA_ENABLED: 'false', AUTHZ_GRANTED_EVENTS: 'none', AUTH_GRPC_ADDRESS: auth.svc.grpc }, { pin: false });
    // secrets' own credential for authz (production: authz authenticates its callers).
    const authzCredential = (await auth.client.call('IssueToken', { tenant: '*', sub: 'secrets-service', scopes: ['authz:check'], ttl_seconds: 7200 }, auth.admin)).token;
    stops.unshift(() => authz.stop());
    const fernetKey = randomBytes(32).toString('base64url') + '=';
    const prefix = `bench:secrets:${randomUUID().slice(0, 8)}:`;
    const svc = await startService(
      'secrets',
      { SECRETS_GRPC_PORT: String(await freePort()), SECRETS_HTTP_PORT: String(await freePort()), FERNET_KEY: fernetKey, FERNET_KEY_FILE: null, SECRETS_KEY_PREFIX: prefix, AUTH_GRPC_ADDRESS: auth.svc.grpc, AUTHZ_GRPC_ADDRESS: authz.grpc, AUTHZ_CREDENTIAL: authzCredential },
      { nodeArgs: ctx.nodeArgs('secrets') },
    );
    stops.unshift(() => svc.stop());
    const issue = async (scopes) => (await auth.client.call('IssueToken', { tenant: 'platform', sub: 'bench-agent', scopes, ttl_seconds: 7200 }, auth.admin)).token;
    const writer = await issue(['secret:write']);
    const reader = await issue(['secret:read']);
    const client = grpcClient(svc.grpc, PROTO, 'soma.secrets.v1.SecretsService');
    const names = Array.from({ length: 100 }, (_, i) => `llm/provider-${i}`);
    for (const name of names) await client.call('PutSecret', { name, value: `sk-bench-${randomBytes(24).toString('base64url')}` }, writer);
    client.close();
    log(`get-secret: ${names.length} secrets stored`);
    const raw = await inProcess('redis-fernet.mjs', { fernetModule: distPath('libs/fernet/src/index.js'), keys: names.map((n) => `${prefix}${n}`), fernetKey, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup });
    describeRun('Redis HGET + Fernet in-process', raw);
    const target = await ghz({ address: svc.grpc, proto: PROTO, call: 'soma.secrets.v1.SecretsService.GetSecret', data: names.map((name) => ({ name })), metadata: { authorization: `Bearer ${reader}` }, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: svc.pid });
    describeRun('GetSecret', target);
    const empty = await ghz({ address: svc.grpc, proto: PROTO, call: 'soma.secrets.v1.SecretsService.GetServiceInfo', data: {}, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: svc.pid });
    describeRun('empty call', empty);
    return {
      id: 'get-secret',
      path: 'SecretsService.GetSecret',
      goal: { text: 'throughput ≥ 40% of Redis read + Fernet decrypt in-process', baseline: 'redis-fernet-in-process', min: 0.4 },
      target,
      baselines: { 'redis-fernet-in-process': raw, 'empty-call': empty },
      notes: [`${names.length} secrets round-robin, one JWT caller (tenant platform) with secret:read; auth and authz run as their own processes (default caches), not pinned`],
    };
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    auth.client.close();
  }
}

export const cases = { 'get-secret': getSecret };
