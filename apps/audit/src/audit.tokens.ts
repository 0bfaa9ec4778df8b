/** Injection tokens of the audit module. */
export const AUDIT_AUTH = Symbol('audit:auth');
