import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { validateSecurityEvent, SecurityEventTypes, type SecurityEventInput } from '@soma/contracts';
import { createLogger } from '@soma/observability';
import { buildSecurityEvent } from './build-security-event.js';
import { InvalidSecurityEventError, SecurityEventPublisher } from './security-event-publisher.js';

const logger = createLogger({ service: 'spec', level: 'silent' });
const publisher = (service = 'authz') => new SecurityEventPublisher({ service, brokers: ['127.0.0.1:1'], logger, bufferPath: ':memory:' });

function outcome(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return e instanceof InvalidSecurityEventError ? `invalid: ${e.errors.join('; ')}` : `other: ${(e as Error).message}`;
  }
}
/** What the full contract validator says about the event the publisher builds from `input`. */
function full(service: string, input: SecurityEventInput): string {
  const r = validateSecurityEvent(buildSecurityEvent(service, input));
  return r.ok ? 'ok' : `invalid: ${r.errors.join('; ')}`;
}

const text = (max: number) => fc.oneof(fc.string({ maxLength: 4 }), fc.string({ minLength: max - 2, maxLength: max + 2 }), fc.constant(''));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, fc.constant(null), fc.constant(undefined));
const inputs = fc.record(
  {
    type: fc.oneof(fc.constantFrom(...SecurityEventTypes), fc.constantFrom('nope', 'Authorization_denied', '')),
    tenant: text(128),
    action: text(128),
    resource: maybe(text(512)),
    outcome: fc.constantFrom('success', 'failure', 'denied', 'error', 'maybe'),
    reason: maybe(text(256)),
    actor: fc.record({
      user_id: maybe(text(256)),
      ip_address: maybe(fc.constantFrom('10.0.0.1', '::1', '2001:db8::7', 'fe80::1%eth0', '010.0.0.1', '256.0.0.1', 'host', '', '1.2.3.4 ')),
      user_agent: maybe(text(1024)),
    }, { requiredKeys: [] }),
    details: fc.oneof(fc.constant(undefined), fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()))),
    trace_id: fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant('0af7651916cd43dd8448eb211c80319c'), fc.constant('0AF7651916CD43DD8448EB211C80319C'), fc.string({ maxLength: 33 })),
    occurred_at: fc.oneof(fc.constant(undefined), fc.date({ min: new Date(-1e14), max: new Date(3e14), noInvalidDate: true })),
  },
  { requiredKeys: ['type', 'tenant', 'action', 'outcome'] },
) as fc.Arbitrary<SecurityEventInput>;

describe('SecurityEventPublisher.publish: contract checks of the events it builds', () => {
  it('accepts and refuses exactly what the full contract validator accepts and refuses', { timeout: 60_000 }, () => {
    for (const service of ['authz', 'Bad_Service']) {
      const p = publisher(service);
      fc.assert(
        fc.property(inputs, (input) => {
          expect(outcome(() => p.publish(input))).toBe(full(service, input));
        }),
        { numRuns: 1500 },
      );
      void p.stop(0);
    }
  });

  it('a ready-made event is always fully validated', async () => {
    const p = publisher();
    const event = buildSecurityEvent('authz', { type: 'authorization_denied', tenant: 't', action: 'a', outcome: 'denied' });
    expect(outcome(() => p.publish({ ...event, id: 'not-a-uuid' }))).toMatch(/^invalid: \/id/);
    expect(outcome(() => p.publish(event))).toBe('ok');
    expect(p.bufferedCount).toBe(1);
    await p.stop(0);
  });
});
