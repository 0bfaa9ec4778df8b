import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { LoginThrottle } from '../domain/ports.js';
import { orUnavailable } from './redis-connection.js';

export interface LoginThrottleSettings {
  prefix: string;
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
  lockoutSeconds: number;
  requestsPerMinute: number;
}

/** Failure counters and lockouts in Redis, so they hold across instances. Redis down → UNAVAILABLE. */
export class RedisLoginThrottle implements LoginThrottle {
  private readonly account: RateLimiterRedis;
  private readonly ip: RateLimiterRedis;
  private readonly flood: RateLimiterRedis;

  constructor(redis: Redis, private readonly s: LoginThrottleSettings) {
    const base = { storeClient: redis, rejectIfRedisNotReady: true };
    this.account = new RateLimiterRedis({ ...base, keyPrefix: `${s.prefix}login:fail:account`, points: s.maxFailuresPerAccount, duration: s.lockoutSeconds, blockDuration: s.lockoutSeconds });
    this.ip = new RateLimiterRedis({ ...base, keyPrefix: `${s.prefix}login:fail:ip`, points: s.maxFailuresPerIp, duration: s.lockoutSeconds, blockDuration: s.lockoutSeconds });
    this.flood = new RateLimiterRedis({ ...base, keyPrefix: `${s.prefix}login:req:ip`, points: s.requestsPerMinute, duration: 60 });
  }

  async allowRequest(ip: string): Promise<boolean> {
    try {
      await this.flood.consume(ip, 1);
      return true;
    } catch (e) {
      if (e instanceof RateLimiterRes) return false;
      return orUnavailable(() => Promise.reject(e));
    }
  }

  async isLocked(account: string, ip: string): Promise<boolean> {
    return orUnavailable(async () => {
      const [a, i] = await Promise.all([this.account.get(account), this.ip.get(ip)]);
      return (a !== null && a.consumedPoints >= this.s.maxFailuresPerAccount) || (i !== null && i.consumedPoints >= this.s.maxFailuresPerIp);
    });
  }

  async recordFailure(account: string, ip: string): Promise<boolean> {
    const lockedBy = async (limiter: RateLimiterRedis, key: string, max: number): Promise<boolean> => {
      try {
        const r = await limiter.consume(key, 1);
        return r.consumedPoints >= max;
      } catch (e) {
        if (e instanceof RateLimiterRes) return e.consumedPoints === max + 1 || e.consumedPoints >= max;
        return orUnavailable(() => Promise.reject(e));
      }
    };
    const [a, i] = await Promise.all([lockedBy(this.account, account, this.s.maxFailuresPerAccount), lockedBy(this.ip, ip, this.s.maxFailuresPerIp)]);
    return a || i;
  }

  async recordSuccess(account: string): Promise<void> {
    await orUnavailable(() => this.account.delete(account));
  }
}
