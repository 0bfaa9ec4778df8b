import { describe, expect, it } from 'vitest';
import { authorizeGlobal, authorizeTenantRead, type AuditCaller } from './access.js';
import { AuditErrorCode } from './audit.errors.js';

const caller = (tenant: string, ...scopes: string[]): AuditCaller => ({ subject: 's', tenant, scopes });
const code = (f: () => unknown) => {
  try {
    f();
    return 'OK';
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe('audit access rules', () => {
  it.each([
    ['tenant reader, own tenant', caller('acme', 'audit:read'), 'acme', 'OK'],
    ['tenant reader, no tenant given', caller('acme', 'audit:read'), undefined, 'OK'],
    ['tenant reader, other tenant', caller('acme', 'audit:read'), 'globex', AuditErrorCode.PermissionDenied],
    ['all-tenant reader, any tenant', caller('*', 'audit:read'), 'globex', 'OK'],
    ['admin scope', caller('acme', 'audit:admin'), 'acme', 'OK'],
    ['export scope only', caller('*', 'audit:export'), 'acme', AuditErrorCode.PermissionDenied],
    ['no scope', caller('*'), undefined, AuditErrorCode.PermissionDenied],
  ] as const)('read: %s → %s', (_n, c, tenant, expected) => {
    expect(code(() => authorizeTenantRead(c, 'audit:read', tenant))).toBe(expected);
  });

  it('confines a tenant principal without a filter to its own tenant; * keeps what it asked', () => {
    expect(authorizeTenantRead(caller('acme', 'audit:read'), 'audit:read', undefined)).toBe('acme');
    expect(authorizeTenantRead(caller('*', 'audit:read'), 'audit:read', undefined)).toBeUndefined();
    expect(authorizeTenantRead(caller('*', 'audit:export'), 'audit:export', 'acme')).toBe('acme');
  });

  it('verification needs * and audit:verify (or audit:admin)', () => {
    expect(code(() => authorizeGlobal(caller('*', 'audit:verify'), 'audit:verify'))).toBe('OK');
    expect(code(() => authorizeGlobal(caller('*', 'audit:admin'), 'audit:verify'))).toBe('OK');
    expect(code(() => authorizeGlobal(caller('acme', 'audit:admin'), 'audit:verify'))).toBe(AuditErrorCode.PermissionDenied);
    expect(code(() => authorizeGlobal(caller('*', 'audit:read'), 'audit:verify'))).toBe(AuditErrorCode.PermissionDenied);
  });
});
