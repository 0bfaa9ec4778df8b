import { readFile } from 'node:fs/promises';
import { parseVaultReference, readVaultSecret, type VaultSettings } from './vault-client.js';

export type Env = Record<string, string | undefined>;

/**
 * Resolves a secret-bearing variable X from, in order: `X_FILE` (Docker secrets), then X itself,
 * which may be a literal or a `vault://mount/path#key` reference (only when VAULT_ENABLED=true).
 * Errors name the variable and never contain the value.
 */
export class SecretResolver {
  constructor(private readonly env: Env) {}

  private vaultSettings(name: string): VaultSettings {
    if (this.env['VAULT_ENABLED'] !== 'true') {
      throw new Error(`${name} is a vault:// reference but VAULT_ENABLED is not "true"`);
    }
    const address = this.env['VAULT_ADDR'];
    const token = this.env['VAULT_TOKEN'];
    if (!address || !token) throw new Error(`${name} is a vault:// reference but VAULT_ADDR or VAULT_TOKEN is not set`);
    return { address, token };
  }

  /** Resolve one reference string (`vault://…`, `file://…`) or return a literal unchanged. */
  async resolveValue(name: string, raw: string): Promise<string> {
    if (raw.startsWith('vault://')) {
      const settings = this.vaultSettings(name);
      let ref;
      try {
        ref = parseVaultReference(raw);
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
      try {
        return await readVaultSecret(settings, ref);
      } catch (e) {
        throw new Error(`${name}: could not read from Vault (${(e as Error).message})`);
      }
    }
    if (raw.startsWith('file://')) return this.readSecretFile(name, raw.slice('file://'.length));
    return raw;
  }

  async readSecretFile(name: string, path: string): Promise<string> {
    try {
      // Docker secrets end with a newline; the secret is the file's content without trailing whitespace.
      return (await readFile(path, 'utf8')).replace(/\s+$/, '');
    } catch (e) {
      throw new Error(`${name}_FILE points to a file that cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  /** The value of X after `X_FILE` and `vault://` resolution, or undefined when neither is set. */
  async resolve(name: string): Promise<string | undefined> {
    const filePath = this.env[`${name}_FILE`];
    if (filePath) return this.readSecretFile(name, filePath);
    const raw = this.env[name];
    if (raw === undefined || raw === '') return undefined;
    return this.resolveValue(name, raw);
  }
}
