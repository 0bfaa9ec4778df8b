import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient, AuthClientError } from '@soma/auth-client';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function failure(p: Promise<unknown>): Promise<AuthClientError> {
  try {
    await p;
  } catch (e) {
    return e as AuthClientError;
  }
  throw new Error('call succeeded');
}

/** Poll until `probe` rejects; the elapsed time from `since` is the propagation latency we report. */
async function msUntilRejected(probe: () => Promise<unknown>, since: number): Promise<number> {
  await waitFor(async () => {
    try {
      await probe();
      return false;
    } catch {
      return true;
    }
  }, { timeoutMs: 10_000, intervalMs: 5, what: 'revocation to reach the other instance' });
  return Date.now() - since;
}

function record(name: string, value: unknown): void {
  mkdirSync('.local/test-results', { recursive: true });
  writeFileSync(`.local/test-results/auth-${name}.json`, JSON.stringify(value, null, 2));
  console.log(`[measured] ${name}: ${JSON.stringify(value)}`);
}

describe('revocation reaches every instance (two in-process instances sharing Redis)', () => {
  let a: AuthHarness;
  let b: AuthHarness;
  let ca: AuthClient;
  let cb: AuthClient;
  let admin: AuthClient;
  const tenant = `t-${randomUUID()}`;
  const secret = randomBytes(48).toString('base64url');
  const prefix = `test:auth:${randomUUID()}:`;

  beforeAll(async () => {
    a = await startAuthHarness({ redisPrefix: prefix, jwtSecret: secret });
    b = await startAuthHarness({ redisPrefix: prefix, jwtSecret: secret });
    ca = a.client();
    cb = b.client();
    admin = a.client({ adminCredential: await a.adminToken() });
    await waitFor(() => a.runtime.bus.inSync && b.runtime.bus.inSync, { what: 'both instances in sync' });
    // Open the clients' channels now, so the measured samples below are propagation, not connection set-up.
    await admin.listSigningKeys();
    await cb.getServiceInfo();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('a token revoked on A fails on B (which had it cached) — latency measured', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { token, jti } = await a.issueToken({ tenant, sub: `u${i}` });
      await expect(cb.verifyToken(token)).resolves.toMatchObject({ tenant });
      await expect(cb.verifyToken(token)).resolves.toMatchObject({ tenant }); // now served from B's cache
      const t0 = Date.now();
      await admin.revokeToken({ tenant, jti });
      samples.push(await msUntilRejected(() => cb.verifyToken(token), t0));
      expect((await failure(cb.verifyToken(token))).reason).toBe('TOKEN_REVOKED');
      expect((await failure(ca.verifyToken(token))).reason).toBe('TOKEN_REVOKED');
    }
    record('token-revocation-propagation-ms', { samples, max: Math.max(...samples), note: 'revoke call start on A → first rejection on B (includes the revoke RPC)' });
    // B answered from its mirror (in sync), so the rejection came through pub/sub, not a Redis read.
    expect(b.runtime.bus.inSync).toBe(true);
  });

  it('an API key revoked on A fails on B (which had it cached) — latency measured', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { key, id } = await a.createApiKey({ tenant, name: `k${i}` });
      expect((await cb.verifyApiKey(key)).result).toBe('VALID');
      const t0 = Date.now();
      await admin.revokeApiKey(tenant, id);
      samples.push(await msUntilRejected(async () => {
        if ((await cb.verifyApiKey(key)).result !== 'VALID') throw new Error('refused');
      }, t0));
      expect((await cb.verifyApiKey(key)).result).toBe('REVOKED');
      expect((await failure(cb.authenticate(key))).reason).toBe('API_KEY_REVOKED');
    }
    record('api-key-revocation-propagation-ms', { samples, max: Math.max(...samples) });
  });

  it('RevokeSubject revokes the user’s keys and earlier tokens on every instance, not other users', async () => {
    const victim = `user-${randomUUID()}`;
    const { token } = await a.issueToken({ tenant, sub: victim });
    const other = await a.issueToken({ tenant, sub: 'someone-else' });
    const owned = await a.createApiKey({ tenant, owner_sub: victim });
    const notOwned = await a.createApiKey({ tenant, owner_sub: 'someone-else' });
    await cb.verifyToken(token);
    expect((await cb.verifyApiKey(owned.key)).result).toBe('VALID');
    const res = await admin.revokeSubject(tenant, victim);
    expect(res.apiKeysRevoked).toBe(1);
    await waitFor(async () => (await failure(cb.verifyToken(token))).reason === 'TOKEN_REVOKED', { what: 'subject revocation on B' });
    expect((await cb.verifyApiKey(owned.key)).result).toBe('REVOKED');
    await expect(cb.verifyToken(other.token)).resolves.toMatchObject({ sub: 'someone-else' });
    expect((await cb.verifyApiKey(notOwned.key)).result).toBe('VALID');
    // Another tenant's user with the same sub is untouched.
    const elsewhere = await a.issueToken({ tenant: `${tenant}-x`, sub: victim });
    await expect(cb.verifyToken(elsewhere.token)).resolves.toMatchObject({ sub: victim });
  });

  it('when B loses the invalidation channel it drops its caches and checks Redis per call (still exact)', async () => {
    const { token, jti } = await a.issueToken({ tenant, sub: 'degraded' });
    await cb.verifyToken(token);
    // Kill B's subscriber connection in Redis: B must notice, drop caches, and answer from Redis.
    const r = new Redis('redis://127.0.0.1:6379');
    try {
      const list = await r.client('LIST');
      const name = `soma-auth-sub-${b.env['INSTANCE_ID']}`;
      const ids = String(list).split('\n').filter((l) => l.includes(` name=${name} `)).map((l) => /id=(\d+)/.exec(l)?.[1]).filter(Boolean) as string[];
      expect(ids.length).toBe(1);
      await r.client('KILL', 'ID', ids[0]!);
    } finally {
      r.disconnect();
    }
    await waitFor(() => !b.runtime.bus.inSync, { what: 'B to notice the lost channel', intervalMs: 2 }).catch(() => undefined);
    await admin.revokeToken({ tenant, jti });
    // Whether B is still reconnecting (per-call Redis) or already resynced (fresh snapshot), it refuses.
    expect((await failure(cb.verifyToken(token))).reason).toBe('TOKEN_REVOKED');
    await waitFor(() => b.runtime.bus.inSync, { what: 'B to resync' });
    expect((await failure(cb.verifyToken(token))).reason).toBe('TOKEN_REVOKED');
  });

  it('a signing key rotated on A is used and accepted on B; old tokens keep verifying', async () => {
    const before = await a.issueToken({ tenant, sub: 'rot' });
    const rotated = await admin.rotateSigningKey();
    await waitFor(() => b.runtime.keyring.signingKey().kid === rotated.signing_key.kid, { what: 'B to load the new key' });
    const afterB = await b.issueToken({ tenant, sub: 'rot' });
    const kidOf = (t: string) => JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).kid as string;
    expect(kidOf(afterB.token)).toBe(rotated.signing_key.kid);
    expect(kidOf(before.token)).not.toBe(rotated.signing_key.kid);
    await expect(ca.verifyToken(afterB.token)).resolves.toMatchObject({ sub: 'rot' });
    await expect(cb.verifyToken(before.token)).resolves.toMatchObject({ sub: 'rot' });
    const keys = await admin.listSigningKeys();
    expect(keys.find((k) => k.kid === kidOf(before.token))?.retire_at).not.toBe('');
    expect(keys.filter((k) => k.signing).map((k) => k.kid)).toEqual([rotated.signing_key.kid]);
  });
});

/** A TCP relay to Redis we can cut, to make Redis unreachable for one instance only (shared Redis stays up). */
class CuttableRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private open = true;
  private paused = false;
  private held: Array<() => void> = [];
  port = 0;
  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((client) => {
      if (!this.open) return client.destroy();
      const upstream = createConnection({ host: '127.0.0.1', port: 6379 });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      // Forward by hand so that pause() can hold bytes back without closing anything (a silent partition).
      const forward = (from: Socket, to: Socket) =>
        from.on('data', (chunk: Buffer) => {
          if (this.paused) this.held.push(() => to.write(chunk));
          else to.write(chunk);
        });
      forward(client, upstream);
      forward(upstream, client);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }
  restore(): void {
    this.open = true;
  }
  /** Keep every connection open but deliver nothing (no RST, no FIN): only a heartbeat can notice. */
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    for (const f of this.held.splice(0)) f();
  }
  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

describe('Redis unreachable: verification fails closed', () => {
  let h: AuthHarness;
  let relay: CuttableRelay;
  const tenant = `t-${randomUUID()}`;

  beforeAll(async () => {
    relay = new CuttableRelay();
    await relay.start();
    h = await startAuthHarness({ env: { REDIS_URL: `redis://127.0.0.1:${relay.port}`, AUTH_REDIS_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => {
    await h?.stop();
    await relay?.stop();
  });

  it('refuses tokens, API keys, Authenticate and login with UNAVAILABLE while Redis is away, and recovers', async () => {
    const client = h.client();
    const { token } = await h.issueToken({ tenant, sub: 'alice' });
    const { key } = await h.createApiKey({ tenant });
    await client.verifyToken(token); // cached: the cache must not outlive the channel
    relay.cut();
    await waitFor(() => !h.runtime.bus.inSync, { what: 'channel loss noticed' });
    expect((await failure(client.verifyToken(token))).code).toBe(status.UNAVAILABLE);
    expect((await failure(client.authenticate(token))).code).toBe(status.UNAVAILABLE);
    expect((await failure(client.verifyApiKey(key))).code).toBe(status.UNAVAILABLE);
    const login = await fetch(`${h.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: h.password }) });
    expect(login.status).toBe(503);
    relay.restore();
    await waitFor(() => h.runtime.bus.inSync, { what: 'resync after Redis is back', timeoutMs: 20_000 });
    await expect(client.verifyToken(token)).resolves.toMatchObject({ sub: 'alice' });
    await sleep(10);
    expect((await client.verifyApiKey(key)).result).toBe('VALID');
  });
});

describe('silent partition (connections stay open, nothing arrives): the heartbeat notices, verification fails closed', () => {
  let h: AuthHarness;
  let relay: CuttableRelay;
  const tenant = `t-${randomUUID()}`;

  beforeAll(async () => {
    relay = new CuttableRelay();
    await relay.start();
    h = await startAuthHarness({ env: { REDIS_URL: `redis://127.0.0.1:${relay.port}`, AUTH_REDIS_TIMEOUT_MS: '300', AUTH_INVALIDATION_HEARTBEAT_MS: '200' } });
  });
  afterAll(async () => {
    relay?.resume();
    await h?.stop();
    await relay?.stop();
  });

  it('drops the mirror within a few heartbeats (measured), refuses with UNAVAILABLE, recovers after the partition heals', async () => {
    const client = h.client();
    const { token } = await h.issueToken({ tenant, sub: 'alice' });
    await client.verifyToken(token);
    await waitFor(() => h.runtime.bus.inSync, { what: 'in sync' });
    const t0 = Date.now();
    relay.pause();
    await waitFor(() => !h.runtime.bus.inSync, { what: 'the heartbeat to notice the silent channel', intervalMs: 10, timeoutMs: 10_000 });
    record('silent-partition-detection-ms', { ms: Date.now() - t0, heartbeat_ms: 200 });
    expect((await failure(client.verifyToken(token))).code).toBe(status.UNAVAILABLE);
    relay.resume();
    await waitFor(() => h.runtime.bus.inSync, { what: 'resync after the partition heals', timeoutMs: 30_000 });
    await expect(client.verifyToken(token)).resolves.toMatchObject({ sub: 'alice' });
  });
});
