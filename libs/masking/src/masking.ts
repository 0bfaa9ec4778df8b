/**
 * Masking of credentials and personal data before they reach a log line, an event or an error.
 * Every function is total: any input yields a string that never contains the secret part.
 */

const API_KEY_PATTERN = /\bsk-[a-z0-9]+-[A-Za-z0-9]{8,}\b/g;
const BEARER_PATTERN = /\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*/gi;
const JWT_PATTERN = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const FERNET_TOKEN_PATTERN = /\bgAAAAA[A-Za-z0-9_-]{20,}={0,2}/g;
/** A Fernet key as generated: exactly 43 URL-safe base64 characters and one `=` (32 bytes), standing alone. */
const FERNET_KEY_PATTERN = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9_=-])/g;
const EMAIL_PATTERN = /\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b/g;

/** `sk-soma-AbCd…wxyz` → `sk-soma-…wxyz` (the seed's rule: keep the first 8 and the last 4 characters). */
export function maskApiKey(key: string): string {
  if (key.length <= 12) return '***';
  return `${key.slice(0, 8)}…${key.slice(-4)}`;
}

/** A bearer token keeps only its scheme: the token itself is never shown, not even in part. */
export function maskBearer(header: string): string {
  const [scheme] = header.split(/\s+/, 1);
  return `${scheme ?? 'Bearer'} ***`;
}

/** `alice@example.com` → `a***@example.com`. */
export function maskEmail(email: string): string {
  return email.replace(EMAIL_PATTERN, (_m, first: string, domain: string) => `${first}***@${domain}`);
}

/** A Fernet key (or any key material) is never shown; its length class is enough for diagnostics. */
export function maskFernetKey(_key: string): string {
  return '[fernet-key]';
}

/**
 * Every credential pattern above needs one of these (`sk-`, Bearer/Basic, `eyJ`, `gAAAAA`, the `=` of a Fernet
 * key): text without any is returned as is, without running five expressions over it. Most strings in events
 * and log lines are of that kind, and masking runs on every security event.
 */
const MAYBE_CREDENTIAL = /sk-|bearer|basic|eyJ|gAAAAA|=/i;

/** Replace every credential-shaped substring of free text. */
export function maskSecretsInText(text: string): string {
  if (!MAYBE_CREDENTIAL.test(text)) return text;
  return text
    .replace(BEARER_PATTERN, (m) => maskBearer(m))
    .replace(JWT_PATTERN, '[jwt]')
    .replace(API_KEY_PATTERN, (m) => maskApiKey(m))
    .replace(FERNET_TOKEN_PATTERN, '[fernet-token]')
    .replace(FERNET_KEY_PATTERN, (m) => maskFernetKey(m));
}

/** Field names whose values are secret whatever they look like. */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'password', 'passwd', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'authorization',
  'api_key', 'apikey', 'apiKey', 'client_secret', 'private_key', 'privateKey', 'fernet_key', 'fernetKey',
  'jwt', 'credential', 'credentials', 'cookie', 'set-cookie', 'value', 'plaintext',
];
const SECRET_FIELDS = new Set(SECRET_FIELD_NAMES.map((n) => n.toLowerCase()));

export function isSecretFieldName(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_FIELDS.has(lower) || lower.endsWith('_secret') || lower.endsWith('password') || lower.endsWith('_token');
}

/**
 * Deep copy with secret fields replaced and credential-shaped strings masked.
 * Cycles and depth are bounded so that hostile objects cannot hang a logger.
 */
export function maskSecretsDeep<T>(value: T, depth = 0, seen = new WeakSet<object>()): T {
  if (typeof value === 'string') return maskSecretsInText(value) as T;
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[depth]' as T;
  if (seen.has(value as object)) return '[cycle]' as T;
  seen.add(value as object);
  if (Array.isArray(value)) return value.map((v) => maskSecretsDeep(v, depth + 1, seen)) as T;
  if (value instanceof Error) return { name: value.name, message: maskSecretsInText(value.message) } as T;
  if (Buffer.isBuffer(value)) return '[bytes]' as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = isSecretFieldName(k) && v !== undefined && v !== null ? '[redacted]' : maskSecretsDeep(v, depth + 1, seen);
  }
  return out as T;
}

/** Returned by `maskPlainJson` when the value is not plain JSON data (JSON would transform it: Date, undefined, NaN…). */
const NOT_PLAIN = Symbol('not plain JSON');

function maskText(text: string): string {
  const masked = maskSecretsInText(text);
  return masked.includes('@') ? maskEmail(masked) : masked;
}

/** One walk for plain JSON data: the same result as the general path below, without its copy and JSON round trip. */
function maskPlainJson(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return maskText(value);
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? value : NOT_PLAIN;
  if (typeof value !== 'object' || depth > 8) return NOT_PLAIN;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return NOT_PLAIN;
      const v = maskPlainJson(value[i], depth + 1);
      if (v === NOT_PLAIN) return NOT_PLAIN;
      out[i] = v;
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) return NOT_PLAIN;
    if (isSecretFieldName(k) && v !== null) {
      if (typeof v === 'function') return NOT_PLAIN;
      out[k] = '[redacted]';
      continue;
    }
    const m = maskPlainJson(v, depth + 1);
    if (m === NOT_PLAIN) return NOT_PLAIN;
    out[k] = m;
  }
  return out;
}

/** Personal fields in event details: e-mail addresses anywhere, plus the credential rules. */
export function maskPersonalData<T>(value: T): T {
  const plain = maskPlainJson(value, 0);
  if (plain !== NOT_PLAIN) return plain as T;
  const masked = maskSecretsDeep(value);
  return JSON.parse(JSON.stringify(masked ?? null, (_k, v) => (typeof v === 'string' ? maskEmail(v) : v))) as T;
}
