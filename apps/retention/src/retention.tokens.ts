/** Injection tokens of the retention module. */
export const RETENTION_RUNNER = Symbol('retention:runner');
export const GDPR_SERVICE = Symbol('retention:gdpr');
export const AUTHENTICATOR = Symbol('retention:authenticator');
export const LIFECYCLE = Symbol('retention:lifecycle');
