import type { Redis } from 'ioredis';
import type { RevocationStore } from '../domain/ports.js';
import type { Clock } from '../domain/ports.js';
import type { InvalidationBus } from './invalidation-bus.js';
import { orUnavailable } from './redis-connection.js';

const SEP = '\u0000';

/**
 * Deny-list in Redis: a sorted set jti → expiry (seconds) and a hash (tenant, sub) → "cutoff:until".
 * Each instance keeps an exact mirror of both, filled from a snapshot when the invalidation channel
 * (re)subscribes and kept current by its messages, so a check costs no round trip. While the channel
 * is down the mirror is not trusted and each check reads Redis (one pipelined round trip); if Redis
 * cannot answer, the check throws UNAVAILABLE (fail closed).
 */
export class RedisRevocationStore implements RevocationStore {
  private readonly denied = new Map<string, number>();
  private readonly cutoffs = new Map<string, { cutoff: number; until: number }>();
  private readonly resyncListeners: Array<() => void> = [];
  private readonly denyKey: string;
  private readonly subjectKey: string;
  private readonly issuedPrefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly bus: InvalidationBus,
    prefix: string,
    private readonly clock: Clock,
  ) {
    this.denyKey = `${prefix}deny`;
    this.subjectKey = `${prefix}subject-cutoff`;
    this.issuedPrefix = `${prefix}issued:`;
    bus.onMessage((m) => {
      if (m.kind === 'jti') this.denied.set(m.jti, m.until);
      else if (m.kind === 'subject') this.setCutoff(`${m.tenant}${SEP}${m.sub}`, m.cutoff, m.until);
    });
    bus.onDrop(() => {
      this.denied.clear();
      this.cutoffs.clear();
      for (const l of this.resyncListeners) l();
    });
    bus.onResync(() => this.loadSnapshot());
  }

  onResync(listener: () => void): void {
    this.resyncListeners.push(listener);
  }

  private nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  private setCutoff(key: string, cutoff: number, until: number): void {
    const prev = this.cutoffs.get(key);
    if (!prev || prev.cutoff < cutoff) this.cutoffs.set(key, { cutoff, until });
  }

  private async loadSnapshot(): Promise<void> {
    const now = this.nowSeconds();
    await this.redis.zremrangebyscore(this.denyKey, '-inf', now);
    const entries = await this.redis.zrangebyscore(this.denyKey, now, '+inf', 'WITHSCORES');
    for (let i = 0; i + 1 < entries.length; i += 2) this.denied.set(entries[i]!, Number(entries[i + 1]));
    const subjects = await this.redis.hgetall(this.subjectKey);
    for (const [field, value] of Object.entries(subjects)) {
      const [cutoff, until] = value.split(':').map(Number) as [number, number];
      if (until <= now) await this.redis.hdel(this.subjectKey, field);
      else this.setCutoff(field, cutoff, until);
    }
  }

  async recordIssued(jti: string, tenant: string, expiresAtSeconds: number): Promise<void> {
    const ttl = Math.max(1, expiresAtSeconds - this.nowSeconds() + 60);
    await orUnavailable(() => this.redis.set(this.issuedPrefix + jti, tenant, 'EX', ttl));
  }

  async tenantOfIssued(jti: string): Promise<string | undefined> {
    return (await orUnavailable(() => this.redis.get(this.issuedPrefix + jti))) ?? undefined;
  }

  async revokeToken(jti: string, until: number): Promise<void> {
    await orUnavailable(async () => {
      await this.redis.zadd(this.denyKey, until, jti);
      this.denied.set(jti, until);
      await this.bus.publish({ kind: 'jti', jti, until });
    });
  }

  async revokeSubject(tenant: string, sub: string, cutoff: number, until: number): Promise<void> {
    const field = `${tenant}${SEP}${sub}`;
    await orUnavailable(async () => {
      const prev = await this.redis.hget(this.subjectKey, field);
      const prevCutoff = prev ? Number(prev.split(':')[0]) : 0;
      if (prevCutoff < cutoff) await this.redis.hset(this.subjectKey, field, `${cutoff}:${until}`);
      this.setCutoff(field, cutoff, until);
      await this.bus.publish({ kind: 'subject', tenant, sub, cutoff, until });
    });
  }

  async isRevoked(jti: string, tenant: string, sub: string, iat: number): Promise<boolean> {
    const now = this.nowSeconds();
    const field = `${tenant}${SEP}${sub}`;
    if (this.bus.inSync) {
      const until = this.denied.get(jti);
      if (until !== undefined && until > now) return true;
      const c = this.cutoffs.get(field);
      return c !== undefined && c.until > now && iat <= c.cutoff;
    }
    return orUnavailable(async () => {
      const res = await this.redis.multi().zscore(this.denyKey, jti).hget(this.subjectKey, field).exec();
      if (!res) throw new Error('redis transaction aborted');
      for (const [err] of res) if (err) throw err;
      const score = res[0]![1] as string | null;
      if (score !== null && Number(score) > now) return true;
      const subject = res[1]![1] as string | null;
      if (!subject) return false;
      const [cutoff, until] = subject.split(':').map(Number) as [number, number];
      return until > now && iat <= cutoff;
    });
  }
}
