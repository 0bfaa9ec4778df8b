import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kafkaSslOf, redisTlsOf } from './client-tls.js';
import { ConfigError } from './config.errors.js';

const dir = mkdtempSync(join(tmpdir(), 'soma-client-tls-'));
const ca = join(dir, 'ca.pem');
const cert = join(dir, 'client.pem');
const key = join(dir, 'client.key');
writeFileSync(ca, 'CA PEM');
writeFileSync(cert, 'CERT PEM');
writeFileSync(key, 'KEY PEM');

const problemsOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems.join('; ');
  }
  throw new Error('no ConfigError');
};

describe('kafkaSslOf (KAFKA_TLS_*)', () => {
  it('is plain text (undefined) by default', () => {
    expect(kafkaSslOf({})).toBeUndefined();
    expect(kafkaSslOf({ KAFKA_TLS_ENABLED: false })).toBeUndefined();
  });

  it('verifies the broker with the system trust store when no CA is given', () => {
    expect(kafkaSslOf({ KAFKA_TLS_ENABLED: true })).toEqual({ rejectUnauthorized: true });
  });

  it('maps the CA and the client pair to kafkajs ssl options', () => {
    expect(kafkaSslOf({ KAFKA_TLS_ENABLED: true, KAFKA_TLS_CA_PATH: ca, KAFKA_TLS_CERT_PATH: cert, KAFKA_TLS_KEY_PATH: key })).toEqual({ rejectUnauthorized: true, ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM' });
  });

  it('refuses files without KAFKA_TLS_ENABLED, half a client pair, and unreadable files, naming variables only', () => {
    expect(problemsOf(() => kafkaSslOf({ KAFKA_TLS_CA_PATH: ca }))).toMatch(/KAFKA_TLS_CA_PATH set but KAFKA_TLS_ENABLED is not true/);
    expect(problemsOf(() => kafkaSslOf({ KAFKA_TLS_ENABLED: true, KAFKA_TLS_CERT_PATH: cert }))).toMatch(/KAFKA_TLS_CERT_PATH and KAFKA_TLS_KEY_PATH: set both or neither/);
    const missing = problemsOf(() => kafkaSslOf({ KAFKA_TLS_ENABLED: true, KAFKA_TLS_CA_PATH: join(dir, 'absent.pem') }));
    expect(missing).toBe('KAFKA_TLS_CA_PATH: cannot read the file (ENOENT)');
  });
});

describe('redisTlsOf (REDIS_URL=rediss://, REDIS_TLS_*)', () => {
  it('is plain text for redis:// and verified TLS for rediss://', () => {
    expect(redisTlsOf({ REDIS_URL: 'redis://127.0.0.1:6379' })).toBeUndefined();
    expect(redisTlsOf({ REDIS_URL: 'rediss://redis:6380' })).toEqual({ rejectUnauthorized: true });
  });

  it('maps the CA and the client pair to ioredis tls options', () => {
    expect(redisTlsOf({ REDIS_URL: 'rediss://redis:6380', REDIS_TLS_CA_PATH: ca, REDIS_TLS_CERT_PATH: cert, REDIS_TLS_KEY_PATH: key })).toEqual({ rejectUnauthorized: true, ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM' });
  });

  it('refuses REDIS_TLS_* with a plain-text URL and half a client pair', () => {
    expect(problemsOf(() => redisTlsOf({ REDIS_URL: 'redis://r:6379', REDIS_TLS_CA_PATH: ca }))).toMatch(/REDIS_TLS_CA_PATH set but REDIS_URL is not rediss:\/\//);
    expect(problemsOf(() => redisTlsOf({ REDIS_URL: 'rediss://r:6380', REDIS_TLS_KEY_PATH: key }))).toMatch(/set both or neither/);
  });
});
