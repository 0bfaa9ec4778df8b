export type AuthMethod = 'jwt' | 'api_key';

/** Who is calling: the answer of Authenticate. */
export interface Principal {
  sub: string;
  tenant: string;
  persona_id: string;
  scopes: string[];
  method: AuthMethod;
  /** jti of a JWT, id of an API key. */
  credential_id: string;
  /** Unix seconds; undefined = never. */
  expires_at?: number;
}

/** Scope needed for the administrative API (its own tenant; tenant `*` = every tenant). */
export const ADMIN_SCOPE = 'auth:admin';
export const ALL_TENANTS = '*';

export function hasScopes(granted: readonly string[], required: readonly string[]): boolean {
  return required.every((r) => granted.includes(r));
}

export function canAdminister(p: Principal, tenant: string): boolean {
  return p.scopes.includes(ADMIN_SCOPE) && (p.tenant === ALL_TENANTS || p.tenant === tenant);
}
