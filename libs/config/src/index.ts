export { loadConfig, describeConfig, Secret, EnvBoolean, EnvList, secretFieldsOf } from './load-config.js';
export { CommonConfig } from './common-config.js';
export { ConfigError } from './config.errors.js';
export { SecretResolver } from './secret-resolver.js';
export type { Env } from './secret-resolver.js';
export { weakSecretReason } from './secret-strength.js';
export { parseVaultReference, readVaultSecret } from './vault-client.js';
export type { VaultReference, VaultSettings } from './vault-client.js';
