import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '@soma/contracts';
import { Fernet, parseFernetKeyList } from '@soma/fernet';
import type { RotationCheckpoint, SecretStore } from '../../apps/secrets/src/domain/ports.js';
import { SecretsManager } from '../../apps/secrets/src/domain/secrets-manager.js';
import { FernetCipher } from '../../apps/secrets/src/infra/fernet-cipher.js';
import { RedisSecretStore } from '../../apps/secrets/src/infra/redis-secret-store.js';
import { REDIS_URL } from '../support/infra.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { startAuthz, startCredentialSource, startSecrets, type CredentialSource, type SecretsInstance } from './helpers.js';

const COUNT = 100;
const run = randomUUID().slice(0, 8);
const prefix = `test-${run}:llm_cred:`;
const tenant = `rotation-${run}`;
const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()];
const nameOf = (i: number) => `llm/provider-${String(i).padStart(3, '0')}`;
const valueOf = (i: number) => `sk-soma-rot${run}${String(i).padStart(3, '0')}xyzw`;

let creds: CredentialSource;
let authz: Awaited<ReturnType<typeof startAuthz>>;
let redis: Redis;
let admin = '';
const instances: SecretsInstance[] = [];

beforeAll(async () => {
  creds = await startCredentialSource();
  admin = await creds.issue(`admin-${run}`, tenant, ['secrets:admin']);
  authz = await startAuthz();
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  for (const i of instances) await i.stop();
  await authz?.service.stop();
  await creds?.stop();
  const keys = await redis.keys(`test-${run}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.del(`soma:secrets:rotation:${prefix}`);
  await redis.quit();
  for (const c of extraConnections) await c.quit();
});

async function instance(keys: string[]): Promise<SecretsInstance> {
  const s = await startSecrets({ keys, prefix, authAddress: creds.address, authzAddress: authz.address, tenants: [tenant] });
  instances.push(s);
  return s;
}

/** The domain on the real Redis store, with a store that dies after `swaps` successful swaps (a crash mid-rotation). */
const extraConnections: Redis[] = [];
function crashingManager(keys: string[], swaps: number): SecretsManager {
  const connection = new Redis(REDIS_URL);
  extraConnections.push(connection);
  const real = new RedisSecretStore(connection, prefix);
  let left = swaps;
  const store: SecretStore = Object.assign(Object.create(real) as SecretStore, {
    swapToken: async (...args: Parameters<SecretStore['swapToken']>) => {
      if (left-- <= 0) throw new Error('simulated crash in the middle of a rotation');
      return real.swapToken(...args);
    },
    saveCheckpoint: (c: RotationCheckpoint) => real.saveCheckpoint(c),
  });
  return new SecretsManager({
    authenticator: { authenticate: async () => ({ sub: 'operator', tenant, personaId: '', scopes: ['secrets:admin'], method: 'jwt', credentialId: 'x' }) },
    policy: { decide: async () => ({ allowed: true, reason: 'allowed', decisionId: 'test' }) },
    store,
    cipher: new FernetCipher(parseFernetKeyList(keys.join(','))),
    references: { validate: () => undefined, resolve: async () => '' },
    events: { publish: () => undefined, readiness: () => null },
    clock: { now: () => new Date() },
  });
}

describe('RotateEncryptionKey with 100 secrets (real Redis)', () => {
  it('re-encrypts while serving; interrupted, it resumes and finishes; nothing is ever unreadable', async () => {
    const events = await new TopicCollector(Topics.SecurityEvents, (m) => m.json?.['service'] === 'secrets' && m.json?.['tenant'] === tenant).start();
    const before = await instance([oldKey]);
    for (let i = 0; i < COUNT; i++) await before.client.call('PutSecret', { name: nameOf(i), value: valueOf(i) }, admin);
    const oldId = new Fernet(oldKey).fingerprint();
    const newId = new Fernet(newKey).fingerprint();
    expect(new Set(await Promise.all(Array.from({ length: COUNT }, (_, i) => redis.hget(`${prefix}${nameOf(i)}`, 'key_id'))))).toEqual(new Set([oldId]));

    // The new key is rolled out first (newest first, the old one still decrypts).
    const during = await instance([newKey, oldKey]);

    // Readers keep reading every secret through the whole rotation.
    let reading = true;
    let reads = 0;
    const readFailures: string[] = [];
    const readers = Promise.all(
      [0, 1, 2].map(async (r) => {
        for (let n = r; reading; n = (n + 7) % COUNT) {
          try {
            const got = await during.client.call<{ value: string }>('GetSecret', { name: nameOf(n) }, admin);
            if (got.value !== valueOf(n)) readFailures.push(`${nameOf(n)}: wrong value`);
            reads++;
          } catch (e) {
            readFailures.push(`${nameOf(n)}: ${JSON.stringify(e)}`);
          }
        }
      }),
    );

    // 1. A bounded call does part of the work and says it is not complete.
    const bounded = await during.client.call<{ examined: number; rotated: number; complete: boolean; resumed: boolean; key_id: string }>('RotateEncryptionKey', { max_secrets: 30 }, admin);
    expect(bounded).toMatchObject({ complete: false, resumed: false, key_id: newId });
    expect(bounded.examined).toBeGreaterThanOrEqual(30);
    expect(bounded.rotated).toBe(bounded.examined);

    // 2. A rotation that crashes in the middle of its next pages.
    await expect(crashingManager([newKey, oldKey], 25).rotateEncryptionKey({ requestId: 'crash-test-1', credential: 'Bearer x' }, 0)).rejects.toThrow('simulated crash');
    const mixed = await Promise.all(Array.from({ length: COUNT }, (_, i) => redis.hget(`${prefix}${nameOf(i)}`, 'key_id')));
    expect(mixed.filter((id) => id === newId).length).toBe(bounded.rotated + 25);
    expect(mixed.filter((id) => id === oldId).length).toBe(COUNT - bounded.rotated - 25);

    // 3. Run again: it resumes from the checkpoint and finishes.
    const resumed = await during.client.call<{ examined: number; rotated: number; already_current: number; unreadable: number; complete: boolean; resumed: boolean }>('RotateEncryptionKey', {}, admin);
    expect(resumed).toMatchObject({ complete: true, resumed: true, unreadable: 0 });
    expect(resumed.rotated).toBe(COUNT - bounded.rotated - 25);

    reading = false;
    await readers;
    expect(readFailures).toEqual([]);
    expect(reads).toBeGreaterThan(0);

    // 4. Every secret now opens with the new key alone, unchanged.
    const after = await instance([newKey]);
    for (let i = 0; i < COUNT; i++) expect((await after.client.call<{ value: string }>('GetSecret', { name: nameOf(i) }, admin)).value).toBe(valueOf(i));
    expect(new Set(await Promise.all(Array.from({ length: COUNT }, (_, i) => redis.hget(`${prefix}${nameOf(i)}`, 'key_id'))))).toEqual(new Set([newId]));
    // Metadata other than the key is untouched by rotation.
    expect(await redis.hget(`${prefix}${nameOf(0)}`, 'version')).toBe('1');

    // 5. A further run is a cheap verification pass.
    const again = await after.client.call<{ rotated: number; already_current: number; complete: boolean }>('RotateEncryptionKey', {}, admin);
    expect(again).toMatchObject({ rotated: 0, already_current: COUNT, complete: true });

    await waitFor(() => events.messages.filter((m) => m.json?.['type'] === 'encryption_key_rotated').length >= 3, { timeoutMs: 60_000, what: 'encryption_key_rotated events' });
    const rotatedEvents = events.messages.map((m) => m.json!).filter((e) => e['type'] === 'encryption_key_rotated');
    expect(rotatedEvents.map((e) => (e['details'] as { complete: boolean }).complete)).toEqual([false, true, true]);
    expect(JSON.stringify(rotatedEvents)).not.toContain(valueOf(0));
    await events.stop();
  });
});
