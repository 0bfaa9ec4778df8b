import { describe, expect, it } from 'vitest';
import { AccessCache } from './access-cache.js';
import type { AccessDecision, Caller } from './ports.js';

const T0 = 1_000_000;
const reader: Caller = { sub: 'r', tenant: 't1', personaId: '', scopes: ['secret:read'], method: 'jwt', credentialId: 'j1' };
const allow: AccessDecision = { allowed: true, reason: 'allowed', decisionId: 'd1' };
const deny: AccessDecision = { allowed: false, reason: 'policy_violation', decisionId: 'd2' };
const options = { callerTtlMs: 5000, decisionTtlMs: 2000, maxCallers: 10, maxDecisions: 10 };

describe('AccessCache', () => {
  it('keys credentials by SHA-256: the credential itself is nowhere in the key', () => {
    const credential = 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature';
    const key = AccessCache.credentialKey(credential);
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key).not.toContain('eyJ');
    expect(AccessCache.credentialKey(credential)).toBe(key);
    expect(AccessCache.credentialKey(`${credential}x`)).not.toBe(key);
  });

  it('keeps a caller for the TTL, never past the credential expiry', () => {
    const c = new AccessCache(options);
    c.rememberCaller('k1', reader, T0);
    expect(c.caller('k1', T0 + 4999)).toBe(reader);
    expect(c.caller('k1', T0 + 5000)).toBeUndefined();

    c.rememberCaller('k2', { ...reader, expiresAtMs: T0 + 1000 }, T0);
    expect(c.caller('k2', T0 + 999)).toBeDefined();
    expect(c.caller('k2', T0 + 1000)).toBeUndefined();

    // Expired (or unreadable expiry, mapped to 0 by the adapter): never stored.
    c.rememberCaller('k3', { ...reader, expiresAtMs: 0 }, T0);
    expect(c.caller('k3', T0)).toBeUndefined();
  });

  it('keeps allows only, per caller, action, name and scopes', () => {
    const c = new AccessCache(options);
    c.rememberDecision(reader, 'secret:read', 'a', allow, T0);
    c.rememberDecision(reader, 'secret:read', 'b', deny, T0);
    expect(c.decision(reader, 'secret:read', 'a', T0 + 1999)).toBe(allow);
    expect(c.decision(reader, 'secret:read', 'a', T0 + 2000)).toBeUndefined();
    expect(c.decision(reader, 'secret:read', 'b', T0)).toBeUndefined();
    c.rememberDecision(reader, 'secret:read', 'a', allow, T0);
    expect(c.decision(reader, 'secret:write', 'a', T0)).toBeUndefined();
    expect(c.decision({ ...reader, scopes: ['secret:read:other/*'] }, 'secret:read', 'a', T0)).toBeUndefined();
    expect(c.decision({ ...reader, sub: 'someone-else' }, 'secret:read', 'a', T0)).toBeUndefined();
    expect(c.decision({ ...reader, tenant: 't2' }, 'secret:read', 'a', T0)).toBeUndefined();
    expect(c.decision({ ...reader, personaId: 'p' }, 'secret:read', 'a', T0)).toBeUndefined();
    expect(c.decision({ ...reader, method: 'api_key' }, 'secret:read', 'a', T0)).toBeUndefined();
  });

  it('cannot be fooled by field boundaries in the decision key', () => {
    const c = new AccessCache(options);
    c.rememberDecision({ ...reader, sub: 'a', tenant: 'b,c' }, 'secret:read', 'x', allow, T0);
    expect(c.decision({ ...reader, sub: 'a,b', tenant: 'c' }, 'secret:read', 'x', T0)).toBeUndefined();
    c.rememberDecision({ ...reader, scopes: ['secret:read:a","b'] }, 'secret:read', 'x', allow, T0);
    expect(c.decision({ ...reader, scopes: ['secret:read:a', 'b'] }, 'secret:read', 'x', T0)).toBeUndefined();
  });

  it('never keeps a decision past the credential expiry', () => {
    const c = new AccessCache(options);
    const shortLived = { ...reader, expiresAtMs: T0 + 500 };
    c.rememberDecision(shortLived, 'secret:read', 'a', allow, T0);
    expect(c.decision(shortLived, 'secret:read', 'a', T0 + 499)).toBe(allow);
    expect(c.decision(shortLived, 'secret:read', 'a', T0 + 500)).toBeUndefined();
  });

  it('with TTL 0 remembers nothing', () => {
    const c = new AccessCache({ ...options, callerTtlMs: 0, decisionTtlMs: 0 });
    c.rememberCaller('k1', reader, T0);
    c.rememberDecision(reader, 'secret:read', 'a', allow, T0);
    expect(c.caller('k1', T0)).toBeUndefined();
    expect(c.decision(reader, 'secret:read', 'a', T0)).toBeUndefined();
  });

  it('stays bounded whatever callers send', () => {
    const c = new AccessCache({ ...options, maxCallers: 5, maxDecisions: 5 });
    for (let i = 0; i < 100; i++) {
      c.rememberCaller(`k${i}`, reader, T0);
      c.rememberDecision(reader, 'secret:read', `n${i}`, allow, T0);
    }
    expect(c.caller('k99', T0)).toBe(reader);
    expect(c.caller('k94', T0)).toBeUndefined();
    expect(c.decision(reader, 'secret:read', 'n99', T0)).toBe(allow);
    expect(c.decision(reader, 'secret:read', 'n94', T0)).toBeUndefined();
  });
});
