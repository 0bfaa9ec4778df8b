/** Injection tokens of the secrets module. */
export const SECRETS_MANAGER = Symbol('secrets:manager');
export const SECRETS_LIFECYCLE = Symbol('secrets:lifecycle');
