import { AuthzError, AuthzErrorCode } from './authz.errors.js';

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_INPUT_JSON_BYTES = 64 * 1024;

/** `tool_policy.allow` or `tool_policy/allow` → `tool_policy/allow`; anything else is INVALID_ARGUMENT. */
export function normalizePolicyPath(path: string): string {
  const parts = path.trim().split(/[./]/);
  if (path.length > 256 || parts.length === 0 || !parts.every((p) => SEGMENT.test(p))) {
    throw new AuthzError(AuthzErrorCode.InvalidArgument, 'path must be policy path segments (letters, digits, _) separated by / or .');
  }
  // OPA's own namespace (data.system: authorization, bundle and diagnostics config) is never exposed.
  if (parts[0] === 'system') throw new AuthzError(AuthzErrorCode.InvalidArgument, 'the system namespace cannot be evaluated');
  return parts.join('/');
}

/** The input must be a JSON object (OPA's `input` document), bounded in size; returned re-serialized. */
export function validateInputJson(text: string): string {
  if (Buffer.byteLength(text, 'utf8') > MAX_INPUT_JSON_BYTES) {
    throw new AuthzError(AuthzErrorCode.InvalidArgument, `input_json is larger than ${MAX_INPUT_JSON_BYTES} bytes`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AuthzError(AuthzErrorCode.InvalidArgument, 'input_json is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AuthzError(AuthzErrorCode.InvalidArgument, 'input_json must be a JSON object');
  }
  // Re-serialized: what reaches OPA is exactly what was validated, never a second parse of raw text.
  return JSON.stringify(parsed);
}

export interface ToolPrincipal {
  sub: string;
  tenant: string;
  persona_id: string;
}

/** The input document CheckTool sends: the tool and the principal, flat and nested (policies may use either). */
export function toolInputJson(tool: string, p: ToolPrincipal): string {
  return JSON.stringify({
    tool,
    tenant: p.tenant,
    user: p.sub,
    persona_id: p.persona_id,
    principal: { sub: p.sub, tenant: p.tenant, persona_id: p.persona_id },
  });
}

/** A policy result means "allow" only when it is exactly true, or an object whose allow/allowed is exactly true. */
export function isAllow(value: unknown): boolean {
  if (value === true) return true;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    return o['allow'] === true || o['allowed'] === true;
  }
  return false;
}
