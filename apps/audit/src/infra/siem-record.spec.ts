import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SECURITY_EVENT_SCHEMA } from '@soma/contracts';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { SIEM_RECORD_SCHEMA, siemRecordJson } from './siem-record.js';

/** The record in its plain object form (docs/events.md): what the direct writer must equal once parsed. */
function reference(row: StoredAuditRow) {
  return {
    schema: SIEM_RECORD_SCHEMA,
    event: {
      schema: SECURITY_EVENT_SCHEMA,
      id: row.event_id,
      type: row.event_type,
      occurred_at: row.occurred_at.toISOString(),
      service: row.service,
      tenant: row.tenant,
      actor: { user_id: row.user_id, ip_address: row.ip_address ? row.ip_address.split('/', 1)[0] : null, user_agent: null },
      action: row.action,
      resource: row.resource,
      outcome: row.outcome,
      reason: row.reason,
      details: row.details,
      trace_id: row.trace_id,
    },
    audit: {
      id: row.id,
      recorded_at: row.timestamp.toISOString(),
      chain_partition: row.chain_partition,
      chain_seq: row.chain_seq,
      prev_hash: row.prev_hash.toString('hex'),
      hash: row.hash.toString('hex'),
      ip_prefix_length: row.ip_address ? Number(row.ip_address.split('/')[1]) : null,
      user_pseudonymous: row.user_id !== null,
    },
  };
}

const text = fc.string({ unit: 'grapheme', maxLength: 20 });
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), text, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(text, tie('value'), { maxKeys: 4 })),
})).value;
const date = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true });
const row: fc.Arbitrary<StoredAuditRow> = fc.record({
  id: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
  timestamp: date,
  occurred_at: date,
  event_id: fc.uuid(),
  event_type: text,
  tenant: text,
  service: text,
  user_id: fc.option(text),
  ip_address: fc.option(fc.constantFrom('198.51.100.0/24', '2001:db8:0:0:0:0:0:0/48', '10.0.0.0/24')),
  pii: fc.constant(null),
  action: text,
  resource: text,
  outcome: fc.constantFrom('success', 'failure', 'denied', 'error' as const),
  reason: fc.option(text),
  details: fc.dictionary(text, json, { maxKeys: 5 }),
  trace_id: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'))),
  chain_partition: fc.nat(1000),
  chain_seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  prev_hash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
  hash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
});

describe('siemRecordJson', () => {
  it('is the documented record, for any row', () => {
    fc.assert(
      fc.property(row, (r) => {
        expect(JSON.parse(siemRecordJson(r))).toEqual(JSON.parse(JSON.stringify(reference(r))));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes details in RFC 8785 order, so the same row gives the same bytes whatever order its keys came in', () => {
    fc.assert(
      fc.property(row, (r) => {
        const reversed = Object.fromEntries(Object.entries(r.details).reverse());
        expect(siemRecordJson({ ...r, details: reversed })).toBe(siemRecordJson(r));
      }),
      { numRuns: 500 },
    );
    const r = fc.sample(row, 1)[0]!;
    expect(siemRecordJson({ ...r, details: { b: 1, a: [2, { d: 1, c: 'x' }] } })).toContain('"details":{"a":[2,{"c":"x","d":1}],"b":1}');
  });
});
