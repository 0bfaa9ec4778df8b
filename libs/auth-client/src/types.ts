/** Wire types of soma.auth.v1 (keepCase: field names as in the proto; enums as strings; int64 as strings). */

export type AuthMethodWire = 'AUTH_METHOD_UNSPECIFIED' | 'AUTH_METHOD_JWT' | 'AUTH_METHOD_API_KEY';

export interface PrincipalWire {
  sub: string;
  tenant: string;
  persona_id: string;
  scopes: string[];
  method: AuthMethodWire;
  credential_id: string;
  expires_at: string;
}

/** Who is calling, as other services use it. */
export interface Principal {
  sub: string;
  tenant: string;
  personaId: string;
  scopes: string[];
  method: 'jwt' | 'api_key';
  /** jti of the JWT, or the API key id (never the secret). */
  credentialId: string;
  /** RFC 3339; undefined when the credential never expires. */
  expiresAt?: string;
}

export type VerifyApiKeyResult =
  | 'VALID'
  | 'NOT_FOUND'
  | 'REVOKED'
  | 'EXPIRED'
  | 'RATE_LIMITED'
  | 'USAGE_EXCEEDED'
  | 'INSUFFICIENT_SCOPE';

export interface VerifyApiKeyResponse {
  result: VerifyApiKeyResult;
  principal?: Principal;
  remaining?: number;
  retryAfterMs?: number;
}

export interface IssuedToken {
  token: string;
  token_type: string;
  jti: string;
  kid: string;
  issued_at: string;
  expires_at: string;
}

export interface UsageBudget {
  remaining: string | number;
  refill_amount?: string | number;
  refill_interval_seconds?: string | number;
}

export interface RateLimit {
  limit: number;
  window_seconds: number;
}

export interface ApiKeyRecord {
  id: string;
  tenant: string;
  name: string;
  scopes: string[];
  masked: string;
  created_at: string;
  expires_at: string;
  last_used_at: string;
  revoked: boolean;
  revoked_at: string;
  owner_sub: string;
  persona_id: string;
  external_id: string;
  metadata: Record<string, string>;
  budget: UsageBudget | null;
  rate_limit: RateLimit | null;
  grace_until: string;
  replaced_by: string;
}

export interface CreateApiKeyInput {
  tenant: string;
  name: string;
  scopes?: string[];
  expires_at?: string;
  owner_sub?: string;
  persona_id?: string;
  external_id?: string;
  metadata?: Record<string, string>;
  budget?: UsageBudget;
  rate_limit?: RateLimit;
}

export interface CreatedApiKey {
  /** The secret: shown once. */
  key: string;
  api_key: ApiKeyRecord;
}

export interface RotatedApiKey extends CreatedApiKey {
  previous: ApiKeyRecord;
}

export interface SigningKeyInfo {
  kid: string;
  alg: string;
  created_at: string;
  retire_at: string;
  signing: boolean;
}

export interface ServiceInfo {
  service: string;
  version: string;
  instance_id: string;
  started_at: string;
}

export function principalFromWire(p: PrincipalWire): Principal {
  return {
    sub: p.sub,
    tenant: p.tenant,
    personaId: p.persona_id || 'default',
    scopes: [...(p.scopes ?? [])],
    method: p.method === 'AUTH_METHOD_API_KEY' ? 'api_key' : 'jwt',
    credentialId: p.credential_id,
    ...(p.expires_at ? { expiresAt: p.expires_at } : {}),
  };
}
