import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { parseVaultReference, SecretResolver } from '@soma/config';
import type { ReferenceResolver } from '../domain/ports.js';
import { SecretsError, SecretsErrorCode } from '../domain/secrets.errors.js';

export interface ReferenceSettings {
  vaultEnabled: boolean;
  vaultAddr?: string;
  vaultToken?: string;
  /** Absolute folders file:// references may point into (Docker secrets: /run/secrets). */
  fileDirs: readonly string[];
}

/**
 * Stored references resolved at read time with the same resolver as libs/config:
 * `vault://<mount>/<path>[#key]` (Vault KV v2) and `file:///abs/path`. A writer must not turn the
 * service into a file reader, so file references are confined to configured folders, checked
 * on the real path (symbolic links resolved) at read time as well as on the text at write time.
 */
export class ConfigReferenceResolver implements ReferenceResolver {
  private readonly resolver: SecretResolver;

  constructor(private readonly settings: ReferenceSettings) {
    this.resolver = new SecretResolver({
      VAULT_ENABLED: settings.vaultEnabled ? 'true' : 'false',
      VAULT_ADDR: settings.vaultAddr,
      VAULT_TOKEN: settings.vaultToken,
    });
  }

  validate(reference: string): void {
    if (reference.startsWith('vault://')) {
      try {
        parseVaultReference(reference);
      } catch {
        throw new SecretsError(SecretsErrorCode.InvalidArgument, 'malformed vault reference (expected vault://<mount>/<path>[#key])');
      }
      return;
    }
    if (reference.startsWith('file://')) {
      const path = reference.slice('file://'.length);
      if (!isAbsolute(path) || !this.insideAllowedDir(resolve(path))) {
        throw new SecretsError(SecretsErrorCode.InvalidArgument, 'file references must be absolute paths inside SECRETS_FILE_REFERENCE_DIRS');
      }
      return;
    }
    throw new SecretsError(SecretsErrorCode.InvalidArgument, 'reference must start with vault:// or file://');
  }

  async resolve(name: string, reference: string): Promise<string> {
    if (reference.startsWith('file://')) {
      const path = reference.slice('file://'.length);
      let real: string;
      try {
        real = await realpath(path);
      } catch {
        throw new SecretsError(SecretsErrorCode.ReferenceUnresolved, 'the referenced file cannot be read');
      }
      if (!this.insideAllowedDir(real)) throw new SecretsError(SecretsErrorCode.ReferenceUnresolved, 'the referenced file is outside SECRETS_FILE_REFERENCE_DIRS');
      reference = `file://${real}`;
    }
    try {
      return await this.resolver.resolveValue(`secret ${name}`, reference);
    } catch (e) {
      // The resolver's messages name the variable and the Vault path, never a value.
      throw new SecretsError(SecretsErrorCode.ReferenceUnresolved, 'the reference could not be resolved now', { cause: (e as Error).message });
    }
  }

  private insideAllowedDir(path: string): boolean {
    return this.settings.fileDirs.some((dir) => {
      const rel = relative(resolve(dir), path);
      return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
    });
  }
}
