import { IsArray, IsBoolean, IsIn, IsInt, IsOptional, IsString, IsUrl, Matches, Max, Min } from 'class-validator';
import { EnvBoolean, EnvList } from './load-config.js';

/**
 * Settings every service shares. A service's own config class extends this one and adds its ports
 * and secrets; property names are the environment variable names.
 */
export class CommonConfig {
  @IsIn(['development', 'test', 'production'])
  NODE_ENV: 'development' | 'test' | 'production' = 'development';

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: string = 'info';

  /** Bind address of every listener; loopback unless a deployment says otherwise. */
  @IsString()
  BIND_HOST: string = '127.0.0.1';

  @IsArray() @EnvList() @IsString({ each: true })
  KAFKA_BROKERS: string[] = ['127.0.0.1:9092'];

  @IsInt() @Min(1) @Max(5)
  KAFKA_REPLICATION_FACTOR: number = 1;

  /** Where the durable event buffer (outbox) lives; one file per service instance. */
  @IsString()
  EVENT_BUFFER_DIR: string = '.local/buffer';

  @IsOptional() @IsString()
  EVENT_BUFFER_PATH?: string;

  @IsInt() @Min(100) @Max(10_000_000)
  EVENT_BUFFER_MAX_EVENTS: number = 1_000_000;

  /** `normal` survives a process crash; `full` also survives power loss, at an fsync per write. */
  @IsIn(['normal', 'full'])
  EVENT_BUFFER_SYNC: 'normal' | 'full' = 'normal';

  @IsString() @Matches(/^redis(s)?:\/\//)
  REDIS_URL: string = 'redis://127.0.0.1:6379';

  /** With REDIS_URL=rediss://…: the CA that signed Redis' certificate, and a client pair for `tls-auth-clients yes`. */
  @IsOptional() @IsString()
  REDIS_TLS_CA_PATH?: string = undefined;

  @IsOptional() @IsString()
  REDIS_TLS_CERT_PATH?: string = undefined;

  @IsOptional() @IsString()
  REDIS_TLS_KEY_PATH?: string = undefined;

  /** Connect to the brokers over TLS (an SSL listener); the server certificate is always verified. */
  @IsBoolean() @EnvBoolean()
  KAFKA_TLS_ENABLED: boolean = false;

  @IsOptional() @IsString()
  KAFKA_TLS_CA_PATH?: string = undefined;

  /** Client pair for brokers with `ssl.client.auth=required`. */
  @IsOptional() @IsString()
  KAFKA_TLS_CERT_PATH?: string = undefined;

  @IsOptional() @IsString()
  KAFKA_TLS_KEY_PATH?: string = undefined;

  @IsBoolean() @EnvBoolean()
  VAULT_ENABLED: boolean = false;

  @IsOptional() @IsUrl({ require_tld: false, require_protocol: true })
  VAULT_ADDR?: string;

  @IsString()
  INSTANCE_ID: string = `${process.pid}`;

  @IsBoolean() @EnvBoolean()
  OTEL_ENABLED: boolean = true;

  /** Serve gRPC and HTTP over TLS with TLS_CERT_PATH / TLS_KEY_PATH (PEM files, mounted read-only). */
  @IsBoolean() @EnvBoolean()
  TLS_ENABLED: boolean = false;

  @IsOptional() @IsString()
  TLS_CERT_PATH?: string = undefined;

  @IsOptional() @IsString()
  TLS_KEY_PATH?: string = undefined;

  /** The suite CA: with it, gRPC requires client certificates (mutual TLS between the suite's services). */
  @IsOptional() @IsString()
  TLS_CA_PATH?: string = undefined;

  /** `require`: HTTP routes other than /healthz, /readyz, /metrics need a client certificate too. */
  @IsIn(['none', 'require'])
  TLS_HTTP_CLIENT_AUTH: 'none' | 'require' = 'none';
}
