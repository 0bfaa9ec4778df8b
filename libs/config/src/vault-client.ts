/**
 * Minimal reader of the Vault KV v2 HTTP API (GET /v1/<mount>/data/<path>, header X-Vault-Token).
 * Only what secret references need: no writes, no leases.
 */
export interface VaultSettings {
  address: string;
  token: string;
  timeoutMs?: number;
}

export interface VaultReference {
  mount: string;
  path: string;
  key: string;
}

/** `vault://mount/path/to/secret#key`; the key defaults to `value`. */
export function parseVaultReference(ref: string): VaultReference {
  const url = ref.slice('vault://'.length);
  const [location = '', key = 'value'] = url.split('#', 2);
  const [mount, ...rest] = location.split('/').filter(Boolean);
  if (!mount || rest.length === 0 || !/^[\w.-]+$/.test(mount) || rest.some((p) => !/^[\w.-]+$/.test(p) || /^\.+$/.test(p)) || /^\.+$/.test(mount)) {
    throw new Error('malformed vault reference (expected vault://<mount>/<path>[#key])');
  }
  return { mount, path: rest.join('/'), key };
}

export async function readVaultSecret(settings: VaultSettings, ref: VaultReference): Promise<string> {
  const url = new URL(`/v1/${encodeURIComponent(ref.mount)}/data/${ref.path.split('/').map(encodeURIComponent).join('/')}`, settings.address);
  const response = await fetch(url, {
    headers: { 'X-Vault-Token': settings.token, Accept: 'application/json' },
    signal: AbortSignal.timeout(settings.timeoutMs ?? 5000),
  });
  if (!response.ok) throw new Error(`vault answered HTTP ${response.status} for ${ref.mount}/${ref.path}`);
  const body = (await response.json()) as { data?: { data?: Record<string, unknown> } };
  const value = body.data?.data?.[ref.key];
  if (typeof value !== 'string') throw new Error(`vault secret ${ref.mount}/${ref.path} has no string field "${ref.key}"`);
  return value;
}
