import type { Redis } from 'ioredis';
import type { PutOutcome, PutRecord, RotationCheckpoint, SecretKind, SecretMetadata, SecretStore, StoredSecret } from '../domain/ports.js';
import { isSecretName } from '../domain/secret-name.js';
import { SecretsError, SecretsErrorCode } from '../domain/secrets.errors.js';

/**
 * Secrets in Redis, one hash per secret under `<prefix><name>` (the seed's `llm_cred:<name>`):
 * token (Fernet), kind, created_at, updated_at, version, created_by, updated_by, key_id.
 * A bare string under that key is the seed's format (just the token); it is read as such and
 * becomes a hash on the next write or rotation. Each mutation is one Lua script: atomic.
 */

/** Returns {type, fields…}: the hash as a flat list, or the legacy string, or nothing. */
const READ = `
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'hash' then return {t, redis.call('HGETALL', KEYS[1])} end
if t == 'string' then return {t, redis.call('GET', KEYS[1])} end
return {t}
`;

/** ARGV: token, kind, now, actor, key_id, expected_version (0 = any). Returns {version, created, created_at, created_by} or {-1, current}. */
const PUT = `
local key = KEYS[1]
local t = redis.call('TYPE', key).ok
local current, created = 0, 1
local createdAt, createdBy = ARGV[3], ARGV[4]
if t == 'hash' then
  current = tonumber(redis.call('HGET', key, 'version') or '0') or 0
  createdAt = redis.call('HGET', key, 'created_at') or ''
  createdBy = redis.call('HGET', key, 'created_by') or ''
  created = 0
elseif t == 'string' then
  createdAt, createdBy, created = '', '', 0
elseif t ~= 'none' then
  return redis.error_reply('WRONGTYPE secret key holds an unexpected type')
end
local expected = tonumber(ARGV[6])
if expected ~= 0 and expected ~= current then return {-1, current} end
if t == 'string' then redis.call('DEL', key) end
local version = current + 1
redis.call('HSET', key, 'token', ARGV[1], 'kind', ARGV[2], 'created_at', createdAt, 'created_by', createdBy,
  'updated_at', ARGV[3], 'updated_by', ARGV[4], 'version', version, 'key_id', ARGV[5])
return {version, created, createdAt, createdBy}
`;

/** Compare-and-set of the token. ARGV: expected token, new token, key_id, now. Returns 1 when swapped. */
const SWAP = `
local key = KEYS[1]
local t = redis.call('TYPE', key).ok
if t == 'hash' then
  if redis.call('HGET', key, 'token') ~= ARGV[1] then return 0 end
  redis.call('HSET', key, 'token', ARGV[2], 'key_id', ARGV[3])
  return 1
elseif t == 'string' then
  if redis.call('GET', key) ~= ARGV[1] then return 0 end
  redis.call('DEL', key)
  redis.call('HSET', key, 'token', ARGV[2], 'kind', 'value', 'created_at', '', 'created_by', '',
    'updated_at', ARGV[4], 'updated_by', 'key-rotation', 'version', 1, 'key_id', ARGV[3])
  return 1
end
return 0
`;

type ReadReply = [string, string[] | string] | [string];

interface ScriptedRedis {
  secretRead(key: string): Promise<ReadReply>;
  secretPut(key: string, ...args: string[]): Promise<[number, number, string, string] | [number, number]>;
  secretSwap(key: string, ...args: string[]): Promise<number>;
}

export class RedisSecretStore implements SecretStore {
  private readonly scripted: Redis & ScriptedRedis;
  private readonly checkpointKey: string;

  constructor(redis: Redis, private readonly prefix: string) {
    redis.defineCommand('secretRead', { numberOfKeys: 1, lua: READ });
    redis.defineCommand('secretPut', { numberOfKeys: 1, lua: PUT });
    redis.defineCommand('secretSwap', { numberOfKeys: 1, lua: SWAP });
    this.scripted = redis as Redis & ScriptedRedis;
    // Outside the secret namespace, so no secret name can collide with it and SCAN never sees it.
    this.checkpointKey = `soma:secrets:rotation:${prefix}`;
  }

  get(name: string): Promise<StoredSecret | null> {
    return this.guard(async () => this.decode(name, await this.scripted.secretRead(this.key(name))));
  }

  put(r: PutRecord): Promise<PutOutcome> {
    return this.guard(async () => {
      const reply = await this.scripted.secretPut(this.key(r.name), r.token, r.kind, r.now, r.actor, r.keyId, String(r.expectedVersion));
      const [version, created, createdAt, createdBy] = reply as [number, number, string?, string?];
      if (version === -1) return { ok: false, currentVersion: Number(created) };
      const metadata: SecretMetadata = {
        name: r.name, kind: r.kind, createdAt: createdAt ?? '', createdBy: createdBy ?? '', updatedAt: r.now, updatedBy: r.actor,
        version: Number(version), keyId: r.keyId, legacy: false,
      };
      return { ok: true, metadata, created: created === 1 };
    });
  }

  delete(name: string): Promise<boolean> {
    return this.guard(async () => (await this.scripted.del(this.key(name))) === 1);
  }

  list(prefix: string, cursor: string, count: number): Promise<{ cursor: string; secrets: SecretMetadata[] }> {
    return this.guard(async () => {
      const [next, keys] = await this.scripted.scan(cursor, 'MATCH', `${this.prefix}${prefix}*`, 'COUNT', Math.max(count, 100));
      const names = keys.map((k) => k.slice(this.prefix.length)).filter(isSecretName);
      const pipeline = this.scripted.pipeline();
      for (const n of names) (pipeline as unknown as ScriptedRedis).secretRead(this.key(n));
      const replies = (await pipeline.exec()) ?? [];
      const secrets: SecretMetadata[] = [];
      replies.forEach(([err, reply], i) => {
        if (err) throw err;
        const secret = this.decode(names[i]!, reply as ReadReply);
        if (secret) {
          const { token: _token, ...metadata } = secret;
          secrets.push(metadata);
        }
      });
      return { cursor: next, secrets };
    });
  }

  scanNames(cursor: string, count: number): Promise<{ cursor: string; names: string[] }> {
    return this.guard(async () => {
      const [next, keys] = await this.scripted.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', count);
      return { cursor: next, names: keys.map((k) => k.slice(this.prefix.length)).filter(isSecretName) };
    });
  }

  swapToken(name: string, expectedToken: string, newToken: string, keyId: string, now: string): Promise<boolean> {
    return this.guard(async () => (await this.scripted.secretSwap(this.key(name), expectedToken, newToken, keyId, now)) === 1);
  }

  loadCheckpoint(): Promise<RotationCheckpoint | null> {
    return this.guard(async () => {
      const h = await this.scripted.hgetall(this.checkpointKey);
      if (!h['key_id'] || h['cursor'] === undefined) return null;
      return { keyId: h['key_id'], cursor: h['cursor'], startedAt: h['started_at'] ?? '', updatedAt: h['updated_at'] ?? '' };
    });
  }

  saveCheckpoint(c: RotationCheckpoint): Promise<void> {
    return this.guard(async () => {
      await this.scripted.hset(this.checkpointKey, { key_id: c.keyId, cursor: c.cursor, started_at: c.startedAt, updated_at: c.updatedAt });
    });
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  private decode(name: string, reply: ReadReply): StoredSecret | null {
    const [type, body] = reply as [string, string[] | string | undefined];
    if (type === 'string' && typeof body === 'string') {
      return { name, token: body, kind: 'value', createdAt: '', updatedAt: '', version: 0, createdBy: '', updatedBy: '', keyId: '', legacy: true };
    }
    if (type !== 'hash' || !Array.isArray(body)) return null;
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < body.length; i += 2) h[body[i]!] = body[i + 1]!;
    if (!h['token']) return null;
    return {
      name,
      token: h['token'],
      kind: (h['kind'] === 'reference' ? 'reference' : 'value') as SecretKind,
      createdAt: h['created_at'] ?? '',
      updatedAt: h['updated_at'] ?? '',
      version: Number(h['version'] ?? 0),
      createdBy: h['created_by'] ?? '',
      updatedBy: h['updated_by'] ?? '',
      keyId: h['key_id'] ?? '',
      legacy: false,
    };
  }

  /** Any Redis failure is UNAVAILABLE to callers; the cause goes to the logs only (no values in it). */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof SecretsError) throw e;
      throw new SecretsError(SecretsErrorCode.Unavailable, 'the secret store is unavailable', { cause: (e as Error).message });
    }
  }
}
