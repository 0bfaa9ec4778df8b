import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, redisTlsOf } from '@soma/config';
import type { Logger } from '@soma/observability';
import type { SecurityEventPublisher } from '@soma/events';
import type { Redis } from 'ioredis';
import type { AuthConfig } from './auth.config.js';
import { AdminService } from './domain/admin-service.js';
import { ApiKeyService } from './domain/api-key-service.js';
import { AuthEvents } from './domain/auth-events.js';
import { Authenticator } from './domain/authenticator.js';
import { Keyring, type RootKey } from './domain/keyring.js';
import { LoginService } from './domain/login-service.js';
import { systemClock } from './domain/ports.js';
import { TokenService } from './domain/token-service.js';
import { InvalidationBus } from './infra/invalidation-bus.js';
import { RedisApiKeyStore } from './infra/redis-api-key-store.js';
import { connectRedis, createRedis } from './infra/redis-connection.js';
import { RedisLoginThrottle } from './infra/redis-login-throttle.js';
import { RedisRevocationStore } from './infra/redis-revocation-store.js';
import { RedisSigningKeyStore } from './infra/redis-signing-key-store.js';

/** Everything the transports call, built once per process. */
export interface AuthRuntime {
  config: Readonly<AuthConfig>;
  keyring: Keyring;
  tokens: TokenService;
  apiKeys: ApiKeyService;
  authenticator: Authenticator;
  login: LoginService;
  admin: AdminService;
  events: AuthEvents;
  bus: InvalidationBus;
  redis: Redis;
  close(): Promise<void>;
}

export const AUTH_RUNTIME = Symbol('AUTH_RUNTIME');

/** Cross-field checks and the root key; throws ConfigError (exit 78) before anything listens. */
export function rootKeyOf(c: Readonly<AuthConfig>): RootKey {
  const problems: string[] = [];
  if (c.JWT_ALGORITHM === 'HS256') {
    if (!c.JWT_SECRET) problems.push('JWT_SECRET is required when JWT_ALGORITHM=HS256 (set JWT_SECRET or JWT_SECRET_FILE, at least 256 bits)');
  } else if (!c.JWT_PRIVATE_KEY_FILE) problems.push('JWT_PRIVATE_KEY_FILE is required when JWT_ALGORITHM=RS256');
  if (c.AUTH_ENABLED && !c.AUTH_PASSWORD) problems.push('AUTH_PASSWORD is required when AUTH_ENABLED=true (set AUTH_PASSWORD or AUTH_PASSWORD_FILE)');
  if (c.JWT_EXPIRY_SECONDS > c.JWT_MAX_EXPIRY_SECONDS) problems.push('JWT_EXPIRY_SECONDS must not exceed JWT_MAX_EXPIRY_SECONDS');
  if (problems.length) throw new ConfigError(problems);
  if (c.JWT_ALGORITHM === 'HS256') return { alg: 'HS256', secret: Buffer.from(c.JWT_SECRET!, 'utf8') };
  let privateKey;
  try {
    privateKey = createPrivateKey(readFileSync(c.JWT_PRIVATE_KEY_FILE!, 'utf8'));
  } catch (e) {
    throw new ConfigError([`JWT_PRIVATE_KEY_FILE could not be read as a PEM private key (${(e as NodeJS.ErrnoException).code ?? 'parse error'})`]);
  }
  if (privateKey.asymmetricKeyType !== 'rsa' || (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new ConfigError(['JWT_PRIVATE_KEY_FILE must be an RSA private key of at least 2048 bits']);
  }
  return { alg: 'RS256', privateKey };
}

export async function createAuthRuntime(config: Readonly<AuthConfig>, publisher: SecurityEventPublisher, logger: Logger, root: RootKey = rootKeyOf(config)): Promise<AuthRuntime> {
  const clock = systemClock;
  const prefix = config.AUTH_REDIS_PREFIX;
  const redis = createRedis({ url: config.REDIS_URL, commandTimeoutMs: config.AUTH_REDIS_TIMEOUT_MS, tls: redisTlsOf(config) }, `cmd-${config.INSTANCE_ID}`);
  const subscriber = createRedis({ url: config.REDIS_URL, commandTimeoutMs: config.AUTH_REDIS_TIMEOUT_MS, tls: redisTlsOf(config) }, `sub-${config.INSTANCE_ID}`);
  redis.on('error', () => undefined);
  await connectRedis(redis);
  const bus = new InvalidationBus(redis, subscriber, `${prefix}invalidate`, logger, config.AUTH_INVALIDATION_HEARTBEAT_MS);
  const revocation = new RedisRevocationStore(redis, bus, prefix, clock);
  const keyStore = new RedisSigningKeyStore(redis, bus, prefix);
  const apiKeyStore = new RedisApiKeyStore(redis, bus, prefix, config.API_KEY_CACHE_SIZE, logger);
  await bus.start();
  const keyring = new Keyring(root, keyStore, config.JWT_MAX_EXPIRY_SECONDS + config.JWT_CLOCK_SKEW_SECONDS, clock);
  await keyring.init();
  const tokens = new TokenService(keyring, revocation, {
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    expirySeconds: config.JWT_EXPIRY_SECONDS,
    maxExpirySeconds: config.JWT_MAX_EXPIRY_SECONDS,
    skewSeconds: config.JWT_CLOCK_SKEW_SECONDS,
    maxTokenBytes: config.JWT_MAX_TOKEN_BYTES,
    cacheSize: config.AUTH_TOKEN_CACHE_SIZE,
  }, clock);
  const apiKeys = new ApiKeyService(apiKeyStore, { prefix: config.API_KEY_PREFIX, rotationGraceSeconds: config.API_KEY_ROTATION_GRACE_SECONDS, lastUsedResolutionSeconds: config.API_KEY_LAST_USED_RESOLUTION_SECONDS }, clock);
  const events = new AuthEvents(publisher, clock, config.AUTH_SUCCESS_EVENT_WINDOW_SECONDS * 1000);
  const authenticator = new Authenticator(tokens, apiKeys, events, config.API_KEY_PREFIX);
  const throttle = new RedisLoginThrottle(redis, {
    prefix,
    maxFailuresPerAccount: config.LOGIN_MAX_FAILURES_PER_ACCOUNT,
    maxFailuresPerIp: config.LOGIN_MAX_FAILURES_PER_IP,
    lockoutSeconds: config.LOGIN_LOCKOUT_SECONDS,
    requestsPerMinute: config.LOGIN_RATE_LIMIT_PER_MINUTE,
  });
  const login = new LoginService(
    { enabled: config.AUTH_ENABLED, ...(config.AUTH_PASSWORD ? { password: config.AUTH_PASSWORD } : {}), username: config.AUTH_LOGIN_USERNAME, tenant: config.AUTH_LOGIN_TENANT, scopes: config.AUTH_LOGIN_SCOPES, sessionSeconds: config.AUTH_SESSION_EXPIRY_SECONDS },
    throttle,
    tokens,
    events,
  );
  const admin = new AdminService(tokens, apiKeys, revocation, keyring, events, clock, config.JWT_MAX_EXPIRY_SECONDS + config.JWT_CLOCK_SKEW_SECONDS);
  return {
    config, keyring, tokens, apiKeys, authenticator, login, admin, events, bus, redis,
    close: async () => {
      await bus.stop();
      await redis.quit().catch(() => undefined);
    },
  };
}
