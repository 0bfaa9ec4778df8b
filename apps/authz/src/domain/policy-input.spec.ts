import { describe, it, expect } from 'vitest';
import { AuthzError } from './authz.errors.js';
import { isAllow, normalizePolicyPath, toolInputJson, validateInputJson } from './policy-input.js';
import { mintConsistencyToken, parseConsistencyToken } from './consistency-token.js';

describe('policy inputs', () => {
  it('normalizes dotted and slashed paths and refuses anything else', () => {
    expect(normalizePolicyPath('tool_policy.allow')).toBe('tool_policy/allow');
    expect(normalizePolicyPath('tool_policy/allow')).toBe('tool_policy/allow');
    for (const bad of ['', '/x', 'x/', 'a..b', 'a/../b', 'a b', 'a?b=1', '1abc/allow', 'system/version', 'system.authz.allow', 'x'.repeat(300)]) {
      expect(() => normalizePolicyPath(bad), bad).toThrow(AuthzError);
    }
  });

  it('accepts only a JSON object as input, re-serialized', () => {
    expect(validateInputJson(' { "a" : 1 } ')).toBe('{"a":1}');
    for (const bad of ['', 'null', '1', '"x"', '[]', '{', '{"a":1}x']) expect(() => validateInputJson(bad), bad).toThrow(AuthzError);
  });

  it('builds the CheckTool input flat and nested', () => {
    expect(JSON.parse(toolInputJson('web_search', { sub: 's', tenant: 't', persona_id: 'p' }))).toEqual({
      tool: 'web_search', tenant: 't', user: 's', persona_id: 'p', principal: { sub: 's', tenant: 't', persona_id: 'p' },
    });
  });

  it('treats only exact true (or allow/allowed true) as allow', () => {
    expect([true, { allow: true }, { allowed: true }].map(isAllow)).toEqual([true, true, true]);
    expect([false, 1, 'true', [true], null, undefined, { allow: 1 }, {}].map(isAllow).some(Boolean)).toBe(false);
  });

  it('mints and parses consistency tokens; malformed ones are refused', () => {
    const t = mintConsistencyToken(1_800_000_000_000);
    expect(parseConsistencyToken(t)).toEqual({ writtenAt: 1_800_000_000_000 });
    expect(parseConsistencyToken('')).toBeUndefined();
    for (const bad of ['x', 'ct1..abc', 'ct2.abc.abcdefgh', 'ct1.ABC.abcdefgh']) expect(() => parseConsistencyToken(bad), bad).toThrow(AuthzError);
  });
});
