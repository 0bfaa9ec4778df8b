import type { Redis } from 'ioredis';
import type { SigningKeyStore, StoredSigningKey } from '../domain/ports.js';
import type { InvalidationBus } from './invalidation-bus.js';

/**
 * The keyring lives in Redis (hash kid → JSON, plus the current kid), not in files: every instance
 * sees a rotation at once, and an operator rotates with one command without copying files around.
 * What is stored is useless alone (see Keyring): kids and dates, or RS256 keys wrapped under the root key.
 */
export class RedisSigningKeyStore implements SigningKeyStore {
  private readonly ringKey: string;
  private readonly currentKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly bus: InvalidationBus,
    prefix: string,
  ) {
    this.ringKey = `${prefix}signing-keys`;
    this.currentKey = `${prefix}signing-keys:current`;
  }

  onChange(listener: () => void): void {
    this.bus.onMessage((m) => {
      if (m.kind === 'signing_keys') listener();
    });
    // A rotation announced while this instance was not subscribed would otherwise go unnoticed.
    this.bus.onResync(async () => listener());
  }

  async list(): Promise<{ keys: StoredSigningKey[]; current: string | null }> {
    const [ring, current] = await Promise.all([this.redis.hgetall(this.ringKey), this.redis.get(this.currentKey)]);
    return { keys: Object.values(ring).map((v) => JSON.parse(v) as StoredSigningKey), current };
  }

  async ensureBootstrap(key: StoredSigningKey): Promise<void> {
    await this.redis.hsetnx(this.ringKey, key.kid, JSON.stringify(key));
    await this.redis.set(this.currentKey, key.kid, 'NX');
  }

  async rotate(next: StoredSigningKey, previousRetireAt: string, pruneBefore: string): Promise<void> {
    const [ring, current] = await Promise.all([this.redis.hgetall(this.ringKey), this.redis.get(this.currentKey)]);
    const tx = this.redis.multi();
    for (const [kid, raw] of Object.entries(ring)) {
      const k = JSON.parse(raw) as StoredSigningKey;
      if (k.retire_at && k.retire_at < pruneBefore) tx.hdel(this.ringKey, kid);
      else if (kid === current && !k.retire_at) tx.hset(this.ringKey, kid, JSON.stringify({ ...k, retire_at: previousRetireAt }));
    }
    tx.hset(this.ringKey, next.kid, JSON.stringify(next));
    tx.set(this.currentKey, next.kid);
    const res = await tx.exec();
    if (!res || res.some(([err]) => err)) throw new Error('signing key rotation failed');
    await this.bus.publish({ kind: 'signing_keys' });
  }
}
