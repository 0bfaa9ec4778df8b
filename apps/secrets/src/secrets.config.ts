import { IsArray, IsInt, IsOptional, IsString, Matches, Max, Min, registerDecorator, type ValidationArguments } from 'class-validator';
import { CommonConfig, EnvList, Secret } from '@soma/config';
import { parseFernetKeyList } from '@soma/fernet';

/** Valid when the value parses as a FERNET_KEY list; the message names the bad entry, never its content. */
function IsFernetKeyList(): PropertyDecorator {
  return (target, property) =>
    registerDecorator({
      name: 'isFernetKeyList',
      target: target.constructor,
      propertyName: String(property),
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') return false;
          try {
            parseFernetKeyList(value);
            return true;
          } catch {
            return false;
          }
        },
        defaultMessage: (args?: ValidationArguments) => {
          let why = 'is not set';
          try {
            if (typeof args?.value === 'string') parseFernetKeyList(args.value);
          } catch (e) {
            why = (e as Error).message;
          }
          return `${String(property)} must be a comma-separated list of Fernet keys, newest first (URL-safe base64 of 32 bytes each, e.g. from \`npx soma secrets generate-key\`): ${why}`;
        },
      },
    });
}

/** The secrets service's configuration; property names are the environment variable names. */
export class SecretsConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  SECRETS_GRPC_PORT: number = 20040;

  @IsInt() @Min(1) @Max(65535)
  SECRETS_HTTP_PORT: number = 20041;

  /**
   * Fernet keys, newest first: the first encrypts, every one decrypts (rotation). Also from
   * FERNET_KEY_FILE or a vault:// reference. Checked by shape (32 random bytes), not by the
   * generic strength rule.
   */
  @Secret({ minBytes: 0 }) @IsString() @IsFernetKeyList()
  FERNET_KEY!: string;

  /** Redis key prefix of stored secrets; `llm_cred:` is the seed's layout (`llm_cred:<name>`). */
  @IsString() @Matches(/^[A-Za-z0-9._:/-]{1,64}$/)
  SECRETS_KEY_PREFIX: string = 'llm_cred:';

  /** host:port of the auth service's gRPC API (authenticates every caller). */
  @IsString() @Matches(/^[A-Za-z0-9.-]+:\d{1,5}$/)
  AUTH_GRPC_ADDRESS: string = '127.0.0.1:20020';

  /** host:port of the authz service's gRPC API (decides every access). */
  @IsString() @Matches(/^[A-Za-z0-9.-]+:\d{1,5}$/)
  AUTHZ_GRPC_ADDRESS: string = '127.0.0.1:20030';

  /** Policy path authz evaluates for secret access (infra/policy/secrets_policy.rego). */
  @IsString() @Matches(/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)*$/)
  SECRETS_POLICY_PATH: string = 'secrets_policy/allow';

  /** The secrets service's own credential for authz (API key or JWT with authz:check, tenant *); needed when authz runs with AUTHZ_CALLER_AUTH=required. */
  @Secret({ minBytes: 16, required: false }) @IsOptional() @IsString()
  AUTHZ_CREDENTIAL?: string;

  /**
   * Tenants whose principals may use the secrets service at all (the platform's credentials are not a tenant's):
   * a caller of any other tenant is refused before the policy is asked, whatever its scopes.
   */
  @IsArray() @EnvList() @IsString({ each: true })
  SECRETS_TENANTS: string[] = ['*', 'platform'];

  /** Deadline of each auth / authz call; past it the call is refused (fail closed). */
  @IsInt() @Min(50) @Max(30_000)
  SECRETS_ACCESS_CHECK_TIMEOUT_MS: number = 2000;

  /**
   * How long the principal auth returned for a credential is reused without asking auth again (keyed by the
   * credential's SHA-256, never past the credential's expiry). Bound of the delay before a revoked JWT or
   * API key stops working here. 0 = ask auth on every call.
   */
  @IsInt() @Min(0) @Max(60_000)
  SECRETS_CALLER_CACHE_TTL_MS: number = 5000;

  /**
   * How long authz's allow for (caller, scopes, secret:read, name) is reused without asking authz again; denies
   * and failures are never reused, writes and rotations always ask. Bound of the delay before a policy change
   * that removes a read grant bites here (add authz's AUTHZ_DECISION_CACHE_TTL_MS behind it). 0 = ask every call.
   */
  @IsInt() @Min(0) @Max(60_000)
  SECRETS_DECISION_CACHE_TTL_MS: number = 5000;

  /** Entries of each of the two caches (callers, decisions); the oldest goes first when full. */
  @IsInt() @Min(1) @Max(1_000_000)
  SECRETS_ACCESS_CACHE_MAX: number = 10_000;

  /** Token for vault:// references stored as secrets (with VAULT_ENABLED and VAULT_ADDR). Issued by Vault, so no strength rule. */
  @Secret({ minBytes: 0, required: false }) @IsOptional() @IsString()
  VAULT_TOKEN?: string;

  /** Folders `file://` references may point into (Docker secrets); anything else is refused. */
  @IsArray() @EnvList() @IsString({ each: true }) @Matches(/^\//, { each: true })
  SECRETS_FILE_REFERENCE_DIRS: string[] = ['/run/secrets'];
}
