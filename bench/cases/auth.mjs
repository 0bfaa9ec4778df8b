// AuthService.VerifyToken (HS256, RS256) and VerifyApiKey against the empty unary call on the same
// server (GetServiceInfo: same Nest gRPC stack, interceptors and filters, no work), raw jose in-process,
// and redis-benchmark GET.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, log, startService, tempDir } from '../lib/common.mjs';
import { grpcClient } from '../lib/grpc.mjs';
import { describeRun, ghz, inProcess, redisBenchmark } from '../lib/load.mjs';

const PROTO = 'soma/auth/v1/auth.proto';

async function startAuth(alg, ctx, extraEnv = {}) {
  const dir = tempDir('auth-keys');
  const password = `bench-${randomBytes(12).toString('base64url')}`;
  const env = {
    AUTH_GRPC_PORT: String(await freePort()),
    AUTH_HTTP_PORT: String(await freePort()),
    JWT_ALGORITHM: alg,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    AUTH_PASSWORD: password,
    AUTH_REDIS_PREFIX: `bench:auth:${randomUUID().slice(0, 8)}:`,
    LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
    ...extraEnv,
  };
  if (alg === 'RS256') {
    const file = join(dir, 'jwt.rsa.pem');
    writeFileSync(file, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    env.JWT_PRIVATE_KEY_FILE = file;
  }
  const svc = await startService('auth', env, { nodeArgs: ctx.nodeArgs('auth', alg), pin: ctx.pinAuth ?? true });
  const res = await fetch(`${svc.http}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
  if (!res.ok) throw new Error(`auth login failed: ${res.status} ${await res.text()}`);
  const admin = (await res.json()).access_token;
  const client = grpcClient(svc.grpc, PROTO, 'soma.auth.v1.AuthService');
  return { svc, admin, client, env };
}

async function issueTokens(auth, n, tenant) {
  const out = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, j) => auth.client.call('IssueToken', { tenant, sub: `user-${i + j}`, scopes: ['secrets:read', 'tools:use'], ttl_seconds: 7200 }, auth.admin)),
    );
    out.push(...batch.map((b) => b.token));
  }
  return out;
}

export async function emptyCall(ctx, svc, proto, service) {
  return ghz({ address: svc.grpc, proto, call: `${service}.GetServiceInfo`, data: {}, concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: svc.pid });
}

async function verifyToken(ctx, alg) {
  // Cache off: every call verifies the signature (the worst case, and the one the goal is about);
  // with the default cache a repeated token costs a map lookup plus the deny-list check.
  const auth = await startAuth(alg, ctx, { AUTH_TOKEN_CACHE_SIZE: '0' });
  try {
    const tokens = await issueTokens(auth, ctx.quick ? 200 : 1000, 'bench');
    log(`verify-token-${alg}: ${tokens.length} tokens issued`);
    const empty = await emptyCall(ctx, auth.svc, PROTO, 'soma.auth.v1.AuthService');
    describeRun('empty call (GetServiceInfo)', empty);
    const target = await ghz({ address: auth.svc.grpc, proto: PROTO, call: 'soma.auth.v1.AuthService.VerifyToken', data: tokens.map((token) => ({ token })), concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: auth.svc.pid });
    describeRun(`VerifyToken ${alg}`, target);
    const jose = await inProcess('jose-verify.mjs', { alg, tokens: tokens.length, durationS: ctx.duration, warmupS: ctx.warmup });
    describeRun(`jose in-process ${alg}`, jose);
    return {
      id: `verify-token-${alg.toLowerCase()}`,
      path: `AuthService.VerifyToken ${alg}`,
      goal: { text: 'throughput ≥ 50% of the empty call', baseline: 'empty-call', min: 0.5 },
      target,
      baselines: { 'empty-call': empty, 'jose-in-process': jose },
      notes: [`${tokens.length} distinct tokens round-robin, AUTH_TOKEN_CACHE_SIZE=0 (signature verified on every call); deny-list checked per call`],
    };
  } finally {
    auth.client.close();
    await auth.svc.stop();
  }
}

async function verifyApiKey(ctx) {
  const auth = await startAuth('HS256', ctx);
  try {
    const keys = [];
    const n = ctx.quick ? 50 : 200;
    for (let i = 0; i < n; i += 25) {
      const batch = await Promise.all(Array.from({ length: Math.min(25, n - i) }, (_, j) => auth.client.call('CreateApiKey', { tenant: 'bench', name: `bench-${i + j}`, scopes: ['secrets:read'] }, auth.admin)));
      keys.push(...batch.map((b) => b.key));
    }
    log(`verify-api-key: ${keys.length} keys created`);
    const empty = await emptyCall(ctx, auth.svc, PROTO, 'soma.auth.v1.AuthService');
    describeRun('empty call (GetServiceInfo)', empty);
    const target = await ghz({ address: auth.svc.grpc, proto: PROTO, call: 'soma.auth.v1.AuthService.VerifyApiKey', data: keys.map((key) => ({ key, required_scopes: ['secrets:read'] })), concurrency: ctx.concurrency, durationS: ctx.duration, warmupS: ctx.warmup, meterPid: auth.svc.pid });
    describeRun('VerifyApiKey', target);
    const redis = await redisBenchmark({ key: `${auth.env.AUTH_REDIS_PREFIX}bench-get`, concurrency: ctx.concurrency, requests: ctx.quick ? 50_000 : 300_000 });
    describeRun('redis-benchmark GET', redis);
    return {
      id: 'verify-api-key',
      path: 'AuthService.VerifyApiKey',
      goal: { text: 'throughput ≥ 50% of the empty call', baseline: 'empty-call', min: 0.5 },
      target,
      baselines: { 'empty-call': empty, 'redis-benchmark-get': redis },
      notes: [`${keys.length} distinct keys round-robin (no rate limit, no budget), default API_KEY_CACHE_SIZE`],
    };
  } finally {
    auth.client.close();
    await auth.svc.stop();
  }
}

export const cases = {
  'verify-token-hs256': (ctx) => verifyToken(ctx, 'HS256'),
  'verify-token-rs256': (ctx) => verifyToken(ctx, 'RS256'),
  'verify-api-key': verifyApiKey,
};

export { startAuth, issueTokens };
