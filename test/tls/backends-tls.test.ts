import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, redisTlsOf } from '@soma/config';
import { createPgPool, PostgresConfig } from '@soma/postgres';
import { freePort } from '../support/ports.js';

// PostgreSQL and Redis serving TLS, each a throw-away server of its own (never the shared ones on 5432/6379):
// a cluster made by initdb that accepts only `hostssl … cert` (TLS and a client certificate whose CN is the
// user), and a redis-server with only a TLS port and `tls-auth-clients yes`. The suite's own connection code
// (createPgPool from POSTGRES_* variables, redisTlsOf from REDIS_*) connects; without the client certificate,
// in plain text, or trusting another CA it is refused. Kafka is covered at the configuration level
// (libs/config/src/client-tls.spec.ts): a second TLS broker (a JVM with its own KRaft quorum) is not cheap here.

const run = promisify(execFile);
const isRoot = userInfo().uid === 0;
const PG_BIN = process.env['POSTGRES_BIN_DIR'] ?? `/usr/lib/postgresql/${process.env['POSTGRES_MAJOR'] ?? '15'}/bin`;
const dir = mkdtempSync(join(tmpdir(), 'soma-backend-tls-'));
const file = (name: string) => join(dir, name);

/** As the cluster's OS user: initdb and postgres refuse to run as root. */
const asPg = (cmd: string, args: string[]) => (isRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: '/', timeout: 60_000 }) : run(cmd, args, { timeout: 60_000 }));

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir, timeout: 30_000 });
}
async function makeCa(name: string): Promise<void> {
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-days', '1', '-subj', `/CN=${name}`);
}
async function makeLeaf(name: string, cn: string, ca: string, usage: string): Promise<void> {
  writeFileSync(file(`${name}.ext`), `subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=${usage}\nkeyUsage=digitalSignature\n`);
  await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
  await openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-CAcreateserial', '-days', '1', '-out', file(`${name}.pem`), '-extfile', file(`${name}.ext`));
}

const pgData = join(dir, 'pg');
let pgPort = 0;
let pgStarted = false;
let redisPort = 0;
let redis: ChildProcess | undefined;

beforeAll(async () => {
  await makeCa('ca');
  await makeCa('rogue-ca');
  await makeLeaf('server', 'localhost', 'ca', 'serverAuth');
  await makeLeaf('client', 'soma', 'ca', 'clientAuth');
  await makeLeaf('rogue', 'soma', 'rogue-ca', 'clientAuth');
  // The server key must belong to the server's user and be private (PostgreSQL refuses it otherwise).
  const pgOwner = isRoot ? { uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()), gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()) } : undefined;
  if (pgOwner) {
    for (const f of ['server.key', 'server.pem', 'ca.pem']) chownSync(file(f), pgOwner.uid, pgOwner.gid);
    chmodSync(dir, 0o755);
  }
  chmodSync(file('server.key'), 0o600);

  // ---- PostgreSQL: TLS only, client certificate required (cert auth: CN = user name)
  pgPort = await freePort();
  if (isRoot) {
    await run('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', pgData]);
  }
  await asPg(join(PG_BIN, 'initdb'), ['-D', pgData, '-U', 'soma', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  // Only local socket (the test's own administration) and TLS with a client certificate; no `host` line at all.
  writeFileSync(join(pgData, 'pg_hba.conf'), 'local all all trust\nhostssl all soma 127.0.0.1/32 cert\n');
  if (pgOwner) chownSync(join(pgData, 'pg_hba.conf'), pgOwner.uid, pgOwner.gid);
  const options = [
    `-p ${pgPort}`, "-c listen_addresses=127.0.0.1", `-c unix_socket_directories=${pgData}`, '-c ssl=on',
    `-c ssl_cert_file=${file('server.pem')}`, `-c ssl_key_file=${file('server.key')}`, `-c ssl_ca_file=${file('ca.pem')}`,
    '-c fsync=off', '-c shared_buffers=16MB', '-c max_connections=20',
  ].join(' ');
  await asPg(join(PG_BIN, 'pg_ctl'), ['-D', pgData, '-l', join(pgData, 'log'), '-w', '-t', '60', '-o', options, 'start']);
  pgStarted = true;

  // ---- Redis: TLS port only, client certificates required
  redisPort = await freePort();
  redis = spawn('redis-server', [
    '--port', '0', '--tls-port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--tls-cert-file', file('server.pem'), '--tls-key-file', file('server.key'), '--tls-ca-cert-file', file('ca.pem'), '--tls-auth-clients', 'yes',
  ], { stdio: 'ignore' });
}, 180_000);

afterAll(async () => {
  if (pgStarted) await asPg(join(PG_BIN, 'pg_ctl'), ['-D', pgData, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  redis?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

/** The suite's pool, configured exactly as a service is: from POSTGRES_* variables through PostgresConfig. */
async function pgQuery(env: Record<string, string>): Promise<{ ssl: boolean; user: string }> {
  const config = await loadConfig(PostgresConfig, { POSTGRES_HOST: '127.0.0.1', POSTGRES_PORT: String(pgPort), POSTGRES_USER: 'soma', POSTGRES_DB: 'postgres', ...env });
  const pool = createPgPool(config, { applicationName: 'soma-tls-test' });
  try {
    const { rows } = await pool.query<{ ssl: boolean; user: string }>('SELECT s.ssl, current_user AS user FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()');
    return rows[0]!;
  } finally {
    await pool.end();
  }
}

describe('PostgreSQL over TLS (POSTGRES_SSLMODE, POSTGRES_SSL_CA_FILE, POSTGRES_SSLCERT, POSTGRES_SSLKEY)', () => {
  const verified = () => ({ POSTGRES_SSLMODE: 'verify-full', POSTGRES_SSL_CA_FILE: file('ca.pem') });

  it('connects with verify-full and the client certificate, over TLS, as the certificate\'s user', async () => {
    expect(await pgQuery({ ...verified(), POSTGRES_SSLCERT: file('client.pem'), POSTGRES_SSLKEY: file('client.key') })).toEqual({ ssl: true, user: 'soma' });
  });

  it('is refused without a client certificate', async () => {
    await expect(pgQuery(verified())).rejects.toThrow(/connection requires a valid client certificate/);
  });

  it('is refused with a client certificate another CA issued', async () => {
    await expect(pgQuery({ ...verified(), POSTGRES_SSLCERT: file('rogue.pem'), POSTGRES_SSLKEY: file('rogue.key') })).rejects.toThrow(/alert unknown ca/);
  });

  it('is refused in plain text (sslmode=disable): the server has no non-TLS entry', async () => {
    await expect(pgQuery({ POSTGRES_SSLMODE: 'disable' })).rejects.toThrow(/no pg_hba.conf entry .* no encryption/);
  });

  it('refuses a server whose certificate it cannot verify (verify-full against another CA)', async () => {
    await expect(pgQuery({ POSTGRES_SSLMODE: 'verify-full', POSTGRES_SSL_CA_FILE: file('rogue-ca.pem'), POSTGRES_SSLCERT: file('client.pem'), POSTGRES_SSLKEY: file('client.key') })).rejects.toThrow(/self-signed certificate in certificate chain/);
  });
});

describe('Redis over TLS (REDIS_URL=rediss://, REDIS_TLS_CA_PATH, REDIS_TLS_CERT_PATH, REDIS_TLS_KEY_PATH)', () => {
  async function ping(env: Record<string, string>): Promise<string> {
    const url = env['REDIS_URL'] ?? `rediss://localhost:${redisPort}`;
    const tls = redisTlsOf({ REDIS_URL: url, ...env });
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000, enableOfflineQueue: false, ...(tls ? { tls } : {}) });
    // ioredis reports the TLS failure as an 'error' event and then rejects with "Connection is closed".
    let cause: Error | undefined;
    client.on('error', (e: Error) => (cause ??= e));
    try {
      await client.connect();
      return await client.ping();
    } catch (e) {
      throw cause ?? e;
    } finally {
      client.disconnect();
    }
  }

  beforeAll(async () => {
    // redis-server was spawned in the top-level hook; wait until its TLS port accepts.
    for (let i = 0; i < 100 && !existsSync('/proc/' + redis?.pid); i++) await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 100; i++) {
      const ok = await ping({ REDIS_TLS_CA_PATH: file('ca.pem'), REDIS_TLS_CERT_PATH: file('client.pem'), REDIS_TLS_KEY_PATH: file('client.key') }).then(() => true, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 30_000);

  it('answers PING over TLS with the suite CA and a client certificate', async () => {
    expect(await ping({ REDIS_TLS_CA_PATH: file('ca.pem'), REDIS_TLS_CERT_PATH: file('client.pem'), REDIS_TLS_KEY_PATH: file('client.key') })).toBe('PONG');
  });

  it('is refused without a client certificate', async () => {
    // TLS 1.3: the server checks the client certificate after the client has finished its handshake, so the
    // refusal reaches the client either as the alert or, when the server closes first, as a reset.
    await expect(ping({ REDIS_TLS_CA_PATH: file('ca.pem') })).rejects.toThrow(/alert certificate required|ECONNRESET/);
  });

  it('refuses a server it cannot verify (another CA)', async () => {
    await expect(ping({ REDIS_TLS_CA_PATH: file('rogue-ca.pem'), REDIS_TLS_CERT_PATH: file('client.pem'), REDIS_TLS_KEY_PATH: file('client.key') })).rejects.toThrow(/self-signed certificate in certificate chain/);
  });

  it('gets no answer in plain text from a TLS-only port', async () => {
    await expect(ping({ REDIS_URL: `redis://127.0.0.1:${redisPort}` })).rejects.toThrow(/ECONNRESET|Connection is closed/);
  });
});
