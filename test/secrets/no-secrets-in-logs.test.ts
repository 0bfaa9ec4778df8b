import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fernet } from '@soma/fernet';
import { REDIS_URL, REPO_ROOT } from '../support/infra.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { SecretsClient, startAuthz, startCredentialSource, tmp, type CredentialSource } from './helpers.js';

/**
 * The built service runs as its own process with every log line captured (stdout and stderr,
 * LOG_LEVEL=trace), is driven through every path (success, denials, conflicts, references,
 * rotation, bad input), and the capture is searched for every secret it saw.
 */
const exec = promisify(execFile);
const run = randomUUID().slice(0, 8);
const prefix = `test-${run}:llm_cred:`;
const tenant = `logs-${run}`;
const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()];
// Shapes no masking rule recognises: only "never logged at all" keeps these out of the logs.
const plainValues = Array.from({ length: 5 }, () => randomBytes(24).toString('hex'));
const apiKeyValue = `sk-soma-${randomBytes(16).toString('hex')}`;
const VAULT_TOKEN = `vt-${randomBytes(16).toString('hex')}`;
const VAULT_VALUE = `vault-${randomBytes(16).toString('hex')}`;
const FILE_VALUE = `file-${randomBytes(16).toString('hex')}`;

let creds: CredentialSource;
let authz: Awaited<ReturnType<typeof startAuthz>>;
let vault: Server;
let child: ChildProcess;
let client: SecretsClient;
let captured = '';
let exitCode: number | null = null;
const bearer: Record<'admin' | 'nobody', string> = { admin: '', nobody: '' };

async function buildService(): Promise<void> {
  await exec('npx', ['tsc', '-p', 'apps/secrets/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 170_000 });
  await exec('npx', ['tsc-alias', '-p', 'apps/secrets/tsconfig.app.json'], { cwd: REPO_ROOT, timeout: 60_000 });
}

beforeAll(async () => {
  await buildService();
  vault = createServer((req, res) => {
    if (req.headers['x-vault-token'] !== VAULT_TOKEN) return void res.writeHead(403).end('{"errors":["permission denied"]}');
    if (req.url === '/v1/kv/data/llm') return void res.writeHead(200).end(JSON.stringify({ data: { data: { value: VAULT_VALUE } } }));
    res.writeHead(404).end('{"errors":[]}');
  });
  await new Promise<void>((r) => vault.listen(0, '127.0.0.1', r));
  const fileDir = join(tmp, `logs-files-${run}`);
  mkdirSync(fileDir, { recursive: true });
  writeFileSync(join(fileDir, 'cred'), FILE_VALUE);

  creds = await startCredentialSource();
  bearer.admin = await creds.issue(`admin-${run}`, tenant, ['secrets:admin']);
  bearer.nobody = await creds.issue(`nobody-${run}`, tenant, []);
  authz = await startAuthz();
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const keyFile = join(tmp, `fernet-${run}.keys`);
  writeFileSync(keyFile, `${newKey},${oldKey}\n`);
  child = spawn(process.execPath, [join(REPO_ROOT, 'dist/apps/secrets/src/main.js')], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      LOG_LEVEL: 'trace',
      OTEL_ENABLED: 'false',
      FERNET_KEY_FILE: keyFile,
      SECRETS_GRPC_PORT: String(grpcPort),
      SECRETS_HTTP_PORT: String(httpPort),
      SECRETS_KEY_PREFIX: prefix,
      SECRETS_TENANTS: tenant,
      AUTH_GRPC_ADDRESS: creds.address,
      AUTHZ_GRPC_ADDRESS: authz.address,
      EVENT_BUFFER_PATH: join(tmp, `logs-${run}.sqlite`),
      VAULT_ENABLED: 'true',
      VAULT_ADDR: `http://127.0.0.1:${(vault.address() as { port: number }).port}`,
      VAULT_TOKEN,
      SECRETS_FILE_REFERENCE_DIRS: fileDir,
      REDIS_URL,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (captured += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (captured += d.toString('utf8')));
  child.on('exit', (code) => (exitCode = code));
  await waitFor(() => captured.includes('secrets listening') || exitCode !== null, { timeoutMs: 60_000, what: 'the secrets process to listen' });
  expect(exitCode).toBeNull();
  client = new SecretsClient(`127.0.0.1:${grpcPort}`);
});

afterAll(async () => {
  client?.close();
  if (child && exitCode === null) child.kill('SIGTERM');
  await authz?.service.stop();
  await creds?.stop();
  await new Promise<void>((r) => (vault ? vault.close(() => r()) : r()));
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`test-${run}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.del(`soma:secrets:rotation:${prefix}`);
  await redis.quit();
});

describe('nothing secret in the logs', () => {
  it('never logs values, keys or credentials on any path', async () => {
    // Some secrets written under the old key directly, so that rotation has work to do.
    const old = new Fernet(oldKey);
    const redis = new Redis(REDIS_URL);
    await redis.set(`${prefix}seeded`, old.encrypt(plainValues[4]!));
    await redis.quit();

    for (const [i, v] of plainValues.slice(0, 4).entries()) await client.call('PutSecret', { name: `plain-${i}`, value: v }, bearer.admin);
    await client.call('PutSecret', { name: 'api-key', value: apiKeyValue }, bearer.admin);
    await client.call('PutSecret', { name: 'vaulted', reference: 'vault://kv/llm' }, bearer.admin);
    await client.call('PutSecret', { name: 'filed', reference: `file://${join(tmp, `logs-files-${run}`, 'cred')}` }, bearer.admin);
    for (const n of ['plain-0', 'plain-3', 'api-key', 'vaulted', 'filed', 'seeded']) await client.call('GetSecret', { name: n }, bearer.admin);
    expect((await client.call<{ value: string }>('GetSecret', { name: 'vaulted' }, bearer.admin)).value).toBe(VAULT_VALUE);
    // Failure paths: denied, unauthenticated (the forged credential is itself a secret), conflicts, bad input.
    expect((await client.failure('GetSecret', { name: 'plain-1' }, bearer.nobody)).code).toBe(status.PERMISSION_DENIED);
    const forged = `forged-${randomBytes(16).toString('hex')}`;
    expect((await client.failure('GetSecret', { name: 'plain-1' }, forged)).code).toBe(status.UNAUTHENTICATED);
    expect((await client.failure('PutSecret', { name: 'plain-2', value: plainValues[2], expected_version: 9 }, bearer.admin)).code).toBe(status.FAILED_PRECONDITION);
    expect((await client.failure('PutSecret', { name: 'bad name!', value: plainValues[1] }, bearer.admin)).code).toBe(status.INVALID_ARGUMENT);
    expect((await client.failure('PutSecret', { name: 'both', value: plainValues[1], reference: 'vault://kv/llm' }, bearer.admin)).code).toBe(status.INVALID_ARGUMENT);
    await client.call('RotateEncryptionKey', {}, bearer.admin);
    expect((await client.call<{ value: string }>('GetSecret', { name: 'seeded' }, bearer.admin)).value).toBe(plainValues[4]);

    child.kill('SIGTERM');
    await waitFor(() => exitCode !== null, { timeoutMs: 30_000, what: 'the secrets process to stop' });

    // The capture is real: it holds the service's own lines about these requests.
    expect(captured).toContain('encryption keys loaded');
    expect(captured).toContain('grpc call failed');
    const forbidden = {
      ...Object.fromEntries(plainValues.map((v, i) => [`value ${i}`, v])),
      'api key value': apiKeyValue,
      'api key tail-less body': apiKeyValue.slice(8, -4),
      'new fernet key': newKey,
      'old fernet key': oldKey,
      'new key body': newKey.slice(0, 43),
      'old key body': oldKey.slice(0, 43),
      'vault token': VAULT_TOKEN,
      'vault value': VAULT_VALUE,
      'file value': FILE_VALUE,
      'admin bearer': bearer.admin,
      'nobody bearer': bearer.nobody,
      'forged bearer': forged,
    };
    const leaks = Object.entries(forbidden).filter(([, secret]) => captured.includes(secret)).map(([what]) => what);
    expect(leaks).toEqual([]);
    // Fernet tokens (the ciphertexts) stay out of the logs as well.
    expect(captured).not.toMatch(/gAAAAA[A-Za-z0-9_-]{20,}/);
  });
});

describe('start-up', () => {
  it('stops with exit 78 and a message naming FERNET_KEY when the key is malformed, without echoing it', async () => {
    const bad = `${Fernet.generateKey().slice(0, 30)}!!`;
    const result = await exec(process.execPath, [join(REPO_ROOT, 'dist/apps/secrets/src/main.js')], {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '', FERNET_KEY: bad, OTEL_ENABLED: 'false', EVENT_BUFFER_PATH: join(tmp, `bad-${run}.sqlite`) },
      timeout: 60_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/soma-secrets: cannot start\. Invalid configuration:[\s\S]*FERNET_KEY must be a comma-separated list of Fernet keys/);
    expect(result.stderr).not.toContain(bad.slice(0, 30));
  });
});
