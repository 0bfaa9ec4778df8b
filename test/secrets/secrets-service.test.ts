import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { Fernet } from '@soma/fernet';
import { REDIS_URL } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { startAuthz, startCredentialSource, startSecrets, tmp, type CredentialSource, type SecretsInstance } from './helpers.js';

const run = randomUUID().slice(0, 8);
const prefix = `test-${run}:llm_cred:`;
const tenant = `secrets-${run}`;
const key = Fernet.generateKey();
const VAULT_TOKEN = `vault-token-${randomUUID()}`;
const VAULT_VALUE = `sk-soma-vault${randomUUID().replaceAll('-', '')}`;
const FILE_VALUE = `sk-soma-file${randomUUID().replaceAll('-', '')}`;

let creds: CredentialSource;
let authz: Awaited<ReturnType<typeof startAuthz>>;
let secrets: SecretsInstance;
let redis: Redis;
let vault: Server;
let events: TopicCollector;
const fileDir = join(tmp, 'run-secrets');
const tokens: Record<'admin' | 'reader' | 'writer' | 'scoped' | 'nobody', string> = { admin: '', reader: '', writer: '', scoped: '', nobody: '' };

beforeAll(async () => {
  // A local HTTP server following the Vault KV v2 read API (no Vault server can run here).
  vault = createServer((req, res) => {
    if (req.headers['x-vault-token'] !== VAULT_TOKEN) return void res.writeHead(403).end(JSON.stringify({ errors: ['permission denied'] }));
    if (req.method === 'GET' && req.url === '/v1/secret/data/llm/openai') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { data: { api_key: VAULT_VALUE }, metadata: { version: 3 } } }));
    }
    res.writeHead(404).end(JSON.stringify({ errors: [] }));
  });
  await new Promise<void>((r) => vault.listen(0, '127.0.0.1', r));
  const vaultPort = (vault.address() as { port: number }).port;
  mkdirSync(fileDir, { recursive: true });
  writeFileSync(join(fileDir, 'anthropic'), `${FILE_VALUE}\n`);
  writeFileSync(join(tmp, 'outside'), 'not-for-callers');
  symlinkSync(join(tmp, 'outside'), join(fileDir, 'escape'));

  creds = await startCredentialSource();
  tokens.admin = await creds.issue(`admin-${run}`, tenant, ['secrets:admin']);
  tokens.reader = await creds.issue(`reader-${run}`, tenant, ['secret:read']);
  tokens.writer = await creds.issue(`writer-${run}`, tenant, ['secret:write']);
  tokens.scoped = await creds.issue(`scoped-${run}`, tenant, ['secret:read:team-a/*']);
  tokens.nobody = await creds.issue(`nobody-${run}`, tenant, ['agent:chat']);
  authz = await startAuthz();
  secrets = await startSecrets({
    keys: [key],
    prefix,
    authAddress: creds.address,
    authzAddress: authz.address,
    tenants: [tenant],
    env: { VAULT_ENABLED: 'true', VAULT_ADDR: `http://127.0.0.1:${vaultPort}`, VAULT_TOKEN, SECRETS_FILE_REFERENCE_DIRS: fileDir },
  });
  redis = new Redis(REDIS_URL);
  events = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['service'] === 'secrets' && m.json?.['tenant'] === tenant).start();
});

afterAll(async () => {
  await events?.stop();
  await secrets?.stop();
  await authz?.service.stop();
  await creds?.stop();
  const keys = await redis.keys(`test-${run}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.del(`soma:secrets:rotation:${prefix}`);
  await redis.quit();
  await new Promise<void>((r) => vault.close(() => r()));
});

describe('secrets service over gRPC (real Redis, OPA, Kafka; authz in-process)', () => {
  it('stores a Fernet token with metadata under llm_cred:<name>, which Python decrypts', async () => {
    const value = `sk-soma-${randomUUID().replaceAll('-', '')}`;
    const put = await secrets.client.call<{ metadata: Record<string, unknown>; created: boolean }>('PutSecret', { name: 'openai', value }, tokens.admin);
    expect(put.created).toBe(true);
    expect(put.metadata).toMatchObject({ name: 'openai', version: 1, created_by: `admin-${run}`, kind: 'SECRET_KIND_VALUE', key_id: new Fernet(key).fingerprint() });
    const stored = await redis.hgetall(`${prefix}openai`);
    expect(stored['token']).toMatch(/^gAAAAA[A-Za-z0-9_-]+=*$/);
    expect(JSON.stringify(stored)).not.toContain(value);
    expect(stored).toMatchObject({ version: '1', created_by: `admin-${run}`, kind: 'value' });
    const py = spawnSync('python3', ['-c', 'import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).decrypt(sys.stdin.read().encode()).decode(), end="")', key], { input: stored['token'], encoding: 'utf8' });
    expect(py.stdout).toBe(value);

    const got = await secrets.client.call<{ value: string; metadata: Record<string, unknown> }>('GetSecret', { name: 'openai' }, tokens.reader);
    expect(got.value).toBe(value);
    const second = await secrets.client.call<{ metadata: { version: number } }>('PutSecret', { name: 'openai', value: `${value}-2`, expected_version: 1 }, tokens.writer);
    expect(second.metadata.version).toBe(2);
    const conflict = await secrets.client.failure('PutSecret', { name: 'openai', value: 'x', expected_version: 1 }, tokens.admin);
    expect([conflict.code, conflict.reason]).toEqual([status.FAILED_PRECONDITION, 'VERSION_CONFLICT']);
  });

  it('reads a secret the seed stored as a bare Fernet token', async () => {
    const legacy = new Fernet(key).encrypt('seed-era-value');
    await redis.set(`${prefix}legacy`, legacy);
    const got = await secrets.client.call<{ value: string; metadata: { version: number } }>('GetSecret', { name: 'legacy' }, tokens.admin);
    expect(got).toMatchObject({ value: 'seed-era-value', metadata: { version: 0 } });
    const put = await secrets.client.call<{ metadata: { version: number } }>('PutSecret', { name: 'legacy', value: 'rewritten' }, tokens.admin);
    expect(put.metadata.version).toBe(1);
    expect(await redis.type(`${prefix}legacy`)).toBe('hash');
  });

  it('lists names and metadata only, never values', async () => {
    for (const n of ['team-a/x', 'team-a/y', 'team-b/z']) await secrets.client.call('PutSecret', { name: n, value: `list-value-${n}` }, tokens.admin);
    const names: string[] = [];
    let page_token = '';
    do {
      const page = await secrets.client.call<{ secrets: { name: string }[]; next_page_token: string }>('ListSecrets', { prefix: 'team-', page_size: 2, page_token }, tokens.reader);
      expect(JSON.stringify(page)).not.toContain('list-value-');
      names.push(...page.secrets.map((s) => s.name));
      page_token = page.next_page_token;
    } while (page_token);
    expect(names.sort()).toEqual(['team-a/x', 'team-a/y', 'team-b/z']);
  });

  it('denies a principal without the policy, and names are scoped by glob grants', async () => {
    const denied = await secrets.client.failure('GetSecret', { name: 'openai' }, tokens.nobody);
    expect([denied.code, denied.reason]).toEqual([status.PERMISSION_DENIED, 'PERMISSION_DENIED']);
    const readerWrites = await secrets.client.failure('PutSecret', { name: 'openai', value: 'hijack' }, tokens.reader);
    expect(readerWrites.code).toBe(status.PERMISSION_DENIED);
    const writerRotates = await secrets.client.failure('RotateEncryptionKey', {}, tokens.writer);
    expect(writerRotates.code).toBe(status.PERMISSION_DENIED);
    expect((await secrets.client.call<{ value: string }>('GetSecret', { name: 'team-a/x' }, tokens.scoped)).value).toBe('list-value-team-a/x');
    expect((await secrets.client.failure('GetSecret', { name: 'team-b/z' }, tokens.scoped)).code).toBe(status.PERMISSION_DENIED);
    expect((await secrets.client.failure('ListSecrets', {}, tokens.scoped)).code).toBe(status.PERMISSION_DENIED);
  });

  it('accepts API keys as well as JWTs, with the same policy', async () => {
    const readerKey = await creds.apiKey(`apikey-reader-${run}`, tenant, ['secret:read']);
    expect(readerKey).toMatch(/^sk-soma-/);
    expect((await secrets.client.call<{ value: string }>('GetSecret', { name: 'team-a/y' }, readerKey)).value).toBe('list-value-team-a/y');
    const noScopeKey = await creds.apiKey(`apikey-none-${run}`, tenant, []);
    expect((await secrets.client.failure('GetSecret', { name: 'team-a/y' }, noScopeKey)).code).toBe(status.PERMISSION_DENIED);
  });

  it('refuses calls without a credential or with a forged one', async () => {
    expect((await secrets.client.failure('GetSecret', { name: 'openai' })).code).toBe(status.UNAUTHENTICATED);
    expect((await secrets.client.failure('GetSecret', { name: 'openai' }, 'forged-credential')).code).toBe(status.UNAUTHENTICATED);
  });

  it('fails closed when authz is unreachable', async () => {
    const isolated = await startSecrets({ keys: [key], prefix, authAddress: creds.address, authzAddress: '127.0.0.1:1', tenants: [tenant], env: { SECRETS_ACCESS_CHECK_TIMEOUT_MS: '500' } });
    try {
      expect((await isolated.client.failure('GetSecret', { name: 'openai' }, tokens.admin)).code).toBe(status.PERMISSION_DENIED);
    } finally {
      await isolated.stop();
    }
  });

  it('resolves vault:// references through the KV v2 API and file references inside the allowed folder', async () => {
    await secrets.client.call('PutSecret', { name: 'vaulted', reference: 'vault://secret/llm/openai#api_key' }, tokens.admin);
    const got = await secrets.client.call<{ value: string; metadata: { kind: string } }>('GetSecret', { name: 'vaulted' }, tokens.reader);
    expect(got).toMatchObject({ value: VAULT_VALUE, metadata: { kind: 'SECRET_KIND_REFERENCE' } });
    await secrets.client.call('PutSecret', { name: 'filed', reference: `file://${join(fileDir, 'anthropic')}` }, tokens.admin);
    expect((await secrets.client.call<{ value: string }>('GetSecret', { name: 'filed' }, tokens.reader)).value).toBe(FILE_VALUE);

    const outside = await secrets.client.failure('PutSecret', { name: 'bad', reference: 'file:///etc/passwd' }, tokens.admin);
    expect(outside.code).toBe(status.INVALID_ARGUMENT);
    await secrets.client.call('PutSecret', { name: 'escape', reference: `file://${join(fileDir, 'escape')}` }, tokens.admin);
    const escaped = await secrets.client.failure('GetSecret', { name: 'escape' }, tokens.admin);
    expect([escaped.code, escaped.reason]).toEqual([status.UNAVAILABLE, 'REFERENCE_UNRESOLVED']);
    await secrets.client.call('PutSecret', { name: 'missing-in-vault', reference: 'vault://secret/llm/nope' }, tokens.admin);
    expect((await secrets.client.failure('GetSecret', { name: 'missing-in-vault' }, tokens.admin)).reason).toBe('REFERENCE_UNRESOLVED');
  });

  it('deletes, then answers NOT_FOUND; refuses malformed names', async () => {
    await secrets.client.call('PutSecret', { name: 'short-lived', value: 'v' }, tokens.admin);
    expect(await secrets.client.call('DeleteSecret', { name: 'short-lived' }, tokens.writer)).toEqual({ deleted: true });
    expect((await secrets.client.failure('GetSecret', { name: 'short-lived' }, tokens.admin)).code).toBe(status.NOT_FOUND);
    expect((await secrets.client.failure('DeleteSecret', { name: 'short-lived' }, tokens.admin)).code).toBe(status.NOT_FOUND);
    expect((await secrets.client.failure('GetSecret', { name: 'a*b' }, tokens.admin)).code).toBe(status.INVALID_ARGUMENT);
    expect((await secrets.client.failure('PutSecret', { name: 'x', value: 'v', reference: 'vault://secret/x' }, tokens.admin)).code).toBe(status.INVALID_ARGUMENT);
  });

  it('emits contract events to Kafka: who, which name, outcome, never the value', async () => {
    const value = `sk-soma-evt${randomUUID().replaceAll('-', '')}`;
    await secrets.client.call('PutSecret', { name: 'evented', value }, tokens.admin);
    await secrets.client.call('GetSecret', { name: 'evented' }, tokens.reader);
    await secrets.client.failure('GetSecret', { name: 'evented' }, tokens.nobody);
    await secrets.client.call('DeleteSecret', { name: 'evented' }, tokens.admin);
    const mine = () => events.messages.map((m) => m.json!).filter((e) => e['resource'] === 'secret:evented');
    await waitFor(() => mine().length >= 4, { timeoutMs: 60_000, what: 'secrets events on security.events' });
    const byType = Object.fromEntries(mine().map((e) => [e['type'], e]));
    expect(byType['secret_written']).toMatchObject({ outcome: 'success', actor: { user_id: `admin-${run}` }, tenant });
    expect(byType['secret_accessed']).toMatchObject({ outcome: 'success', actor: { user_id: `reader-${run}` }, action: 'get_secret' });
    expect(byType['secret_access_denied']).toMatchObject({ outcome: 'denied', reason: 'policy_violation', actor: { user_id: `nobody-${run}` }, details: { permission: 'secret:read' } });
    expect(byType['secret_deleted']).toMatchObject({ outcome: 'success' });
    expect(JSON.stringify(events.messages.map((m) => m.json))).not.toContain(value);
  });
});
