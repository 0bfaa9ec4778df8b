import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@soma/config';
import { Fernet } from '@soma/fernet';
import { SecretsConfig } from './secrets.config.js';

async function problem(env: Record<string, string>): Promise<string> {
  try {
    await loadConfig(SecretsConfig, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('SecretsConfig', () => {
  it('accepts one key or a list, newest first', async () => {
    const [a, b] = [Fernet.generateKey(), Fernet.generateKey()];
    expect((await loadConfig(SecretsConfig, { FERNET_KEY: a })).FERNET_KEY).toBe(a);
    expect((await loadConfig(SecretsConfig, { FERNET_KEY: `${a},${b}` })).SECRETS_KEY_PREFIX).toBe('llm_cred:');
  });

  it('reads EVENT_BUFFER_PATH and VAULT_ADDR from the environment', async () => {
    const cfg = await loadConfig(SecretsConfig, { FERNET_KEY: Fernet.generateKey(), EVENT_BUFFER_PATH: '/tmp/x.sqlite', VAULT_ADDR: 'http://127.0.0.1:8200' });
    expect(cfg.EVENT_BUFFER_PATH).toBe('/tmp/x.sqlite');
    expect(cfg.VAULT_ADDR).toBe('http://127.0.0.1:8200');
  });

  it('stops on a missing FERNET_KEY, naming it', async () => {
    expect(await problem({})).toContain('FERNET_KEY is required');
  });

  it('stops on a malformed FERNET_KEY with a clear message and without the value', async () => {
    const bad = 'this-is-not-a-fernet-key-at-all';
    const message = await problem({ FERNET_KEY: bad });
    expect(message).toMatch(/FERNET_KEY must be a comma-separated list of Fernet keys/);
    expect(message).not.toContain(bad);
    const good = Fernet.generateKey();
    const second = await problem({ FERNET_KEY: `${good},${good.slice(0, 20)}` });
    expect(second).toContain('entry 2 of 2');
    expect(second).not.toContain(good.slice(0, 20));
  });

  it('caches callers and read decisions for 5 s by default; 0 turns a cache off; a negative or huge TTL stops start-up', async () => {
    const key = Fernet.generateKey();
    const defaults = await loadConfig(SecretsConfig, { FERNET_KEY: key });
    expect([defaults.SECRETS_CALLER_CACHE_TTL_MS, defaults.SECRETS_DECISION_CACHE_TTL_MS, defaults.SECRETS_ACCESS_CACHE_MAX]).toEqual([5000, 5000, 10_000]);
    const off = await loadConfig(SecretsConfig, { FERNET_KEY: key, SECRETS_CALLER_CACHE_TTL_MS: '0', SECRETS_DECISION_CACHE_TTL_MS: '0' });
    expect([off.SECRETS_CALLER_CACHE_TTL_MS, off.SECRETS_DECISION_CACHE_TTL_MS]).toEqual([0, 0]);
    expect(await problem({ FERNET_KEY: key, SECRETS_CALLER_CACHE_TTL_MS: '-1' })).toContain('SECRETS_CALLER_CACHE_TTL_MS');
    expect(await problem({ FERNET_KEY: key, SECRETS_DECISION_CACHE_TTL_MS: '600000' })).toContain('SECRETS_DECISION_CACHE_TTL_MS');
    expect(await problem({ FERNET_KEY: key, SECRETS_ACCESS_CACHE_MAX: '0' })).toContain('SECRETS_ACCESS_CACHE_MAX');
  });
});
