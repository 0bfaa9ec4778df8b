import { IsArray, IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { CommonConfig, EnvBoolean, EnvList, Secret } from '@soma/config';

/** The auth service's configuration; property names are the environment variable names. */
export class AuthConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  AUTH_GRPC_PORT: number = 20020;

  @IsInt() @Min(1) @Max(65535)
  AUTH_HTTP_PORT: number = 20021;

  // ---- JWT ----
  /** The one algorithm tokens are signed and verified with; every other `alg` is refused. */
  @IsIn(['HS256', 'RS256'])
  JWT_ALGORITHM: 'HS256' | 'RS256' = 'HS256';

  /** HS256 root secret (≥ 256 bits). Signing keys are derived from it per kid (HKDF), never stored. */
  @Secret({ minBytes: 32, required: false }) @IsOptional() @IsString()
  JWT_SECRET?: string;

  /** RS256 root private key (PEM). Required when JWT_ALGORITHM=RS256. */
  @IsString()
  JWT_PRIVATE_KEY_FILE: string = '';

  @IsInt() @Min(60) @Max(86_400 * 30)
  JWT_EXPIRY_SECONDS: number = 3600;

  /** Longest lifetime IssueToken accepts; also how long a rotated-out signing key keeps verifying. */
  @IsInt() @Min(60) @Max(86_400 * 30)
  JWT_MAX_EXPIRY_SECONDS: number = 86_400;

  @IsString() @MinLength(1) @MaxLength(256)
  JWT_ISSUER: string = 'soma-auth';

  @IsString() @MinLength(1) @MaxLength(256)
  JWT_AUDIENCE: string = 'soma';

  @IsInt() @Min(0) @Max(300)
  JWT_CLOCK_SKEW_SECONDS: number = 30;

  /** Larger tokens are refused before any parsing. */
  @IsInt() @Min(512) @Max(65_536)
  JWT_MAX_TOKEN_BYTES: number = 8192;

  /** Verified tokens kept in memory (revocation is still checked on every call). */
  @IsInt() @Min(0) @Max(1_000_000)
  AUTH_TOKEN_CACHE_SIZE: number = 10_000;

  // ---- API keys ----
  @IsString() @Matches(/^[a-z][a-z0-9]*-([a-z0-9]+-)?$/)
  API_KEY_PREFIX: string = 'sk-soma-';

  @IsInt() @Min(0) @Max(86_400 * 30)
  API_KEY_ROTATION_GRACE_SECONDS: number = 86_400;

  @IsInt() @Min(0) @Max(1_000_000)
  API_KEY_CACHE_SIZE: number = 10_000;

  /** last_used_at is written at most this often per key and instance (it is not on the hot path). */
  @IsInt() @Min(1) @Max(3600)
  API_KEY_LAST_USED_RESOLUTION_SECONDS: number = 60;

  // ---- Redis ----
  /** Namespace of every auth key in Redis (tests use a unique one per run). */
  @IsString() @Matches(/^[A-Za-z0-9:_.-]{1,64}$/)
  AUTH_REDIS_PREFIX: string = 'soma:auth:';

  @IsInt() @Min(50) @Max(10_000)
  AUTH_REDIS_TIMEOUT_MS: number = 500;

  /** Heartbeat period on the invalidation channel; three silent periods = channel lost (fail over to per-call Redis checks). 0 = off. */
  @IsInt() @Min(0) @Max(10_000)
  AUTH_INVALIDATION_HEARTBEAT_MS: number = 250;

  // ---- Password login ----
  @IsBoolean() @EnvBoolean()
  AUTH_ENABLED: boolean = true;

  /** The UI password. Required when AUTH_ENABLED=true. */
  @Secret({ minBytes: 12, required: false }) @IsOptional() @IsString()
  AUTH_PASSWORD?: string;

  @IsString() @Matches(/^[A-Za-z0-9._@-]{1,128}$/)
  AUTH_LOGIN_USERNAME: string = 'admin';

  /** Tenant of the session token login issues; `*` = platform operator (admin of every tenant). */
  @IsString() @MinLength(1) @MaxLength(128)
  AUTH_LOGIN_TENANT: string = '*';

  @IsArray() @EnvList() @IsString({ each: true })
  AUTH_LOGIN_SCOPES: string[] = ['auth:admin'];

  @IsInt() @Min(60) @Max(86_400)
  AUTH_SESSION_EXPIRY_SECONDS: number = 3600;

  @IsInt() @Min(1) @Max(1000)
  LOGIN_MAX_FAILURES_PER_ACCOUNT: number = 5;

  @IsInt() @Min(1) @Max(10_000)
  LOGIN_MAX_FAILURES_PER_IP: number = 20;

  /** Window over which failures are counted, and how long a lockout lasts. */
  @IsInt() @Min(1) @Max(86_400)
  LOGIN_LOCKOUT_SECONDS: number = 900;

  /** Requests to /v1/login per IP and minute, right or wrong (flood protection before any check). */
  @IsInt() @Min(1) @Max(100_000)
  LOGIN_RATE_LIMIT_PER_MINUTE: number = 60;

  /** Behind one reverse proxy: the client address (lockouts, events) is the X-Forwarded-For entry that proxy added. */
  @IsBoolean() @EnvBoolean()
  TRUST_PROXY: boolean = false;

  // ---- HTTP ----
  @IsArray() @EnvList() @IsString({ each: true })
  CORS_ORIGINS: string[] = [];

  @IsBoolean() @EnvBoolean()
  CORS_ALLOW_CREDENTIALS: boolean = false;

  // ---- Events ----
  /** authentication_succeeded is emitted once per credential per window (hot path); failures are always counted. */
  @IsInt() @Min(0) @Max(86_400)
  AUTH_SUCCESS_EVENT_WINDOW_SECONDS: number = 60;
}
