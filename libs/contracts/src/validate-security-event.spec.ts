import { describe, expect, it } from 'vitest';
import { decodeSecurityEvent, MAX_SECURITY_EVENT_BYTES, validateSecurityEvent } from './validate-security-event.js';

const good = () => ({
  schema: 'soma.security.event/v1',
  id: '0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b',
  type: 'authentication_failed',
  occurred_at: '2026-12-04T10:00:00.123Z',
  service: 'auth',
  tenant: 'acme',
  actor: { user_id: 'user123', ip_address: '203.0.113.7', user_agent: 'curl/8.0' },
  action: 'login',
  resource: 'session',
  outcome: 'failure',
  reason: 'bad_password',
  details: { attempts: 3 },
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
});

describe('security event validator', () => {
  it('accepts a conforming event', () => {
    expect(validateSecurityEvent(good())).toEqual({ ok: true, event: good() });
  });
  it('accepts null actor fields, IPv6 and a null trace id', () => {
    const e = { ...good(), actor: { user_id: null, ip_address: '2001:db8::1', user_agent: null }, trace_id: null, reason: null };
    expect(validateSecurityEvent(e).ok).toBe(true);
  });

  it.each<[string, (e: Record<string, unknown>) => void]>([
    ['wrong schema', (e) => (e['schema'] = 'soma.security.event/v2')],
    ['non-v7 id', (e) => (e['id'] = '0193a5b2-7c4d-4e8f-9a0b-1c2d3e4f5a6b')],
    ['camelCase type', (e) => (e['type'] = 'authFailed')],
    ['unknown type', (e) => (e['type'] = 'made_up_event')],
    ['timestamp without milliseconds', (e) => (e['occurred_at'] = '2026-12-04T10:00:00Z')],
    ['timestamp with offset', (e) => (e['occurred_at'] = '2026-12-04T10:00:00.000+01:00')],
    ['impossible date', (e) => (e['occurred_at'] = '2026-13-45T10:00:00.000Z')],
    ['bad outcome', (e) => (e['outcome'] = 'maybe')],
    ['invalid ip', (e) => (e['actor'] = { user_id: null, ip_address: '999.1.1.1', user_agent: null })],
    ['missing tenant', (e) => delete e['tenant']],
    ['empty tenant', (e) => (e['tenant'] = '')],
    ['extra field', (e) => (e['password'] = 'x')],
    ['details not an object', (e) => (e['details'] = 'x')],
    ['uppercase trace id', (e) => (e['trace_id'] = '4BF92F3577B34DA6A3CE929D0E0E4736')],
    ['missing actor field', (e) => (e['actor'] = { user_id: 'u' })],
  ])('rejects %s', (_label, mutate) => {
    const e = good() as unknown as Record<string, unknown>;
    mutate(e);
    const result = validateSecurityEvent(e);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.length).toBeGreaterThan(0);
  });

  it.each([null, undefined, 42, 'str', [], true])('rejects non-objects (%s)', (v) => {
    expect(validateSecurityEvent(v).ok).toBe(false);
  });

  it('decodes bytes, rejecting garbage, empty and oversized messages', () => {
    expect(decodeSecurityEvent(Buffer.from(JSON.stringify(good()))).ok).toBe(true);
    expect(decodeSecurityEvent(Buffer.from('{not json'))).toEqual({ ok: false, errors: ['not valid JSON'] });
    expect(decodeSecurityEvent(null)).toEqual({ ok: false, errors: ['empty message'] });
    expect(decodeSecurityEvent(Buffer.alloc(MAX_SECURITY_EVENT_BYTES + 1, 0x20)).ok).toBe(false);
  });
});
