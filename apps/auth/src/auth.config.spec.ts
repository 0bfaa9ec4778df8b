import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@soma/config';
import { AuthConfig } from './auth.config.js';
import { rootKeyOf } from './auth.runtime.js';

const dir = mkdtempSync(join(tmpdir(), 'soma-auth-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const secret = randomBytes(32).toString('base64url');
const password = 'a-long-ui-password';

/** Config load + the cross-field checks start-up runs (both end in ConfigError, exit 78). */
async function startUp(env: Record<string, string>) {
  const c = await loadConfig(AuthConfig, env);
  return { config: c, root: rootKeyOf(c) };
}

async function problem(env: Record<string, string>): Promise<string> {
  try {
    await startUp(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('AuthConfig', () => {
  it('defaults: HS256, 3600 s tokens, 30 s skew, sk-soma- keys, login enabled', async () => {
    const { config, root } = await startUp({ JWT_SECRET: secret, AUTH_PASSWORD: password });
    expect(config).toMatchObject({ JWT_ALGORITHM: 'HS256', JWT_EXPIRY_SECONDS: 3600, JWT_CLOCK_SKEW_SECONDS: 30, API_KEY_PREFIX: 'sk-soma-', AUTH_ENABLED: true, CORS_ORIGINS: [], CORS_ALLOW_CREDENTIALS: false });
    expect(root.alg).toBe('HS256');
  });

  it('a JWT_SECRET under 256 bits stops start-up, naming the variable, never printing the value', async () => {
    const short = randomBytes(16).toString('hex').slice(0, 31);
    const message = await problem({ JWT_SECRET: short, AUTH_PASSWORD: password });
    expect(message).toContain('JWT_SECRET');
    expect(message).not.toContain(short);
  });

  it('a missing JWT_SECRET with HS256 stops start-up clearly', async () => {
    expect(await problem({ AUTH_PASSWORD: password })).toMatch(/JWT_SECRET is required when JWT_ALGORITHM=HS256/);
  });

  it('JWT_SECRET_FILE is read (Docker secrets), with the same strength rule', async () => {
    const good = join(dir, 'jwt-secret');
    writeFileSync(good, `${secret}\n`);
    const { root } = await startUp({ JWT_SECRET_FILE: good, AUTH_PASSWORD: password });
    expect(root.alg).toBe('HS256');
    const weak = join(dir, 'jwt-secret-weak');
    writeFileSync(weak, 'short-secret\n');
    expect(await problem({ JWT_SECRET_FILE: weak, AUTH_PASSWORD: password })).toContain('JWT_SECRET');
  });

  it('RS256 needs a readable RSA private key of ≥ 2048 bits in JWT_PRIVATE_KEY_FILE', async () => {
    expect(await problem({ JWT_ALGORITHM: 'RS256', AUTH_PASSWORD: password })).toMatch(/JWT_PRIVATE_KEY_FILE is required/);
    expect(await problem({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: join(dir, 'absent.pem'), AUTH_PASSWORD: password })).toMatch(/could not be read/);
    const ec = join(dir, 'ec.pem');
    writeFileSync(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    expect(await problem({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: ec, AUTH_PASSWORD: password })).toMatch(/RSA private key of at least 2048 bits/);
    const rsa = join(dir, 'rsa.pem');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    expect((await startUp({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: rsa, AUTH_PASSWORD: password })).root.alg).toBe('RS256');
  });

  it('refuses any other JWT_ALGORITHM', async () => {
    for (const alg of ['none', 'HS512', 'ES256', 'hs256']) expect(await problem({ JWT_ALGORITHM: alg, JWT_SECRET: secret, AUTH_PASSWORD: password })).toContain('JWT_ALGORITHM');
  });

  it('AUTH_PASSWORD is required only while AUTH_ENABLED=true', async () => {
    expect(await problem({ JWT_SECRET: secret })).toMatch(/AUTH_PASSWORD is required when AUTH_ENABLED=true/);
    expect((await startUp({ JWT_SECRET: secret, AUTH_ENABLED: 'false' })).config.AUTH_ENABLED).toBe(false);
  });

  it('reads CORS_ORIGINS as a list and CORS_ALLOW_CREDENTIALS as a boolean', async () => {
    const { config } = await startUp({ JWT_SECRET: secret, AUTH_PASSWORD: password, CORS_ORIGINS: 'https://a.example,https://b.example', CORS_ALLOW_CREDENTIALS: 'true' });
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(config.CORS_ALLOW_CREDENTIALS).toBe(true);
  });

  it('JWT_EXPIRY_SECONDS may not exceed JWT_MAX_EXPIRY_SECONDS', async () => {
    expect(await problem({ JWT_SECRET: secret, AUTH_PASSWORD: password, JWT_EXPIRY_SECONDS: '7200', JWT_MAX_EXPIRY_SECONDS: '3600' })).toMatch(/must not exceed/);
  });
});
