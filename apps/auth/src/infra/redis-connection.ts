import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import { AuthError, AuthErrorCode } from '../domain/auth.errors.js';

export interface RedisConnectionOptions {
  url: string;
  commandTimeoutMs: number;
  /** TLS options for rediss:// (redisTlsOf of @soma/config). */
  tls?: ConnectionOptions;
}

/**
 * Commands fail fast instead of queueing while Redis is away (enableOfflineQueue: false, one retry,
 * a command timeout): every verification that needs Redis then fails closed with UNAVAILABLE.
 */
export function createRedis(options: RedisConnectionOptions, name: string): Redis {
  return new Redis(options.url, {
    connectionName: `soma-auth-${name}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: 2000,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...(options.tls ? { tls: options.tls } : {}),
  });
}

export async function connectRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await redis.connect();
}

/** Any Redis failure on a path that decides access becomes UNAVAILABLE (never "allowed"). */
export async function orUnavailable<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof AuthError) throw e;
    throw new AuthError(AuthErrorCode.Unavailable, 'auth store unavailable', { cause: (e as Error).message });
  }
}
