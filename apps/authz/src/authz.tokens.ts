/** Injection tokens of the authz module. */
export const AUTHZ_DECISIONS = Symbol('authz:decisions');
export const POLICY_WATCHER = Symbol('authz:policy-watcher');
export const CALLER_ACCESS = Symbol('authz:caller-access');
