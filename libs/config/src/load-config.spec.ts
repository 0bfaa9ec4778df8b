import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { CommonConfig } from './common-config.js';
import { ConfigError } from './config.errors.js';
import { describeConfig, loadConfig, Secret, secretFieldsOf } from './load-config.js';

class TestConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  HTTP_PORT: number = 20021;

  @Secret({ minBytes: 32 }) @IsString()
  JWT_SECRET!: string;

  @Secret({ minBytes: 16, required: false }) @IsOptional() @IsString()
  OPTIONAL_SECRET?: string;

  @IsOptional() @IsString()
  OPTIONAL_PATH?: string;
}

const STRONG = 'q7Vn2Lr9XeP4sKt8Wm3Yb6Zc1Hd5Jf0G';

/** A local HTTP server that follows the Vault KV v2 read API (no Vault server can run here). */
let vault: Server;
let vaultAddr = '';
beforeAll(async () => {
  vault = createServer((req, res) => {
    if (req.headers['x-vault-token'] !== 'root-token') {
      res.writeHead(403).end(JSON.stringify({ errors: ['permission denied'] }));
      return;
    }
    if (req.url === '/v1/secret/data/soma/jwt') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { data: { value: STRONG, other: 'x' }, metadata: { version: 1 } } }));
      return;
    }
    res.writeHead(404).end(JSON.stringify({ errors: [] }));
  });
  await new Promise<void>((r) => vault.listen(0, '127.0.0.1', r));
  const addr = vault.address();
  vaultAddr = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}` : '';
});
afterAll(() => new Promise<void>((r) => vault.close(() => r())));

async function failure(env: Record<string, string>): Promise<ConfigError> {
  try {
    await loadConfig(TestConfig, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('reads literals, applies defaults and converts types', async () => {
    const cfg = await loadConfig(TestConfig, { JWT_SECRET: STRONG, HTTP_PORT: '3000', VAULT_ENABLED: 'false', KAFKA_BROKERS: 'a:1, b:2' });
    expect(cfg.HTTP_PORT).toBe(3000);
    expect(cfg.JWT_SECRET).toBe(STRONG);
    expect(cfg.VAULT_ENABLED).toBe(false);
    expect(cfg.KAFKA_BROKERS).toEqual(['a:1', 'b:2']);
    expect(cfg.LOG_LEVEL).toBe('info');
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('keeps the secrets of sibling subclasses of a base with secrets apart', () => {
    class BaseWithSecret extends CommonConfig {
      @Secret({ minBytes: 16 }) @IsString()
      BASE_SECRET!: string;
    }
    class FirstConfig extends BaseWithSecret {
      @Secret({ minBytes: 16 }) @IsString()
      FIRST_SECRET!: string;
    }
    class SecondConfig extends BaseWithSecret {
      @Secret({ minBytes: 16 }) @IsString()
      SECOND_SECRET!: string;
    }
    expect([...secretFieldsOf(FirstConfig).keys()].sort()).toEqual(['BASE_SECRET', 'FIRST_SECRET']);
    expect([...secretFieldsOf(SecondConfig).keys()].sort()).toEqual(['BASE_SECRET', 'SECOND_SECRET']);
    expect([...secretFieldsOf(BaseWithSecret).keys()]).toEqual(['BASE_SECRET']);
  });

  it('reads optional variables declared without a default', async () => {
    const set = await loadConfig(TestConfig, { JWT_SECRET: STRONG, OPTIONAL_PATH: '/tmp/x.sqlite', EVENT_BUFFER_PATH: '/tmp/b.sqlite' });
    expect(set.OPTIONAL_PATH).toBe('/tmp/x.sqlite');
    expect(set.EVENT_BUFFER_PATH).toBe('/tmp/b.sqlite');
    const unset = await loadConfig(TestConfig, { JWT_SECRET: STRONG });
    expect(unset.OPTIONAL_PATH).toBeUndefined();
  });

  it('reads X_FILE (Docker secrets) and strips the trailing newline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'soma-cfg-'));
    writeFileSync(join(dir, 'jwt_secret'), `${STRONG}\n`);
    const cfg = await loadConfig(TestConfig, { JWT_SECRET_FILE: join(dir, 'jwt_secret') });
    expect(cfg.JWT_SECRET).toBe(STRONG);
    expect(cfg.KAFKA_BROKERS).toEqual(['127.0.0.1:9092']);
    expect(cfg.VAULT_ENABLED).toBe(false);
  });

  it('names the variable when X_FILE cannot be read', async () => {
    const err = await failure({ JWT_SECRET_FILE: '/nonexistent/soma/secret' });
    expect(err.message).toContain('JWT_SECRET_FILE');
  });

  it('resolves vault:// references through the KV v2 API', async () => {
    const cfg = await loadConfig(TestConfig, { JWT_SECRET: 'vault://secret/soma/jwt', VAULT_ENABLED: 'true', VAULT_ADDR: vaultAddr, VAULT_TOKEN: 'root-token' });
    expect(cfg.JWT_SECRET).toBe(STRONG);
  });

  it('refuses vault references when Vault is disabled, unreachable or denies', async () => {
    expect((await failure({ JWT_SECRET: 'vault://secret/soma/jwt' })).message).toMatch(/JWT_SECRET.*VAULT_ENABLED/);
    const denied = await failure({ JWT_SECRET: 'vault://secret/soma/jwt', VAULT_ENABLED: 'true', VAULT_ADDR: vaultAddr, VAULT_TOKEN: 'wrong' });
    expect(denied.message).toMatch(/JWT_SECRET: could not read from Vault \(vault answered HTTP 403/);
    const missingKey = await failure({ JWT_SECRET: 'vault://secret/soma/jwt#nope', VAULT_ENABLED: 'true', VAULT_ADDR: vaultAddr, VAULT_TOKEN: 'root-token' });
    expect(missingKey.message).toContain('no string field "nope"');
    const malformed = await failure({ JWT_SECRET: 'vault://../etc', VAULT_ENABLED: 'true', VAULT_ADDR: vaultAddr, VAULT_TOKEN: 'root-token' });
    expect(malformed.message).toContain('malformed vault reference');
  });

  it('stops on a missing secret, naming it', async () => {
    const err = await failure({});
    expect(err.message).toContain('JWT_SECRET is required');
  });

  it.each([
    ['short', 'tooShort123'],
    ['placeholder', 'changeme-changeme-changeme-changeme'],
    ['one repeated character', 'a'.repeat(64)],
  ])('refuses a weak secret (%s) and never prints it', async (_label, value) => {
    const err = await failure({ JWT_SECRET: value });
    expect(err.message).toContain('JWT_SECRET is too weak');
    expect(err.message).not.toContain(value);
  });

  it('collects every problem at once and never prints values', async () => {
    const err = await failure({ JWT_SECRET: 'weak', HTTP_PORT: '99999', LOG_LEVEL: 'loud' });
    expect(err.problems.length).toBeGreaterThanOrEqual(3);
    expect(err.message).toContain('HTTP_PORT');
    expect(err.message).toContain('LOG_LEVEL');
    expect(err.message).not.toContain('weak"');
  });

  it('describes a config for logs without secret values', async () => {
    const cfg = await loadConfig(TestConfig, { JWT_SECRET: STRONG });
    const described = JSON.stringify(describeConfig(TestConfig, cfg));
    expect(described).not.toContain(STRONG);
    expect(described).toContain('"JWT_SECRET":"[set]"');
  });
});
