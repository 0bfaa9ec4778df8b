import { describe, expect, it } from 'vitest';
import { AuthEvents } from './auth-events.js';
import { AuthError, AuthErrorCode } from './auth.errors.js';
import type { SecurityEventInput } from '@soma/contracts';

class FullBuffer extends Error {
  override name = 'EventBufferFullError';
}

function setup() {
  let now = 1_000_000;
  let full = false;
  const published: SecurityEventInput[] = [];
  const sink = {
    publish(e: SecurityEventInput) {
      if (full) throw new FullBuffer('full');
      published.push(e);
    },
  };
  const events = new AuthEvents(sink, { now: () => now }, 60_000);
  return { events, published, tick: (ms: number) => (now += ms), setFull: (v: boolean) => (full = v) };
}

describe('AuthEvents', () => {
  it('samples successes once per credential per window', () => {
    const { events, published, tick } = setup();
    const p = { tenant: 'acme', sub: 'alice', method: 'jwt', credential_id: 'j1' };
    events.succeeded(p);
    events.succeeded(p);
    expect(published).toHaveLength(1);
    tick(60_000);
    events.succeeded(p);
    expect(published).toHaveLength(2);
    expect(published[0]!.details).toMatchObject({ sampled: true, window_seconds: 60 });
  });

  it('folds identical failures within a second into the next event', () => {
    const { events, published, tick } = setup();
    for (let i = 0; i < 5; i++) events.failed('invalid_token', { method: 'jwt' }, { ip_address: '10.0.0.1' });
    expect(published).toHaveLength(1);
    tick(1000);
    events.failed('invalid_token', { method: 'jwt' }, { ip_address: '10.0.0.1' });
    expect(published[1]!.details).toMatchObject({ suppressed_before: 4 });
  });

  it('a full event buffer refuses the action (UNAVAILABLE) and opens no unaudited window', () => {
    const { events, published, setFull } = setup();
    const p = { tenant: 'acme', sub: 'alice', method: 'jwt', credential_id: 'j2' };
    setFull(true);
    expect(() => events.succeeded(p)).toThrowError(AuthError);
    let refused: unknown;
    try {
      events.emit('token_issued', { action: 'issue_token', outcome: 'success' });
    } catch (e) {
      refused = e;
    }
    expect((refused as AuthError).code).toBe(AuthErrorCode.Unavailable);
    setFull(false);
    events.succeeded(p);
    expect(published).toHaveLength(1);
  });

  it('records a caller address only when it is an IP (IPv4-mapped IPv6 unwrapped)', () => {
    const { events, published } = setup();
    events.emit('token_issued', { action: 'a', outcome: 'success', ctx: { ip_address: '::ffff:192.0.2.1' } });
    events.emit('token_issued', { action: 'a', outcome: 'success', ctx: { ip_address: 'nonsense' } });
    expect(published.map((e) => e.actor?.ip_address)).toEqual(['192.0.2.1', null]);
  });
});
