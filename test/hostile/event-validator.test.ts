import fc from 'fast-check';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { decodeSecurityEvent, MAX_SECURITY_EVENT_BYTES, SecurityEventTypes, validateSecurityEvent, type SecurityEvent } from '@soma/contracts';

/**
 * Property-based fuzzing of the security-event validator (the gate in front of the audit log): whatever it is
 * given, it returns a result and never throws; what it accepts always satisfies the contract; every required
 * field removed or given a wrong type is refused. The same validator behind the running audit service is fuzzed
 * over Kafka in hostile.test.ts.
 */
const RUNS = Number(process.env['HOSTILE_FC_RUNS'] ?? 400);
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const REQUIRED = ['schema', 'id', 'type', 'occurred_at', 'service', 'tenant', 'actor', 'action', 'resource', 'outcome', 'reason', 'details', 'trace_id'] as const;

function valid(over: Partial<SecurityEvent> = {}): SecurityEvent {
  return {
    schema: 'soma.security.event/v1', id: uuidv7(), type: 'authentication_failed', occurred_at: new Date().toISOString(),
    service: 'auth', tenant: 'acme', actor: { user_id: 'alice', ip_address: '203.0.113.7', user_agent: 'curl/8' },
    action: 'login', resource: 'session', outcome: 'failure', reason: 'bad_password', details: {}, trace_id: null, ...over,
  };
}

/** The contract's invariants, checked independently of the validator. */
function satisfiesContract(e: SecurityEvent): boolean {
  return e.schema === 'soma.security.event/v1' && UUID_V7.test(e.id) && (SecurityEventTypes as readonly string[]).includes(e.type)
    && !Number.isNaN(Date.parse(e.occurred_at)) && typeof e.tenant === 'string' && e.tenant.length >= 1 && e.tenant.length <= 128
    && ['success', 'failure', 'denied', 'error'].includes(e.outcome) && typeof e.details === 'object' && e.details !== null && !Array.isArray(e.details)
    && (e.trace_id === null || /^[0-9a-f]{32}$/.test(e.trace_id));
}

const noThrow = <T>(f: () => T): T => {
  try {
    return f();
  } catch (e) {
    throw new Error(`validator threw: ${(e as Error).message}`);
  }
};

describe('event validator fuzzing (fast-check)', () => {
  it('never throws on arbitrary values and accepts only contract-conforming events', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withObjectString: true }), (v) => {
        const r = noThrow(() => validateSecurityEvent(v));
        if (r.ok) expect(satisfiesContract(r.event)).toBe(true);
        else expect(r.errors.length).toBeGreaterThan(0);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('never throws on arbitrary bytes, JSON text or oversized payloads', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.json().map((s) => Buffer.from(s)), fc.string({ unit: 'binary' }).map((s) => Buffer.from(s))), (bytes) => {
        const r = noThrow(() => decodeSecurityEvent(bytes));
        if (r.ok) expect(satisfiesContract(r.event)).toBe(true);
      }),
      { numRuns: RUNS * 2 },
    );
    const big = Buffer.from(JSON.stringify(valid({ details: { pad: 'x'.repeat(MAX_SECURITY_EVENT_BYTES) } })));
    expect(decodeSecurityEvent(big)).toEqual({ ok: false, errors: [`message larger than ${MAX_SECURITY_EVENT_BYTES} bytes`] });
    for (const nothing of [null, undefined, Buffer.alloc(0)]) expect(decodeSecurityEvent(nothing).ok).toBe(false);
  });

  it('refuses every event with a required field removed or replaced by a value of the wrong kind', () => {
    const wrongKind = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), fc.string({ maxLength: 40 }));
    fc.assert(
      fc.property(fc.constantFrom(...REQUIRED), fc.boolean(), wrongKind, (field, remove, replacement) => {
        const e = valid() as unknown as Record<string, unknown>;
        if (remove) delete e[field];
        else e[field] = replacement;
        const r = noThrow(() => validateSecurityEvent(e));
        if (r.ok) {
          // Only a replacement that happens to be valid for the field may pass, and then the contract holds.
          expect(remove).toBe(false);
          expect(satisfiesContract(r.event)).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
    for (const field of REQUIRED) {
      const e = valid() as unknown as Record<string, unknown>;
      delete e[field];
      expect(validateSecurityEvent(e).ok, field).toBe(false);
    }
  });

  it('refuses unknown extra fields, unknown types, impossible instants and bad ids, trace ids and addresses', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !(REQUIRED as readonly string[]).includes(k)), fc.jsonValue(), (key, value) => {
        const r = validateSecurityEvent({ ...valid(), [key]: value });
        expect(r.ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
    const bad: Array<Partial<SecurityEvent> | Record<string, unknown>> = [
      { type: 'not_a_known_type' as never }, { type: 'DROP TABLE audit_log;' as never }, { occurred_at: '2026-02-30T25:61:61.000Z' },
      { occurred_at: '2026-12-04T10:00:00Z' }, { id: '00000000-0000-4000-8000-000000000000' }, { id: "'; DROP TABLE audit_log; --" },
      { trace_id: 'A'.repeat(32) }, { trace_id: '0'.repeat(31) }, { tenant: '' }, { tenant: 't'.repeat(129) }, { action: '' },
      { outcome: 'maybe' as never }, { details: [] as never }, { details: null as never }, { service: 'Auth Service' },
      { actor: { user_id: null, ip_address: '999.1.1.1', user_agent: null } }, { actor: { user_id: null, ip_address: '$(id)', user_agent: null } },
      { actor: { user_id: 'u'.repeat(257), ip_address: null, user_agent: null } }, { actor: { user_id: null, ip_address: null } as never },
      { schema: 'soma.security.event/v2' as never },
    ];
    for (const over of bad) expect(validateSecurityEvent({ ...valid(), ...over }).ok, JSON.stringify(over).slice(0, 80)).toBe(false);
  });

  it('accepts valid events whatever the free-text fields hold (stored literally, not interpreted)', () => {
    const text = (max: number) => fc.string({ unit: 'grapheme', minLength: 1, maxLength: max }).filter((s) => s.length <= max);
    fc.assert(
      fc.property(text(128), text(128), fc.string({ maxLength: 200 }), fc.option(fc.string({ maxLength: 200 }), { nil: null }), fc.constantFrom(...SecurityEventTypes), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 5 }), (tenant, action, resource, reason, type, details) => {
        const e = valid({ tenant, action, resource, reason, type, details: details as Record<string, unknown> });
        const r = validateSecurityEvent(e);
        expect(r).toEqual({ ok: true, event: e });
      }),
      { numRuns: RUNS },
    );
  });
});
