/** Values that are never acceptable as secrets, whatever their length. */
const KNOWN_WEAK = new Set(['changeme', 'change-me', 'secret', 'password', 'default', 'test', 'example', 'admin', 'letmein', 'your-secret-key', 'supersecret']);

/**
 * A secret is weak when it is shorter than `minBytes`, a known placeholder, or carries obviously
 * little entropy (one repeated character, or fewer than 8 distinct characters).
 * Returns a reason without echoing the value, or null when strong enough.
 */
export function weakSecretReason(value: string, minBytes: number): string | null {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < minBytes) return `must be at least ${minBytes} bytes (${minBytes * 8} bits); got ${bytes}`;
  const lower = value.toLowerCase();
  for (const weak of KNOWN_WEAK) {
    if (lower.replaceAll(/[^a-z-]/g, '').startsWith(weak) && new Set(value).size < 12) return 'is a well-known placeholder';
  }
  if (new Set(value).size < 8) return 'has too little variety of characters to be random';
  return null;
}
