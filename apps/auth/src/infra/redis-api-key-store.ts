import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { ApiKeyRecord, ApiKeyStore, RateLimit, UsageBudget } from '../domain/ports.js';
import type { Logger } from '@soma/observability';
import type { InvalidationBus } from './invalidation-bus.js';
import { orUnavailable } from './redis-connection.js';

/** Decrement the budget by one, refilling it to `amount` for every full interval elapsed since the last refill. */
const BUDGET_LUA = `
local rem = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
if rem == nil then return {-1, 0} end
local now = tonumber(ARGV[1]); local amount = tonumber(ARGV[2]); local interval = tonumber(ARGV[3])
if interval > 0 and amount > 0 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_refill') or ARGV[1])
  local periods = math.floor((now - last) / interval)
  if periods > 0 then
    rem = amount
    redis.call('HSET', KEYS[1], 'last_refill', last + periods * interval)
  end
end
if rem <= 0 then
  redis.call('HSET', KEYS[1], 'remaining', rem)
  return {0, 0}
end
rem = rem - 1
redis.call('HSET', KEYS[1], 'remaining', rem)
return {1, rem}
`;

/**
 * API key records in Redis: `apikey:h:<sha256>` → record JSON (the record is only ever found by the
 * hash of the presented key), `apikey:id:<id>` → hash, per-tenant and per-owner id sets, and a budget
 * counter per key. Records are cached per instance; every change publishes an invalidation so all
 * instances drop the entry; while the channel is down the cache is bypassed.
 */
export class RedisApiKeyStore implements ApiKeyStore {
  private readonly cache: LRUCache<string, ApiKeyRecord>;
  private readonly limiters = new Map<string, RateLimiterRedis>();

  constructor(
    private readonly redis: Redis,
    private readonly bus: InvalidationBus,
    private readonly prefix: string,
    cacheSize: number,
    private readonly logger: Logger,
  ) {
    this.cache = new LRUCache<string, ApiKeyRecord>({ max: Math.max(1, cacheSize) });
    bus.onMessage((m) => {
      if (m.kind === 'api_key') this.cache.delete(m.hash);
    });
    bus.onDrop(() => this.cache.clear());
  }

  private k(...parts: string[]): string {
    return `${this.prefix}apikey:${parts.join(':')}`;
  }

  async create(r: ApiKeyRecord): Promise<void> {
    await orUnavailable(async () => {
      const tx = this.redis.multi();
      tx.set(this.k('h', r.hash), JSON.stringify(r), 'NX');
      tx.set(this.k('id', r.id), r.hash);
      tx.sadd(this.k('tenant', r.tenant), r.id);
      if (r.owner_sub) tx.sadd(this.k('owner', r.tenant, r.owner_sub), r.id);
      if (r.budget) tx.hset(this.k('budget', r.id), 'remaining', r.budget.remaining, 'last_refill', Math.floor(Date.parse(r.created_at) / 1000));
      const res = await tx.exec();
      if (!res || res.some(([err]) => err)) throw new Error('api key create failed');
    });
  }

  async getByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const useCache = this.bus.inSync;
    if (useCache) {
      const hit = this.cache.get(hash);
      if (hit) return hit;
    }
    const raw = await orUnavailable(() => this.redis.get(this.k('h', hash)));
    if (!raw) return undefined;
    const r = JSON.parse(raw) as ApiKeyRecord;
    // Only cache what was read while in sync: an invalidation missed during an outage cannot resurrect it.
    if (useCache && this.bus.inSync) this.cache.set(hash, r);
    return r;
  }

  async getById(id: string): Promise<ApiKeyRecord | undefined> {
    const hash = await orUnavailable(() => this.redis.get(this.k('id', id)));
    if (!hash) return undefined;
    const [raw, lastUsed] = await orUnavailable(() => Promise.all([this.redis.get(this.k('h', hash)), this.redis.hget(this.k('last-used'), id)]));
    if (!raw) return undefined;
    const r = JSON.parse(raw) as ApiKeyRecord;
    return lastUsed ? { ...r, last_used_at: lastUsed } : r;
  }

  private async byIds(ids: string[]): Promise<ApiKeyRecord[]> {
    const out: ApiKeyRecord[] = [];
    for (const id of ids) {
      const r = await this.getById(id);
      if (r) out.push(r);
    }
    return out;
  }

  async listByTenant(tenant: string): Promise<ApiKeyRecord[]> {
    return this.byIds(await orUnavailable(() => this.redis.smembers(this.k('tenant', tenant))));
  }

  async listByOwner(tenant: string, sub: string): Promise<ApiKeyRecord[]> {
    return this.byIds(await orUnavailable(() => this.redis.smembers(this.k('owner', tenant, sub))));
  }

  async update(r: ApiKeyRecord): Promise<void> {
    await orUnavailable(async () => {
      const { last_used_at: _lastUsed, ...stored } = r;
      await this.redis.set(this.k('h', r.hash), JSON.stringify(stored), 'XX');
      this.cache.delete(r.hash);
      await this.bus.publish({ kind: 'api_key', hash: r.hash });
    });
  }

  /** Kept apart from the record (a hash id → time) so that it never races with revocation writes. */
  touchLastUsed(r: ApiKeyRecord, at: Date): void {
    this.redis.hset(this.k('last-used'), r.id, at.toISOString()).catch((e: Error) => this.logger.debug({ reason: e.message }, 'last_used_at not recorded'));
  }

  async consumeRate(id: string, limit: RateLimit): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const name = `${limit.limit}/${limit.window_seconds}`;
    let limiter = this.limiters.get(name);
    if (!limiter) {
      limiter = new RateLimiterRedis({ storeClient: this.redis, keyPrefix: this.k('rl', name), points: limit.limit, duration: limit.window_seconds, rejectIfRedisNotReady: true });
      this.limiters.set(name, limiter);
    }
    try {
      await limiter.consume(id, 1);
      return { allowed: true, retryAfterMs: 0 };
    } catch (e) {
      if (e instanceof RateLimiterRes) return { allowed: false, retryAfterMs: e.msBeforeNext };
      return orUnavailable(() => Promise.reject(e));
    }
  }

  async consumeBudget(id: string, budget: UsageBudget, nowSeconds: number): Promise<{ allowed: boolean; remaining: number }> {
    const res = (await orUnavailable(() => this.redis.eval(BUDGET_LUA, 1, this.k('budget', id), nowSeconds, budget.refill_amount, budget.refill_interval_seconds))) as [number, number];
    if (res[0] === -1) return { allowed: false, remaining: 0 };
    return { allowed: res[0] === 1, remaining: res[1] };
  }
}
