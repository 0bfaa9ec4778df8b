import { type KeyObject } from 'node:crypto';
import { flattenedVerify } from 'jose';

/** Why a compact JWS was refused. Kept coarse on the wire (INVALID_TOKEN), precise in logs and events. */
export type JwsRejection =
  | 'oversized'
  | 'malformed'
  | 'forbidden_header'
  | 'unknown_header'
  | 'alg_not_allowed'
  | 'missing_kid'
  | 'unknown_kid'
  | 'key_alg_mismatch'
  | 'bad_signature';

export class JwsRejected extends Error {
  constructor(readonly reason: JwsRejection) {
    super(`jws rejected: ${reason}`);
    this.name = 'JwsRejected';
  }
}

/** A verification key, imported once (KeyObject), bound to exactly one algorithm. */
export interface VerificationKey {
  kid: string;
  alg: string;
  key: KeyObject;
}

export interface JwsHeader {
  alg: string;
  kid: string;
  typ?: string;
}

export interface VerifiedJws {
  header: JwsHeader;
  payload: Uint8Array;
  key: VerificationKey;
}

/** Header parameters that make a verifier fetch or trust key material from the token itself: never honoured. */
const FORBIDDEN_HEADERS = new Set(['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip', 'enc']);
/** The only header parameters a Soma token may carry. Anything else is refused (unknown crit-like extensions). */
const ALLOWED_HEADERS = new Set(['alg', 'kid', 'typ']);
const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Last characters allowed when a segment ends in a partial group: with 2 characters left (1 byte)
 * the last one carries 4 unused bits, with 3 left (2 bytes) 2 unused bits, and they must be zero.
 */
const LAST_OF_2 = /[AQgw]$/;
const LAST_OF_3 = /[AEIMQUYcgkosw048]$/;

/**
 * base64url without padding, and canonical: no stray trailing bits (which lenient decoders silently accept).
 * Alphabet, length and unused bits are checked directly (the same inputs are refused as by decoding and
 * re-encoding, which cost a second base64 pass per segment).
 */
function checkSegment(segment: string): void {
  const rest = segment.length % 4;
  if (rest === 1 || !B64URL.test(segment)) throw new JwsRejected('malformed');
  if ((rest === 2 && !LAST_OF_2.test(segment)) || (rest === 3 && !LAST_OF_3.test(segment))) throw new JwsRejected('malformed');
}

function decodeSegment(segment: string): Buffer {
  checkSegment(segment);
  return Buffer.from(segment, 'base64url');
}

export interface JwsVerifierOptions {
  /** The pinned algorithms; a header naming anything else is refused before any key is touched. */
  algorithms: readonly string[];
  maxBytes: number;
}

/**
 * Compact-serialization JWS verification with a pinned algorithm list and a closed key set.
 * Order matters: size → shape → canonical encoding → header allow-list → alg pin → kid lookup →
 * key/alg binding → signature (jose). Keys are looked up by kid in an in-memory map of KeyObjects,
 * so no key is parsed per call.
 */
export class JwsVerifier {
  private readonly algorithms: ReadonlySet<string>;

  constructor(private readonly options: JwsVerifierOptions) {
    this.algorithms = new Set(options.algorithms);
  }

  /** Parse and check everything but the signature; cheap, synchronous. */
  inspect(token: unknown, lookup: (kid: string) => VerificationKey | undefined): { header: JwsHeader; key: VerificationKey; parts: [string, string, string] } {
    if (typeof token !== 'string' || token.length === 0) throw new JwsRejected('malformed');
    if (token.length > this.options.maxBytes) throw new JwsRejected('oversized');
    const parts = token.split('.');
    if (parts.length !== 3) throw new JwsRejected('malformed');
    const [h, p, s] = parts as [string, string, string];
    if (h.length === 0 || s.length === 0) throw new JwsRejected('malformed');
    const headerBytes = decodeSegment(h);
    // Payload and signature are decoded by jose after the signature check; here only their form is checked.
    checkSegment(p);
    checkSegment(s);
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch {
      throw new JwsRejected('malformed');
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new JwsRejected('malformed');
    const record = header as Record<string, unknown>;
    for (const name of Object.keys(record)) {
      if (FORBIDDEN_HEADERS.has(name)) throw new JwsRejected('forbidden_header');
      if (!ALLOWED_HEADERS.has(name)) throw new JwsRejected('unknown_header');
    }
    const alg = record['alg'];
    if (typeof alg !== 'string' || !this.algorithms.has(alg)) throw new JwsRejected('alg_not_allowed');
    const kid = record['kid'];
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) throw new JwsRejected('missing_kid');
    if (record['typ'] !== undefined && typeof record['typ'] !== 'string') throw new JwsRejected('malformed');
    const key = lookup(kid);
    if (!key) throw new JwsRejected('unknown_kid');
    // A key verifies only the algorithm it was made for: this is what stops HS/RS confusion even if
    // several algorithms were ever pinned at once.
    if (key.alg !== alg) throw new JwsRejected('key_alg_mismatch');
    return { header: { alg, kid, ...(typeof record['typ'] === 'string' ? { typ: record['typ'] } : {}) }, key, parts: [h, p, s] };
  }

  /** The kid of a token whose shape is otherwise acceptable (for the unknown-kid refresh), else undefined. */
  inspectKid(token: unknown): string | undefined {
    let kid: string | undefined;
    try {
      this.inspect(token, (k) => {
        kid = k;
        return undefined;
      });
    } catch {
      /* unknown_kid is expected here */
    }
    return kid;
  }

  async verify(token: unknown, lookup: (kid: string) => VerificationKey | undefined): Promise<VerifiedJws> {
    const { header, key, parts } = this.inspect(token, lookup);
    try {
      const { payload } = await flattenedVerify({ protected: parts[0], payload: parts[1], signature: parts[2] }, key.key, { algorithms: [key.alg] });
      return { header, payload, key };
    } catch {
      throw new JwsRejected('bad_signature');
    }
  }
}
