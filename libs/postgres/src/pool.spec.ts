import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@soma/config';
import { PostgresConfig } from './postgres-config.js';
import { poolConfigOf, sslOf } from './pool.js';

const dir = mkdtempSync(join(tmpdir(), 'soma-pg-ssl-'));
for (const [name, body] of [['ca.pem', 'CA'], ['client.pem', 'CERT'], ['client.key', 'KEY']]) writeFileSync(join(dir, name!), body!);
const f = (n: string) => join(dir, n);

describe('PostgreSQL TLS settings (libpq sslmode semantics)', () => {
  it('maps each sslmode: disable, require (encrypt, no verification), verify-ca (chain only), verify-full (chain and name)', () => {
    expect(sslOf({ POSTGRES_SSLMODE: 'disable' })).toBe(false);
    expect(sslOf({ POSTGRES_SSLMODE: 'require' })).toEqual({ rejectUnauthorized: false });
    const verifyCa = sslOf({ POSTGRES_SSLMODE: 'verify-ca', POSTGRES_SSL_CA_FILE: f('ca.pem') }) as { ca: string; rejectUnauthorized: boolean; checkServerIdentity: () => unknown };
    expect(verifyCa).toMatchObject({ ca: 'CA', rejectUnauthorized: true });
    expect(verifyCa.checkServerIdentity()).toBeUndefined();
    expect(sslOf({ POSTGRES_SSLMODE: 'verify-full', POSTGRES_SSL_CA_FILE: f('ca.pem') })).toEqual({ ca: 'CA', rejectUnauthorized: true });
  });

  it('presents the client certificate of POSTGRES_SSLCERT / POSTGRES_SSLKEY', () => {
    expect(sslOf({ POSTGRES_SSLMODE: 'verify-full', POSTGRES_SSLCERT: f('client.pem'), POSTGRES_SSLKEY: f('client.key') })).toMatchObject({ cert: 'CERT', key: 'KEY', rejectUnauthorized: true });
  });

  it('refuses half a client pair, and a client certificate with sslmode=disable', () => {
    expect(() => sslOf({ POSTGRES_SSLMODE: 'require', POSTGRES_SSLCERT: f('client.pem') })).toThrow(/set both or neither/);
    expect(() => sslOf({ POSTGRES_SSLMODE: 'disable', POSTGRES_SSLCERT: f('client.pem'), POSTGRES_SSLKEY: f('client.key') })).toThrow(/POSTGRES_SSLMODE=disable/);
  });

  it('reads every TLS variable from the environment through PostgresConfig (the variables a deployment sets)', async () => {
    const config = await loadConfig(PostgresConfig, { POSTGRES_SSLMODE: 'verify-full', POSTGRES_SSL_CA_FILE: f('ca.pem'), POSTGRES_SSLCERT: f('client.pem'), POSTGRES_SSLKEY: f('client.key') });
    expect(poolConfigOf(config, { applicationName: 't' }).ssl).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: true });
  });
});
