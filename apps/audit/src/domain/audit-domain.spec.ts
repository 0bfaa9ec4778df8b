import { generateKeyPairSync, randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import type { SecurityEvent } from '@soma/contracts';
import { appendProtected, appendToChain, classifyMessages, protectChunk } from './audit-ingest.js';
import { canonicalRowJson, chainedBody, GENESIS_HASH, rowHash, unstorableReason, type ChainHead, type StoredAuditRow } from './audit-record.js';
import { decodePageToken, encodePageToken } from './audit-query.js';
import { ed25519Signer, type Checkpoint } from './checkpoint.js';
import { canonicalIpNetwork, formatIpNetwork, truncateToNetwork } from './ip-network.js';
import type { AuditLogWriter, ChainTransaction } from './ports.js';
import { decryptPii, deriveKek, personalFieldsJson, pseudonymOf, unwrapSubjectKey, wrapSubjectKey } from './subject-crypto.js';
import { verifyChains, type ChainInfo, type ChainReader } from './verify-chain.js';

let n = 0;
const event = (over: Partial<SecurityEvent> = {}): SecurityEvent => ({
  schema: 'soma.security.event/v1',
  id: `0193a5b2-7c4d-7e8f-9a0b-${(++n).toString(16).padStart(12, '0')}`,
  type: 'authentication_failed',
  occurred_at: '2026-12-04T10:00:00.123Z',
  service: 'auth',
  tenant: 'acme',
  actor: { user_id: 'alice', ip_address: '203.0.113.77', user_agent: 'curl/8.0' },
  action: 'login',
  resource: 'session',
  outcome: 'failure',
  reason: 'bad_password',
  details: { attempts: 3, nested: { b: 1, a: [1, 'x'] } },
  trace_id: null,
  ...over,
});

/** An in-memory store implementing the writer and chain reader ports (unit tests only). */
class MemoryStore implements AuditLogWriter, ChainReader {
  data: StoredAuditRow[] = [];
  heads = new Map<number, ChainHead>();
  ids = new Set<string>();
  keys = new Map<string, Buffer>();
  checkpointList: Checkpoint[] = [];
  floors = new Map<number, ChainInfo['floor']>();
  private nextId = 1;

  async inChainTransaction<T>(chain: number, work: (tx: ChainTransaction) => Promise<T>): Promise<T> {
    const tx: ChainTransaction = {
      lockHead: async () => this.heads.get(chain) ?? { chain_partition: chain, seq: 0, hash: GENESIS_HASH, timestamp: new Date(0) },
      claimEventIds: async (ids) => new Map(ids.filter((id) => !this.ids.has(id) && this.ids.add(id)).map((id) => [id, String(this.nextId++)])),
      insertRows: async (rows: StoredAuditRow[]) => {
        for (const r of rows) this.data.push({ ...r });
      },
      saveHead: async (h) => void this.heads.set(chain, h),
    };
    return work(tx);
  }
  async loadSubjectKeys(subjects: Array<{ tenant: string; user_id: string }>) {
    return new Map(subjects.flatMap((s) => {
      const k = this.keys.get(`${s.tenant}\u0000${s.user_id}`);
      return k ? [[`${s.tenant}\u0000${s.user_id}`, k] as [string, Buffer]] : [];
    }));
  }
  async insertSubjectKeys(list: Array<{ tenant: string; user_id: string; key: Buffer }>) {
    return new Set(list.map((k) => {
      this.keys.set(`${k.tenant}\u0000${k.user_id}`, k.key);
      return `${k.tenant}\u0000${k.user_id}`;
    }));
  }
  async chains(): Promise<ChainInfo[]> {
    return [...this.heads.values()].map((h) => ({ chain_partition: h.chain_partition, head: { seq: h.seq, hash: h.hash, timestamp: h.timestamp }, floor: this.floors.get(h.chain_partition) ?? null }));
  }
  async rows_(chain: number) {
    return this.data.filter((r) => r.chain_partition === chain).sort((a, b) => a.chain_seq - b.chain_seq);
  }
  async rows(chain: number, _range: unknown, afterSeq: number, limit: number) {
    return (await this.rows_(chain)).filter((r) => r.chain_seq > afterSeq).slice(0, limit);
  }
  async rowAt(chain: number, seq: number) {
    return (await this.rows_(chain)).find((r) => r.chain_seq === seq) ?? null;
  }
  async checkpoints(chain: number) {
    return this.checkpointList.filter((c) => c.chain_partition === chain);
  }
}

const kek = deriveKek(randomBytes(32).toString('base64url'));
const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const signer = ed25519Signer(pem);

describe('IP networks', () => {
  it('keeps /24 of IPv4 and /48 of IPv6, in a form PostgreSQL text round-trips to', () => {
    expect(formatIpNetwork(truncateToNetwork('203.0.113.77'))).toBe('203.0.113.0/24');
    expect(formatIpNetwork(truncateToNetwork('2001:db8:abcd:1234::1'))).toBe('2001:db8:abcd:0:0:0:0:0/48');
    expect(canonicalIpNetwork('2001:db8:abcd::/48')).toBe('2001:db8:abcd:0:0:0:0:0/48');
    expect(canonicalIpNetwork('203.0.113.0/24')).toBe('203.0.113.0/24');
    expect(formatIpNetwork(truncateToNetwork('::ffff:192.0.2.1'))).toBe('0:0:0:0:0:0:0:0/48');
    expect(canonicalIpNetwork(null)).toBeNull();
  });
});

describe('subject keys and personal fields', () => {
  it('wraps keys bound to the subject, pseudonymises and encrypts', () => {
    const key = randomBytes(32);
    const wrapped = wrapSubjectKey(kek, 'acme', 'alice', key);
    expect(unwrapSubjectKey(kek, 'acme', 'alice', wrapped).equals(key)).toBe(true);
    expect(() => unwrapSubjectKey(kek, 'acme', 'bob', wrapped)).toThrow();
    expect(pseudonymOf(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(pseudonymOf(key)).not.toBe(pseudonymOf(randomBytes(32)));
  });
});

describe('hash chain', () => {
  it('canonical JSON is independent of key order', () => {
    const base = { timestamp: new Date(0), occurred_at: new Date(0), event_id: 'e', event_type: 't', tenant: 'x', service: 's', user_id: null, ip_address: null, pii: null, action: 'a', resource: '', outcome: 'success' as const, reason: null, trace_id: null, chain_partition: 0, chain_seq: 1, prev_hash: GENESIS_HASH };
    expect(canonicalRowJson({ ...base, details: { b: 1, a: 2 } })).toBe(canonicalRowJson({ ...base, details: { a: 2, b: 1 } }));
    expect(rowHash({ ...base, details: {} }).equals(rowHash({ ...base, details: { a: 1 } }))).toBe(false);
  });

  it('the direct canonical writers produce exactly what canonicalize (RFC 8785) produces', () => {
    const texts = ['', 'plain', 'quote " backslash \\ slash /', 'tab\tnewline\n\u0001\u001f\u007f', 'é 漢字 😀 \u2028\u2029', '</script>'];
    const detailsList: Array<Record<string, unknown>> = [
      {},
      { z: 1, a: [3, 2, { y: null, b: true }], m: 'x' },
      { n: 1e21, small: 1e-7, neg: -0, f: 0.1 + 0.2, big: Number.MAX_SAFE_INTEGER, '😀': 1, é: 2, e: 3 },
      { nested: { deep: { deeper: ['a', { k: 'v' }] } } },
    ];
    let i = 0;
    for (const text of texts) {
      for (const details of detailsList) {
        i += 1;
        const row = {
          timestamp: new Date(Date.UTC(2026, 11, 4, 12, 0, i)),
          occurred_at: new Date(Date.UTC(2026, 0, 1) + i),
          event_id: `0193${i}`,
          event_type: 'authentication_failed',
          tenant: text || 't',
          service: 'auth',
          user_id: i % 2 ? null : text,
          ip_address: i % 3 ? null : '203.0.113.0/24',
          pii: i % 2 ? null : randomBytes(40),
          action: text,
          resource: text,
          outcome: 'failure' as const,
          reason: i % 4 ? text : null,
          details,
          trace_id: i % 5 ? null : 'a'.repeat(32),
          chain_partition: i % 3,
          chain_seq: i * 1_000_003,
          prev_hash: GENESIS_HASH,
        };
        expect(canonicalRowJson(row)).toBe(canonicalize(chainedBody(row)));
        const fields = { user_id: i % 2 ? null : text, ip_address: i % 3 ? null : '2001:db8::1', user_agent: text };
        expect(personalFieldsJson(fields)).toBe(canonicalize(fields));
      }
    }
  });

  it('stores pseudonyms, ciphertext and networks; dedupes; continues the chain across batches', async () => {
    const store = new MemoryStore();
    const e1 = event();
    const r1 = await appendToChain(store, kek, 0, [e1, e1, event({ actor: { user_id: null, ip_address: '2001:db8::1', user_agent: 'x' } })]);
    expect(r1).toMatchObject({ inserted: 2, duplicates: 1, lastSeq: 2 });
    const r2 = await appendToChain(store, kek, 0, [e1, event()]);
    expect(r2).toMatchObject({ inserted: 1, duplicates: 1, lastSeq: 3 });
    // The outcome carries the rows as stored, ids included: what the SIEM stream publishes without a read-back.
    expect([...r1.rows, ...r2.rows]).toEqual(store.data);
    expect(r2.rows.map((r) => r.chain_seq)).toEqual([3]);
    const [a, b, c] = store.data;
    expect(a!.user_id).toMatch(/^[0-9a-f]{64}$/);
    expect(a!.user_id).toBe(c!.user_id);
    expect(a!.ip_address).toBe('203.0.113.0/24');
    expect(JSON.stringify(a)).not.toContain('alice');
    const key = unwrapSubjectKey(kek, 'acme', 'alice', store.keys.get('acme\u0000alice')!);
    expect(decryptPii(key, a!.event_id, a!.pii!)).toEqual({ user_id: 'alice', ip_address: '203.0.113.77', user_agent: 'curl/8.0' });
    expect(b!.user_id).toBeNull();
    expect(b!.pii).toBeNull();
    expect(b!.prev_hash.equals(a!.hash)).toBe(true);
    expect(c!.prev_hash.equals(b!.hash)).toBe(true);
    expect(c!.timestamp.getTime()).toBeGreaterThanOrEqual(b!.timestamp.getTime());
    expect((await verifyChains(store, signer)).intact).toBe(true);
  });

  it('a chunk protected before the chain moved on is chained after what was stored meanwhile, its duplicates dropped (ADR 0409)', async () => {
    const store = new MemoryStore();
    const stored = event();
    const early = await protectChunk(store, kek, [stored, event(), event()]);
    // The previous chunk of the lane commits while `early` waits for its turn, and holds one of its events.
    await appendToChain(store, kek, 2, [event(), stored]);
    const r = await appendProtected(store, 2, early);
    expect(r).toMatchObject({ inserted: 2, duplicates: 1, lastSeq: 4 });
    expect(store.data.map((row) => row.chain_seq)).toEqual([1, 2, 3, 4]);
    expect(store.data[2]!.prev_hash.equals(store.data[1]!.hash)).toBe(true);
    // Both chunks used the one subject key: the pseudonym is the same.
    expect(new Set(store.data.map((row) => row.user_id)).size).toBe(1);
    expect((await verifyChains(store, signer)).intact).toBe(true);
  });

  it('timestamps never go back along a chain even if the clock does', async () => {
    const store = new MemoryStore();
    await appendToChain(store, kek, 0, [event()], () => new Date('2026-12-04T12:00:00Z'));
    await appendToChain(store, kek, 0, [event()], () => new Date('2026-12-04T11:00:00Z'));
    expect(store.data[1]!.timestamp.toISOString()).toBe('2026-12-04T12:00:00.000Z');
  });

  async function chainOf(count: number): Promise<MemoryStore> {
    const store = new MemoryStore();
    for (let i = 0; i < count; i += 5) await appendToChain(store, kek, 1, Array.from({ length: 5 }, () => event()));
    return store;
  }

  it('names an altered row, a deleted middle row and a forged checkpoint', async () => {
    const altered = await chainOf(20);
    altered.data[7]!.details = { attempts: 0 };
    expect((await verifyChains(altered, signer)).broken).toMatchObject({ row_id: '8', chain_seq: 8, reason: 'HASH_MISMATCH' });

    const gap = await chainOf(20);
    gap.data.splice(4, 1);
    expect((await verifyChains(gap, signer)).broken).toMatchObject({ row_id: '6', reason: 'SEQUENCE_GAP' });

    const forged = await chainOf(10);
    const cp = signer.sign({ chain_partition: 1, chain_seq: 5, hash: forged.data[4]!.hash, row_timestamp: forged.data[4]!.timestamp, signed_at: new Date() });
    forged.checkpointList.push({ ...cp, chain_seq: 6 });
    expect((await verifyChains(forged, signer)).broken?.reason).toBe('CHECKPOINT_INVALID_SIGNATURE');
  });

  it('detects a deleted tail through the signed checkpoint, even with the head rewound', async () => {
    const store = await chainOf(20);
    const last = store.data[19]!;
    store.checkpointList.push(signer.sign({ chain_partition: 1, chain_seq: 20, hash: last.hash, row_timestamp: last.timestamp, signed_at: new Date() }));
    expect((await verifyChains(store, signer)).intact).toBe(true);
    store.data.splice(15);
    store.heads.set(1, { ...store.heads.get(1)!, seq: 15, hash: store.data[14]!.hash });
    expect((await verifyChains(store, signer)).broken).toMatchObject({ reason: 'CHECKPOINT_ROW_MISSING', chain_seq: 20, row_id: '15' });
  });

  it('accepts a chain pruned by retention at its recorded floor, not elsewhere', async () => {
    const store = await chainOf(20);
    store.data.splice(0, 10);
    expect((await verifyChains(store, signer)).broken?.reason).toBe('MISSING_PREDECESSOR');
    store.floors.set(1, { first_seq: 11, prev_hash: store.data[0]!.prev_hash });
    expect((await verifyChains(store, signer)).intact).toBe(true);
  });
});

describe('ingest classification', () => {
  it('routes contract violations and unstorable strings to the DLQ, keeps order of the valid ones', () => {
    const good1 = event();
    const good2 = event();
    const nul = event({ details: { x: 'a\u0000b' } });
    const msgs = [good1, 'garbage', nul, good2].map((v, i) => ({ offset: String(i), key: null, value: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)) }));
    const { valid, rejected } = classifyMessages(msgs);
    expect(valid.map((e) => e.id)).toEqual([good1.id, good2.id]);
    expect(rejected.map((r) => r.message.offset)).toEqual(['1', '2']);
    expect(rejected[0]!.reason).toContain('not valid JSON');
    expect(rejected[1]!.reason).toContain('NUL');
    expect(unstorableReason({ a: ['\ud800'] })).toContain('surrogate');
    expect(unstorableReason({ a: ['\ud83d\ude00'] })).toBeNull();
  });

  it('still finds what needs the walk when the bytes have no escape: nesting deeper than 64 levels', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 70; i++) deep = i % 2 ? { d: deep } : [deep];
    const shallow = event({ details: { list: [[1], [2], { a: [3] }] } });
    const msgs = [event({ details: { deep } as Record<string, unknown> }), shallow, event({ details: { s: 'lone \ud800 surrogate' } })].map((v, i) => ({ offset: String(i), key: null, value: Buffer.from(JSON.stringify(v)) }));
    expect(msgs[0]!.value.includes('\\u')).toBe(false);
    const { valid, rejected } = classifyMessages(msgs);
    expect(valid.map((e) => e.id)).toEqual([shallow.id]);
    expect(rejected.map((r) => r.reason)).toEqual([expect.stringContaining('deeper than 64'), expect.stringContaining('surrogate')]);
  });
});

describe('page tokens', () => {
  it('round-trip and refuse forgeries', () => {
    const c = { timestamp: new Date('2026-12-04T10:00:00.123Z'), id: '42' };
    expect(decodePageToken(encodePageToken(c))).toEqual(c);
    expect(() => decodePageToken('nope')).toThrow(/page_token/);
    expect(() => decodePageToken(Buffer.from('{"t":"x","id":"1; drop"}').toString('base64url'))).toThrow();
  });
});
