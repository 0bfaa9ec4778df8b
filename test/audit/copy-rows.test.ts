import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendToChain } from '../../apps/audit/src/domain/audit-ingest.js';
import { rowHash } from '../../apps/audit/src/domain/audit-record.js';
import { deriveKek } from '../../apps/audit/src/domain/subject-crypto.js';
import { verifyChains } from '../../apps/audit/src/domain/verify-chain.js';
import { PgAuditStore } from '../../apps/audit/src/infra/pg-audit-store.js';
import { siemRecordJson } from '../../apps/audit/src/infra/siem-record.js';
import { event, TestDatabase } from './audit-harness.js';

/*
 * Rows reach audit_log through COPY's text format (apps/audit/src/infra/copy-text.ts). Whatever a producer may put
 * in a string — backslashes, tabs, newlines, carriage returns, the literal text \N, JSON escapes, astral characters —
 * must be stored exactly as hashed: read back equal, and the chain (recomputed from the stored rows) intact.
 */
const db = new TestDatabase();
const kek = deriveKek(randomBytes(32).toString('base64url'));
const nasty = ['back\\slash', 'tab\there', 'new\nline', 'carriage\rreturn', '\\N', '\\\\N', 'quote " and \\"', 'é 漢字 😀 \u2028', '\u0001\u001f\u007f', 'end\\'];

beforeAll(async () => {
  await db.create();
});

afterAll(async () => {
  await db.drop();
});

describe('audit rows through COPY (real PostgreSQL)', () => {
  it('stores every awkward string exactly as hashed; the chain verifies from the stored rows', async () => {
    const store = new PgAuditStore(db.pool);
    const events = nasty.map((s, i) =>
      event('copy-tenant', {
        action: s.slice(0, 128) || 'a',
        resource: s,
        reason: i % 2 ? s : null,
        actor: { user_id: i % 3 ? `user ${s}` : null, ip_address: i % 2 ? '2001:db8::7' : '203.0.113.9', user_agent: s },
        details: { text: s, nested: { list: [s, i, null, true] }, [s || 'k']: s, numbers: [1.5, 1e21, 2 ** 53, 0.1 + 0.2, -7] },
      }),
    );
    const r = await appendToChain(store, kek, 7, events);
    expect(r.inserted).toBe(nasty.length);
    const stored = await store.rows(7, {}, 0, 100);
    expect(stored).toHaveLength(nasty.length);
    for (const [i, row] of stored.entries()) {
      expect(row.resource).toBe(nasty[i]);
      expect(row.details).toEqual(events[i]!.details);
      expect(rowHash(row).equals(row.hash)).toBe(true);
    }
    const verify = await verifyChains(store, { verify: () => true });
    expect(verify).toMatchObject({ intact: true, rows_checked: nasty.length });
    // The SIEM stream publishes the rows ingest returned without reading them back (ADR 0404): they are the
    // stored rows, ids included, and give byte-identical records (jsonb's own key order notwithstanding).
    expect(r.rows.map((x) => x.id)).toEqual(stored.map((x) => x.id));
    expect(r.rows.map(siemRecordJson)).toEqual(stored.map(siemRecordJson));
  });
});
