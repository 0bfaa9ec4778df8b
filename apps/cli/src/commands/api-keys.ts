import type { Command } from 'commander';
import type { ApiKeyRecord, CreateApiKeyInput } from '@soma/auth-client';
import { DEFAULT_AUTH_ADDRESS, print, splitList, withAuthClient, type AuthCliOptions } from './auth.js';

function line(k: ApiKeyRecord): string {
  const state = k.revoked ? 'revoked' : k.replaced_by ? `rotated→${k.replaced_by} grace until ${k.grace_until}` : 'active';
  return [k.id, k.masked, k.name, k.scopes.join(',') || '-', state, `created ${k.created_at}`, k.expires_at ? `expires ${k.expires_at}` : 'no expiry', k.last_used_at ? `used ${k.last_used_at}` : 'never used'].join('\t');
}

function parseMetadata(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`--meta expects key=value, got "${p}"`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

function parseRateLimit(v: string | undefined): { limit: number; window_seconds: number } | undefined {
  if (!v) return undefined;
  const m = /^(\d+)\/(\d+)s?$/.exec(v);
  if (!m) throw new Error('--rate-limit expects <calls>/<seconds>, e.g. 100/60');
  return { limit: Number(m[1]), window_seconds: Number(m[2]) };
}

/**
 * `soma api-keys create | list | revoke | rotate`. The secret of a new or rotated key is printed once
 * (in the JSON `key` field); listings show only the masked form.
 */
export function register(program: Command): void {
  const keys = program.command('api-keys').description('API keys (sk-soma-…): create, list, revoke, rotate (needs auth:admin on the tenant)');
  const withTarget = (c: Command) =>
    c
      .option('--address <host:port>', 'auth gRPC address (default: $AUTH_GRPC_ADDRESS or 127.0.0.1:20020)', DEFAULT_AUTH_ADDRESS)
      .option('--credential <bearer>', 'operator credential (default: $SOMA_CREDENTIAL)')
      .requiredOption('--tenant <tenant>', 'tenant');

  withTarget(keys.command('create'))
    .description('create a key; prints it once with its record')
    .requiredOption('--name <name>', 'human name')
    .option('--scopes <list>', 'comma-separated scopes', '')
    .option('--expires-at <rfc3339>', 'expiry')
    .option('--owner <sub>', 'owning subject (RevokeSubject revokes it)')
    .option('--persona <id>', 'persona_id')
    .option('--external-id <id>', 'your own reference')
    .option('--meta <key=value...>', 'free metadata (repeatable)')
    .option('--budget <n>', 'usage budget: calls allowed')
    .option('--refill-amount <n>', 'budget refilled to this amount every --refill-interval seconds')
    .option('--refill-interval <seconds>', 'refill period')
    .option('--rate-limit <calls/seconds>', 'per-key rate limit across instances, e.g. 100/60')
    .action(async (opts: AuthCliOptions & { tenant: string; name: string; scopes: string; expiresAt?: string; owner?: string; persona?: string; externalId?: string; meta?: string[]; budget?: string; refillAmount?: string; refillInterval?: string; rateLimit?: string }) => {
      const rateLimit = parseRateLimit(opts.rateLimit);
      const input: CreateApiKeyInput = {
        tenant: opts.tenant,
        name: opts.name,
        scopes: splitList(opts.scopes),
        metadata: parseMetadata(opts.meta ?? []),
        ...(opts.expiresAt ? { expires_at: opts.expiresAt } : {}),
        ...(opts.owner ? { owner_sub: opts.owner } : {}),
        ...(opts.persona ? { persona_id: opts.persona } : {}),
        ...(opts.externalId ? { external_id: opts.externalId } : {}),
        ...(opts.budget ? { budget: { remaining: Number(opts.budget), refill_amount: Number(opts.refillAmount ?? 0), refill_interval_seconds: Number(opts.refillInterval ?? 0) } } : {}),
        ...(rateLimit ? { rate_limit: rateLimit } : {}),
      };
      print(await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) => c.createApiKey(input)));
    });

  withTarget(keys.command('list'))
    .description('the tenant’s keys, masked (first 8 and last 4 characters)')
    .option('--include-revoked', 'also revoked and expired-grace keys')
    .option('--json', 'JSON instead of one line per key')
    .action(async (opts: AuthCliOptions & { tenant: string; includeRevoked?: boolean; json?: boolean }) => {
      const list = await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) => c.listApiKeys(opts.tenant, opts.includeRevoked ?? false));
      if (opts.json) print(list);
      else for (const k of list) process.stdout.write(`${line(k)}\n`);
    });

  withTarget(keys.command('revoke'))
    .description('revoke a key on every instance at once')
    .argument('<id>', 'key id (ak_…)')
    .action(async (id: string, opts: AuthCliOptions & { tenant: string }) => {
      print(await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) => c.revokeApiKey(opts.tenant, id)));
    });

  withTarget(keys.command('rotate'))
    .description('replace one key (--id) or every active key of the tenant; old keys keep working for the grace period; new secrets are printed once')
    .option('--id <id>', 'only this key (ak_…)')
    .option('--grace-seconds <n>', 'how long old keys keep working (default API_KEY_ROTATION_GRACE_SECONDS)', '0')
    .action(async (opts: AuthCliOptions & { tenant: string; id?: string; graceSeconds: string }) => {
      const grace = Number(opts.graceSeconds);
      if (!Number.isInteger(grace) || grace < 0) throw new Error('--grace-seconds must be a non-negative integer');
      const out = await withAuthClient(opts, `auth:admin on ${opts.tenant}`, (c) => (opts.id ? c.rotateApiKey(opts.tenant, opts.id, grace).then((r) => [r]) : c.rotateTenantApiKeys(opts.tenant, grace)));
      print({ rotated: out.map((r) => ({ key: r.key, id: r.api_key.id, masked: r.api_key.masked, name: r.api_key.name, previous_id: r.previous.id, previous_grace_until: r.previous.grace_until })) });
    });
}
