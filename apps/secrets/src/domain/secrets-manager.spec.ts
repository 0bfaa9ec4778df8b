import { describe, expect, it } from 'vitest';
import { Fernet, MultiFernet } from '@soma/fernet';
import type {
  AccessPolicy,
  Caller,
  CallerAuthenticator,
  PutOutcome,
  PutRecord,
  ReferenceResolver,
  RequestContext,
  RotationCheckpoint,
  SecretCipher,
  SecretMetadata,
  SecretStore,
  SecretsEvent,
  SecurityEvents,
  StoredSecret,
} from './ports.js';
import { AccessCache, type AccessCacheOptions } from './access-cache.js';
import { SecretsError, SecretsErrorCode } from './secrets.errors.js';
import { SecretsManager } from './secrets-manager.js';

class MemoryStore implements SecretStore {
  readonly data = new Map<string, StoredSecret>();
  checkpoint: RotationCheckpoint | null = null;
  swapsBeforeCrash = Number.POSITIVE_INFINITY;
  beforeSwap?: (name: string) => void;

  async get(name: string) {
    const s = this.data.get(name);
    return s ? { ...s } : null;
  }
  async put(r: PutRecord): Promise<PutOutcome> {
    const cur = this.data.get(r.name);
    if (r.expectedVersion !== 0 && (cur?.version ?? 0) !== r.expectedVersion) return { ok: false, currentVersion: cur?.version ?? 0 };
    const next: StoredSecret = {
      name: r.name, token: r.token, kind: r.kind, keyId: r.keyId, legacy: false,
      createdAt: cur?.createdAt ?? r.now, createdBy: cur?.createdBy ?? r.actor, updatedAt: r.now, updatedBy: r.actor, version: (cur?.version ?? 0) + 1,
    };
    this.data.set(r.name, next);
    const { token: _t, ...metadata } = next;
    return { ok: true, metadata, created: !cur };
  }
  async delete(name: string) {
    return this.data.delete(name);
  }
  async list(prefix: string, cursor: string, count: number) {
    const names = [...this.data.keys()].filter((n) => n.startsWith(prefix)).sort();
    const start = Number(cursor);
    const secrets: SecretMetadata[] = names.slice(start, start + count).map((n) => {
      const { token: _t, ...m } = this.data.get(n)!;
      return m;
    });
    const end = start + count;
    return { cursor: end >= names.length ? '0' : String(end), secrets };
  }
  async scanNames(cursor: string, count: number) {
    const names = [...this.data.keys()].sort();
    const start = Number(cursor);
    const end = start + count;
    return { cursor: end >= names.length ? '0' : String(end), names: names.slice(start, end) };
  }
  async swapToken(name: string, expected: string, token: string, keyId: string, now: string) {
    this.beforeSwap?.(name);
    if (this.swapsBeforeCrash-- <= 0) throw new Error('simulated crash');
    const cur = this.data.get(name);
    if (!cur || cur.token !== expected) return false;
    this.data.set(name, { ...cur, token, keyId, updatedAt: now, legacy: false });
    return true;
  }
  async loadCheckpoint() {
    return this.checkpoint;
  }
  async saveCheckpoint(c: RotationCheckpoint) {
    this.checkpoint = { ...c };
  }
}

class Cipher implements SecretCipher {
  readonly primaryKeyId: string;
  constructor(readonly mf: MultiFernet) {
    this.primaryKeyId = mf.primary.fingerprint();
  }
  encrypt(p: string) {
    return this.mf.encrypt(p);
  }
  decrypt(t: string) {
    const r = this.mf.decryptWithIndex(t);
    return { plaintext: r.plaintext.toString('utf8'), keyIndex: r.keyIndex };
  }
  rotate(t: string) {
    return this.mf.rotate(t);
  }
}

const callers: Record<string, Caller> = {
  'tok-admin': { sub: 'admin-1', tenant: 't1', personaId: '', scopes: ['secrets:admin'], method: 'jwt', credentialId: 'j1' },
  'tok-reader': { sub: 'reader-1', tenant: 't1', personaId: '', scopes: ['secret:read'], method: 'api_key', credentialId: 'k1' },
  'tok-nobody': { sub: 'nobody', tenant: 't1', personaId: '', scopes: [], method: 'jwt', credentialId: 'j2' },
  'tok-foreign-admin': { sub: 'intruder', tenant: 't2', personaId: '', scopes: ['secrets:admin'], method: 'api_key', credentialId: 'k2' },
};

function setup(keys: string[] = [Fernet.generateKey()], store = new MemoryStore(), tenants?: string[], accessCache?: AccessCacheOptions) {
  const events: SecretsEvent[] = [];
  let full = false;
  let policyDown = false;
  let authDown = false;
  let nowMs = Date.parse('2026-12-04T10:00:00Z');
  const calls = { authenticate: 0, decide: 0 };
  /** Credentials auth now refuses, and scopes the policy no longer grants (revocations in tests). */
  const revoked = new Set<string>();
  const ungranted = new Set<string>();
  const authenticator: CallerAuthenticator = {
    async authenticate(credential) {
      calls.authenticate += 1;
      if (authDown) throw new SecretsError(SecretsErrorCode.Unavailable, 'auth unavailable');
      const token = credential.replace(/^Bearer /, '');
      const c = revoked.has(token) ? undefined : callers[token];
      if (!c) throw new SecretsError(SecretsErrorCode.Unauthenticated, 'credential refused');
      return c;
    },
  };
  const policy: AccessPolicy = {
    async decide(caller, action) {
      calls.decide += 1;
      if (policyDown) throw new Error('authz down');
      const granted = (scope: string) => caller.scopes.includes(scope) && !ungranted.has(scope);
      const ok = granted('secrets:admin') || (action === 'secret:read' && granted('secret:read'));
      return { allowed: ok, reason: ok ? 'allowed' : 'policy_violation', decisionId: 'd-1' };
    },
  };
  const references: ReferenceResolver = {
    validate(ref) {
      if (!ref.startsWith('vault://') && !ref.startsWith('file://')) throw new SecretsError(SecretsErrorCode.InvalidArgument, 'bad reference');
    },
    async resolve(_name, ref) {
      if (ref === 'vault://secret/down') throw new SecretsError(SecretsErrorCode.ReferenceUnresolved, 'vault down');
      return `resolved(${ref})`;
    },
  };
  const sink: SecurityEvents = {
    publish(e) {
      if (full) throw new Error('buffer full');
      events.push(e);
    },
    readiness: () => (full ? 'full' : null),
  };
  const cipher = new Cipher(new MultiFernet(keys));
  const manager = new SecretsManager({
    authenticator, policy, store, cipher, references, events: sink, clock: { now: () => new Date(nowMs) },
    ...(tenants ? { tenants } : {}),
    ...(accessCache ? { accessCache: new AccessCache(accessCache) } : {}),
  });
  return {
    manager, store, events, cipher, calls, revoked, ungranted,
    advance: (ms: number) => (nowMs += ms),
    setFull: (v: boolean) => (full = v),
    setPolicyDown: (v: boolean) => (policyDown = v),
    setAuthDown: (v: boolean) => (authDown = v),
  };
}

const ctx = (token?: string): RequestContext => ({ requestId: 'req-12345678', credential: token ? `Bearer ${token}` : undefined });
const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: SecretsError) => e.code);
const PLAIN = 'sk-soma-AbCdEfGh12345678wxyz';

describe('SecretsManager: put / get / delete / list', () => {
  it('stores Fernet tokens, never plaintext, and reads them back with metadata', async () => {
    const { manager, store, events } = setup();
    const put = await manager.putSecret(ctx('tok-admin'), { name: 'openai', value: PLAIN, reference: '', expectedVersion: 0 });
    expect(put.created).toBe(true);
    expect(put.metadata).toMatchObject({ name: 'openai', version: 1, createdBy: 'admin-1', kind: 'value' });
    expect(store.data.get('openai')!.token).toMatch(/^gAAAAA/);
    expect(JSON.stringify([...store.data.values()])).not.toContain(PLAIN);
    const got = await manager.getSecret(ctx('tok-reader'), 'openai');
    expect(got.value).toBe(PLAIN);
    expect(got.metadata).not.toHaveProperty('token');
    expect(events.map((e) => e.type)).toEqual(['secret_written', 'secret_accessed']);
    expect(events[1]).toMatchObject({ tenant: 't1', outcome: 'success', resource: 'secret:openai', actor: { user_id: 'reader-1' } });
    expect(JSON.stringify(events)).not.toContain(PLAIN);
  });

  it('versions writes and honours expected_version', async () => {
    const { manager } = setup();
    await manager.putSecret(ctx('tok-admin'), { name: 'a', value: 'v1', reference: '', expectedVersion: 0 });
    const second = await manager.putSecret(ctx('tok-admin'), { name: 'a', value: 'v2', reference: '', expectedVersion: 1 });
    expect(second.metadata.version).toBe(2);
    expect(second.created).toBe(false);
    expect(await codeOf(manager.putSecret(ctx('tok-admin'), { name: 'a', value: 'v3', reference: '', expectedVersion: 1 }))).toBe(SecretsErrorCode.VersionConflict);
    expect((await manager.getSecret(ctx('tok-admin'), 'a')).value).toBe('v2');
  });

  it('refuses bad names, both or neither of value/reference, oversized values', async () => {
    const { manager } = setup();
    for (const name of ['', '-x', 'a b', 'a*', 'x'.repeat(129), 'ü']) {
      expect(await codeOf(manager.putSecret(ctx('tok-admin'), { name, value: 'v', reference: '', expectedVersion: 0 }))).toBe(SecretsErrorCode.InvalidArgument);
    }
    expect(await codeOf(manager.putSecret(ctx('tok-admin'), { name: 'n', value: 'v', reference: 'vault://a/b', expectedVersion: 0 }))).toBe(SecretsErrorCode.InvalidArgument);
    expect(await codeOf(manager.putSecret(ctx('tok-admin'), { name: 'n', value: '', reference: '', expectedVersion: 0 }))).toBe(SecretsErrorCode.InvalidArgument);
    expect(await codeOf(manager.putSecret(ctx('tok-admin'), { name: 'n', value: 'x'.repeat(64 * 1024 + 1), reference: '', expectedVersion: 0 }))).toBe(SecretsErrorCode.InvalidArgument);
    expect(await codeOf(manager.putSecret(ctx('tok-admin'), { name: 'n', value: '', reference: 'http://x', expectedVersion: 0 }))).toBe(SecretsErrorCode.InvalidArgument);
  });

  it('resolves references at read time and reports unresolvable ones', async () => {
    const { manager, events } = setup();
    await manager.putSecret(ctx('tok-admin'), { name: 'vaulted', value: '', reference: 'vault://secret/llm#key', expectedVersion: 0 });
    const got = await manager.getSecret(ctx('tok-admin'), 'vaulted');
    expect(got.value).toBe('resolved(vault://secret/llm#key)');
    expect(got.metadata.kind).toBe('reference');
    await manager.putSecret(ctx('tok-admin'), { name: 'down', value: '', reference: 'vault://secret/down', expectedVersion: 0 });
    expect(await codeOf(manager.getSecret(ctx('tok-admin'), 'down'))).toBe(SecretsErrorCode.ReferenceUnresolved);
    expect(events.at(-1)).toMatchObject({ type: 'secret_accessed', outcome: 'error', reason: 'reference_unresolved' });
  });

  it('deletes, then answers NOT_FOUND with an event each time', async () => {
    const { manager, events } = setup();
    await manager.putSecret(ctx('tok-admin'), { name: 'gone', value: 'v', reference: '', expectedVersion: 0 });
    expect(await manager.deleteSecret(ctx('tok-admin'), 'gone')).toBe(true);
    expect(await codeOf(manager.deleteSecret(ctx('tok-admin'), 'gone'))).toBe(SecretsErrorCode.NotFound);
    expect(await codeOf(manager.getSecret(ctx('tok-admin'), 'gone'))).toBe(SecretsErrorCode.NotFound);
    expect(events.map((e) => [e.type, e.outcome])).toEqual([
      ['secret_written', 'success'], ['secret_deleted', 'success'], ['secret_deleted', 'failure'], ['secret_accessed', 'failure'],
    ]);
  });

  it('lists names and metadata only, in pages, sorted', async () => {
    const { manager } = setup();
    for (const n of ['b', 'a', 'c', 'other']) await manager.putSecret(ctx('tok-admin'), { name: n, value: `value-${n}`, reference: '', expectedVersion: 0 });
    const first = await manager.listSecrets(ctx('tok-reader'), '', 2, '');
    expect(first.secrets.map((s) => s.name)).toEqual(['a', 'b']);
    expect(JSON.stringify(first)).not.toContain('value-');
    const second = await manager.listSecrets(ctx('tok-reader'), '', 2, first.nextPageToken);
    expect(second.secrets.map((s) => s.name)).toEqual(['c', 'other']);
    expect(second.nextPageToken).toBe('');
    expect(await codeOf(manager.listSecrets(ctx('tok-reader'), '', 2, 'bogus'))).toBe(SecretsErrorCode.InvalidArgument);
    expect(await codeOf(manager.listSecrets(ctx('tok-reader'), '*', 2, ''))).toBe(SecretsErrorCode.InvalidArgument);
  });
});

describe('SecretsManager: access control fails closed', () => {
  it('refuses a missing or refused credential with an event and no store access', async () => {
    const { manager, events } = setup();
    expect(await codeOf(manager.getSecret(ctx(), 'x'))).toBe(SecretsErrorCode.Unauthenticated);
    expect(await codeOf(manager.getSecret(ctx('forged'), 'x'))).toBe(SecretsErrorCode.Unauthenticated);
    expect(events.map((e) => [e.type, e.reason, e.tenant])).toEqual([
      ['secret_access_denied', 'missing_credential', 'unknown'],
      ['secret_access_denied', 'unauthenticated', 'unknown'],
    ]);
  });

  it('denies a principal the policy does not grant, and records who', async () => {
    const { manager, events } = setup();
    await manager.putSecret(ctx('tok-admin'), { name: 'openai', value: PLAIN, reference: '', expectedVersion: 0 });
    expect(await codeOf(manager.getSecret(ctx('tok-nobody'), 'openai'))).toBe(SecretsErrorCode.PermissionDenied);
    expect(await codeOf(manager.putSecret(ctx('tok-reader'), { name: 'openai', value: 'x', reference: '', expectedVersion: 0 }))).toBe(SecretsErrorCode.PermissionDenied);
    expect(await codeOf(manager.rotateEncryptionKey(ctx('tok-reader'), 0))).toBe(SecretsErrorCode.PermissionDenied);
    const denied = events.filter((e) => e.type === 'secret_access_denied');
    expect(denied.map((e) => [e.actor?.user_id, e.details?.['permission']])).toEqual([
      ['nobody', 'secret:read'], ['reader-1', 'secret:write'], ['reader-1', 'secret:rotate'],
    ]);
  });

  it('refuses callers of a tenant not allowed to use the service, whatever their scopes, before asking the policy', async () => {
    const { manager, events } = setup(undefined, undefined, ['t1']);
    await manager.putSecret(ctx('tok-admin'), { name: 'openai', value: PLAIN, reference: '', expectedVersion: 0 });
    expect(await codeOf(manager.getSecret(ctx('tok-foreign-admin'), 'openai'))).toBe(SecretsErrorCode.PermissionDenied);
    expect(await codeOf(manager.listSecrets(ctx('tok-foreign-admin'), '', 10, ''))).toBe(SecretsErrorCode.PermissionDenied);
    expect(events.filter((e) => e.type === 'secret_access_denied').map((e) => [e.tenant, e.reason])).toEqual([['t2', 'tenant_not_allowed'], ['t2', 'tenant_not_allowed']]);
  });

  it('treats an unreachable auth as UNAVAILABLE and an unreachable policy as a denial', async () => {
    const s = setup();
    s.setAuthDown(true);
    expect(await codeOf(s.manager.getSecret(ctx('tok-admin'), 'x'))).toBe(SecretsErrorCode.Unavailable);
    s.setAuthDown(false);
    s.setPolicyDown(true);
    expect(await codeOf(s.manager.getSecret(ctx('tok-admin'), 'x'))).toBe(SecretsErrorCode.PermissionDenied);
    expect(s.events.at(-1)).toMatchObject({ type: 'secret_access_denied', reason: 'policy_unavailable' });
  });

  it('hands out no value and accepts no write when security events cannot be recorded', async () => {
    const s = setup();
    await s.manager.putSecret(ctx('tok-admin'), { name: 'k', value: PLAIN, reference: '', expectedVersion: 0 });
    s.setFull(true);
    expect(await codeOf(s.manager.getSecret(ctx('tok-admin'), 'k'))).toBe(SecretsErrorCode.Unavailable);
    expect(await codeOf(s.manager.putSecret(ctx('tok-admin'), { name: 'k2', value: PLAIN, reference: '', expectedVersion: 0 }))).toBe(SecretsErrorCode.Unavailable);
    expect(s.store.data.has('k2')).toBe(false);
  });
});

describe('SecretsManager: key rotation', () => {
  async function seeded(count: number, oldKey: string) {
    const store = new MemoryStore();
    const old = setup([oldKey], store);
    for (let i = 0; i < count; i++) await old.manager.putSecret(ctx('tok-admin'), { name: `s${String(i).padStart(3, '0')}`, value: `plain-${i}`, reference: '', expectedVersion: 0 });
    return store;
  }

  it('re-encrypts everything under the newest key; interrupted, it resumes and finishes', async () => {
    const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()];
    const store = await seeded(250, oldKey);
    const s = setup([newKey, oldKey], store);
    store.swapsBeforeCrash = 130;
    await expect(s.manager.rotateEncryptionKey(ctx('tok-admin'), 0)).rejects.toThrow('simulated crash');
    expect(store.checkpoint?.cursor).toBe('100');
    // Every secret is readable in the middle of the rotation.
    for (let i = 0; i < 250; i++) expect((await s.manager.getSecret(ctx('tok-admin'), `s${String(i).padStart(3, '0')}`)).value).toBe(`plain-${i}`);
    store.swapsBeforeCrash = Number.POSITIVE_INFINITY;
    const second = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 0);
    expect(second).toMatchObject({ resumed: true, complete: true, examined: 150, alreadyCurrent: 30, rotated: 120, unreadable: [] });
    const onlyNew = setup([newKey], store);
    for (let i = 0; i < 250; i++) expect((await onlyNew.manager.getSecret(ctx('tok-admin'), `s${String(i).padStart(3, '0')}`)).value).toBe(`plain-${i}`);
    const again = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 0);
    expect(again).toMatchObject({ resumed: false, complete: true, rotated: 0, alreadyCurrent: 250 });
    expect(s.events.filter((e) => e.type === 'encryption_key_rotated').at(-1)).toMatchObject({ outcome: 'success', details: { key_id: s.cipher.primaryKeyId, complete: true } });
  });

  it('works in bounded steps (max_secrets) and reports progress', async () => {
    const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()];
    const store = await seeded(100, oldKey);
    const s = setup([newKey, oldKey], store);
    const first = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 40);
    expect(first).toMatchObject({ examined: 40, rotated: 40, complete: false, resumed: false });
    const second = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 40);
    expect(second).toMatchObject({ examined: 40, rotated: 40, complete: false, resumed: true });
    const last = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 0);
    expect(last).toMatchObject({ examined: 20, rotated: 20, complete: true, resumed: true });
  });

  it('never overwrites a secret written during the rotation', async () => {
    const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()];
    const store = await seeded(3, oldKey);
    const s = setup([newKey, oldKey], store);
    let raced = false;
    store.beforeSwap = (name) => {
      if (name === 's001' && !raced) {
        raced = true;
        // A concurrent PutSecret lands between the rotation's read and its compare-and-set.
        const cur = store.data.get(name)!;
        store.data.set(name, { ...cur, token: s.cipher.encrypt('written-meanwhile'), keyId: s.cipher.primaryKeyId, version: cur.version + 1 });
      }
    };
    const result = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 0);
    expect(result).toMatchObject({ complete: true, rotated: 2, alreadyCurrent: 1 });
    expect((await s.manager.getSecret(ctx('tok-admin'), 's001')).value).toBe('written-meanwhile');
  });

  it('leaves tokens no key opens untouched and names them', async () => {
    const store = await seeded(2, Fernet.generateKey());
    const s = setup([Fernet.generateKey()], store);
    const before = store.data.get('s000')!.token;
    const result = await s.manager.rotateEncryptionKey(ctx('tok-admin'), 0);
    expect(result).toMatchObject({ complete: true, rotated: 0, unreadable: ['s000', 's001'] });
    expect(store.data.get('s000')!.token).toBe(before);
    expect(await codeOf(s.manager.getSecret(ctx('tok-admin'), 's000'))).toBe(SecretsErrorCode.SecretUndecryptable);
    expect(s.events.filter((e) => e.type === 'encryption_key_rotated').at(-1)).toMatchObject({ outcome: 'failure', reason: 'unreadable_secrets' });
  });

  it('starts a new pass when the newest key changed since the checkpoint', async () => {
    const [k1, k2, k3] = [Fernet.generateKey(), Fernet.generateKey(), Fernet.generateKey()];
    const store = await seeded(150, k1);
    const first = setup([k2, k1], store);
    await first.manager.rotateEncryptionKey(ctx('tok-admin'), 50);
    const second = setup([k3, k2, k1], store);
    const result = await second.manager.rotateEncryptionKey(ctx('tok-admin'), 0);
    expect(result).toMatchObject({ resumed: false, complete: true, examined: 150, rotated: 150 });
  });
});

describe('SecretsManager: caller and decision cache', () => {
  const ttl = { callerTtlMs: 5000, decisionTtlMs: 5000, maxCallers: 100, maxDecisions: 100 };
  const cached = async (tenants?: string[], options = ttl) => {
    const t = setup(undefined, undefined, tenants, options);
    await t.manager.putSecret(ctx('tok-admin'), { name: 'openai', value: PLAIN, reference: '', expectedVersion: 0 });
    t.calls.authenticate = 0;
    t.calls.decide = 0;
    t.events.length = 0;
    return t;
  };

  it('asks auth and authz once per credential and read within the TTL, and says so in each event', async () => {
    const { manager, calls, events } = await cached();
    for (let i = 0; i < 3; i++) expect((await manager.getSecret(ctx('tok-reader'), 'openai')).value).toBe(PLAIN);
    expect(calls).toEqual({ authenticate: 1, decide: 1 });
    expect(events.map((e) => e.type)).toEqual(['secret_accessed', 'secret_accessed', 'secret_accessed']);
    expect(events.map((e) => [e.details!['caller_cached'], e.details!['cached']])).toEqual([[false, false], [true, true], [true, true]]);
    expect(events[2]).toMatchObject({ outcome: 'success', actor: { user_id: 'reader-1' }, details: { request_id: 'req-12345678', credential_id: 'k1' } });
  });

  it('asks again after the TTL: a revoked credential or a removed grant stops working then', async () => {
    const { manager, calls, revoked, ungranted, advance } = await cached();
    await manager.getSecret(ctx('tok-reader'), 'openai');
    revoked.add('tok-reader');
    // Within the TTL the remembered answer stands: that delay is the documented revocation bound.
    advance(4999);
    expect((await manager.getSecret(ctx('tok-reader'), 'openai')).value).toBe(PLAIN);
    advance(1);
    expect(await codeOf(manager.getSecret(ctx('tok-reader'), 'openai'))).toBe(SecretsErrorCode.Unauthenticated);
    expect(calls.authenticate).toBe(2);

    await manager.getSecret(ctx('tok-admin'), 'openai');
    ungranted.add('secrets:admin');
    advance(5000);
    expect(await codeOf(manager.getSecret(ctx('tok-admin'), 'openai'))).toBe(SecretsErrorCode.PermissionDenied);
  });

  it('never reuses a deny, a refused credential or an unavailable auth / authz (fail closed)', async () => {
    const { manager, calls, setPolicyDown, setAuthDown, advance } = await cached();
    for (let i = 0; i < 2; i++) expect(await codeOf(manager.getSecret(ctx('tok-nobody'), 'openai'))).toBe(SecretsErrorCode.PermissionDenied);
    expect(calls.decide).toBe(2);
    for (let i = 0; i < 2; i++) expect(await codeOf(manager.getSecret(ctx('tok-unknown'), 'openai'))).toBe(SecretsErrorCode.Unauthenticated);
    expect(calls.authenticate).toBe(3); // nobody once (then cached), unknown twice

    setPolicyDown(true);
    expect(await codeOf(manager.getSecret(ctx('tok-reader'), 'openai'))).toBe(SecretsErrorCode.PermissionDenied);
    setPolicyDown(false);
    expect((await manager.getSecret(ctx('tok-reader'), 'openai')).value).toBe(PLAIN);

    advance(5000); // everything remembered so far has expired
    setAuthDown(true);
    expect(await codeOf(manager.getSecret(ctx('tok-admin'), 'openai'))).toBe(SecretsErrorCode.Unavailable);
    setAuthDown(false);
    expect((await manager.getSecret(ctx('tok-admin'), 'openai')).value).toBe(PLAIN);
  });

  it('keys decisions by secret and action: another name asks again, writes always ask', async () => {
    const { manager, calls } = await cached();
    await manager.putSecret(ctx('tok-admin'), { name: 'other', value: 'v', reference: '', expectedVersion: 0 });
    await manager.putSecret(ctx('tok-admin'), { name: 'other', value: 'v2', reference: '', expectedVersion: 0 });
    expect(calls).toEqual({ authenticate: 0, decide: 2 });
    await manager.getSecret(ctx('tok-admin'), 'openai');
    await manager.getSecret(ctx('tok-admin'), 'other');
    await manager.getSecret(ctx('tok-admin'), 'other');
    expect(calls.decide).toBe(4);
  });

  it('still refuses a cached caller of a tenant no longer allowed, and records the refusal', async () => {
    const { manager, events } = await cached(['t1']);
    await manager.getSecret(ctx('tok-reader'), 'openai');
    const foreign = await codeOf(manager.getSecret(ctx('tok-foreign-admin'), 'openai'));
    expect(foreign).toBe(SecretsErrorCode.PermissionDenied);
    expect(await codeOf(manager.getSecret(ctx('tok-foreign-admin'), 'openai'))).toBe(SecretsErrorCode.PermissionDenied);
    expect(events.filter((e) => e.reason === 'tenant_not_allowed')).toHaveLength(2);
  });

  it('records the read before the value leaves even on a cached decision, and refuses when it cannot', async () => {
    const { manager, setFull } = await cached();
    await manager.getSecret(ctx('tok-reader'), 'openai');
    setFull(true);
    expect(await codeOf(manager.getSecret(ctx('tok-reader'), 'openai'))).toBe(SecretsErrorCode.Unavailable);
  });

  it('with TTL 0 asks auth and authz on every call', async () => {
    const { manager, calls, events } = await cached(undefined, { ...ttl, callerTtlMs: 0, decisionTtlMs: 0 });
    await manager.getSecret(ctx('tok-reader'), 'openai');
    await manager.getSecret(ctx('tok-reader'), 'openai');
    expect(calls).toEqual({ authenticate: 2, decide: 2 });
    expect(events.every((e) => e.details!['cached'] === false && e.details!['caller_cached'] === false)).toBe(true);
  });
});
