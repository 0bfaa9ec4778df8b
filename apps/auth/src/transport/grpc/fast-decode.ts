import { isIP } from 'class-validator';
import { decodeInput } from '@soma/service-runtime';
import { AuthenticateDto, VerifyApiKeyDto, VerifyTokenDto } from '../dto.js';

/**
 * Fast decoding of the three hot requests (VerifyToken, VerifyApiKey, Authenticate).
 *
 * class-transformer + class-validator cost about as much per call as the JWS verification itself.
 * These checks are a *sufficient* condition for the DTO's decorators: when they hold, the request is
 * one `decodeInput` would accept, and the same instance (same class, same fields) is built directly.
 * When any of them fails — unknown field, wrong type, too long, bad address — the request goes through
 * `decodeInput` unchanged, so every refusal is the same INVALID_ARGUMENT with the same messages.
 * `dto.ts` stays the single definition of what is valid; fast-decode.spec.ts checks the two agree.
 */

type Plain = Record<string, unknown>;

function plainObject(payload: unknown): Plain | undefined {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  const proto = Object.getPrototypeOf(payload) as unknown;
  return proto === Object.prototype || proto === null ? (payload as Plain) : undefined;
}

/** `@IsString() @MaxLength(max)`; `.length` counts UTF-16 units, never fewer than the validator's characters. */
function shortString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max;
}

/** `@IsOptional() @IsArray() @ArrayMaxSize(100) @IsString({ each: true })`: ok, and the copy to keep. */
function optionalScopes(v: unknown): { ok: boolean; value?: string[] | null | undefined } {
  if (v === undefined || v === null) return { ok: true, value: v };
  if (!Array.isArray(v) || v.length > 100) return { ok: false };
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return { ok: false };
  return { ok: true, value: (v as string[]).slice() };
}

/** Builds the DTO if every own key is allowed and passes its check; undefined sends the request to the slow path. */
function fast<T extends object>(dto: new () => T, payload: unknown, checks: Record<string, (v: unknown) => { ok: boolean; value?: unknown }>): T | undefined {
  const obj = plainObject(payload);
  if (!obj) return undefined;
  const instance = new dto() as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const check = Object.prototype.hasOwnProperty.call(checks, key) ? checks[key] : undefined;
    if (!check) return undefined;
    const r = check(obj[key]);
    if (!r.ok) return undefined;
    instance[key] = r.value;
  }
  for (const key of Object.keys(checks)) {
    // Required fields (no @IsOptional) must be present.
    if (REQUIRED.has(key) && !Object.prototype.hasOwnProperty.call(obj, key)) return undefined;
  }
  return instance as T;
}

const REQUIRED = new Set(['token', 'key', 'bearer']);
const same = (ok: boolean, value: unknown) => (ok ? { ok, value } : { ok });
const optionalShort = (max: number) => (v: unknown) => same(v === undefined || v === null || shortString(v, max), v);

const VERIFY_TOKEN = { token: (v: unknown) => same(shortString(v, 65_536), v), required_scopes: optionalScopes };
const VERIFY_API_KEY = { key: (v: unknown) => same(shortString(v, 1024), v), required_scopes: optionalScopes };
const AUTHENTICATE = {
  bearer: (v: unknown) => same(shortString(v, 65_536), v),
  required_scopes: optionalScopes,
  // @IsOptional() @ValidateIf(ip !== '') @IsIP() @MaxLength(64): class-validator's own isIP, so the same addresses pass.
  ip_address: (v: unknown) => same(v === undefined || v === null || v === '' || (shortString(v, 64) && isIP(v)), v),
  user_agent: optionalShort(1024),
};

export function decodeVerifyToken(payload: unknown): VerifyTokenDto {
  return fast(VerifyTokenDto, payload, VERIFY_TOKEN) ?? decodeInput(VerifyTokenDto, payload);
}

export function decodeVerifyApiKey(payload: unknown): VerifyApiKeyDto {
  return fast(VerifyApiKeyDto, payload, VERIFY_API_KEY) ?? decodeInput(VerifyApiKeyDto, payload);
}

export function decodeAuthenticate(payload: unknown): AuthenticateDto {
  return fast(AuthenticateDto, payload, AUTHENTICATE) ?? decodeInput(AuthenticateDto, payload);
}

/** The fast path alone (for the spec): undefined when the request would take the slow path. */
export const fastOnly = {
  verifyToken: (p: unknown) => fast(VerifyTokenDto, p, VERIFY_TOKEN),
  verifyApiKey: (p: unknown) => fast(VerifyApiKeyDto, p, VERIFY_API_KEY),
  authenticate: (p: unknown) => fast(AuthenticateDto, p, AUTHENTICATE),
};
