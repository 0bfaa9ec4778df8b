import { IsBoolean, IsIn, IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, IsUrl, Matches, Max, Min, ValidateIf } from 'class-validator';
import { CommonConfig, EnvBoolean } from '@soma/config';

/** The authz service's configuration; property names are the environment variable names. */
export class AuthzConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  AUTHZ_GRPC_PORT: number = 20030;

  @IsInt() @Min(1) @Max(65535)
  AUTHZ_HTTP_PORT: number = 20031;

  /**
   * `required`: every gRPC call and the policy view carry `authorization: Bearer <JWT or API key>`, authenticated
   * by auth; the caller needs the call's scope (authz:check / authz:write / authz:read, or authz:admin) and the
   * request's tenant (or tenant `*`). Default: `required` when NODE_ENV=production, else `off`.
   */
  @IsOptional() @IsIn(['required', 'off'])
  AUTHZ_CALLER_AUTH?: 'required' | 'off' = undefined;

  /** auth's gRPC address, for AUTHZ_CALLER_AUTH=required. */
  @IsString() @Matches(/^[A-Za-z0-9.-]+:\d{1,5}$/)
  AUTH_GRPC_ADDRESS: string = '127.0.0.1:20020';

  @IsInt() @Min(50) @Max(30_000)
  AUTH_DEADLINE_MS: number = 1000;

  /** How long an authenticated caller credential is trusted before auth is asked again (bounds revocation delay). */
  @IsInt() @Min(0) @Max(300_000)
  AUTHZ_CALLER_CACHE_TTL_MS: number = 5000;

  /** `server`: ask the OPA server over HTTP; `wasm`: evaluate the same Rego compiled to WebAssembly in-process. */
  @IsIn(['server', 'wasm'])
  AUTHZ_POLICY_MODE: 'server' | 'wasm' = 'server';

  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  OPA_URL: string = 'http://127.0.0.1:20009';

  /** Past this an OPA call is abandoned and the decision is a deny (policy_unavailable). */
  @IsInt() @Min(10) @Max(30_000)
  OPA_TIMEOUT_MS: number = 500;

  /** How often the loaded policy set is fingerprinted (GET /v1/policies) to drop cached decisions after a reload. */
  @IsInt() @Min(100) @Max(60_000)
  OPA_POLICY_POLL_MS: number = 1000;

  /** The compiled policy for `wasm` mode (built by scripts in infra/policy/build-wasm.sh). */
  @IsString()
  OPA_WASM_PATH: string = '.local/policy/policy.wasm';

  /** Policy path CheckTool evaluates. */
  @IsString() @Matches(/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)*$/)
  AUTHZ_TOOL_POLICY_PATH: string = 'tool_policy/allow';

  /** Decision cache lifetime; 0 disables the cache. Entries are also dropped on policy / relationship changes. */
  @IsInt() @Min(0) @Max(300_000)
  AUTHZ_DECISION_CACHE_TTL_MS: number = 2000;

  @IsInt() @Min(1) @Max(10_000_000)
  AUTHZ_DECISION_CACHE_MAX: number = 100_000;

  /** Which grants are audited: denials always are. */
  @IsIn(['all', 'sampled', 'none'])
  AUTHZ_GRANTED_EVENTS: 'all' | 'sampled' | 'none' = 'none';

  @IsNumber() @Min(0) @Max(1)
  AUTHZ_GRANTED_SAMPLE_RATE: number = 0.01;

  @IsBoolean() @EnvBoolean()
  OPENFGA_ENABLED: boolean = false;

  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  OPENFGA_API_URL: string = 'http://127.0.0.1:8080';

  /** Printed by `npx soma authz openfga init`. Required when OPENFGA_ENABLED=true. */
  @IsString()
  @ValidateIf((c: AuthzConfig) => c.OPENFGA_ENABLED)
  @IsNotEmpty({ message: 'OPENFGA_STORE_ID is required when OPENFGA_ENABLED=true (run `npx soma authz openfga init`)' })
  OPENFGA_STORE_ID: string = '';

  /** Authorization model id; the store's latest model when empty. */
  @IsString()
  OPENFGA_MODEL_ID: string = '';

  @IsInt() @Min(10) @Max(30_000)
  OPENFGA_TIMEOUT_MS: number = 1000;

  /** How often OpenFGA's change feed (ReadChanges) is polled to drop cached relationship decisions. */
  @IsInt() @Min(100) @Max(60_000)
  OPENFGA_CHANGES_POLL_MS: number = 1000;

  /** OpenFGA's ListObjects result cap (its --listObjects-max-results); a result this long is reported truncated. */
  @IsInt() @Min(1) @Max(100_000)
  OPENFGA_LIST_OBJECTS_MAX_RESULTS: number = 1000;
}
