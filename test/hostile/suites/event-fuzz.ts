import fc from 'fast-check';
import { Kafka, logLevel } from 'kafkajs';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { decodeSecurityEvent, Topics, type SecurityEvent } from '@soma/contracts';
import { KAFKA_BROKERS } from '../../support/infra.js';
import { waitFor } from '../../support/wait.js';
import type { HostileContext } from '../support/context.js';

const RUNS = Number(process.env['HOSTILE_FC_RUNS'] ?? 25) * 8;

/**
 * The event validator behind the running audit service, fuzzed over Kafka: fast-check messages (random bytes, random
 * JSON, valid events with one field mutated) go to security.events beside valid events. The audit process stays up,
 * every valid event is in audit_log exactly once, no invalid one is, and the invalid ones go to the DLQ.
 */
export function eventFuzzSuite(ctx: () => HostileContext): void {
  describe('security-event fuzzing through Kafka and the running audit service', () => {
    it('stores every valid event once, no invalid one, and dead-letters the rest', async () => {
      const { stack, tenant, kafka } = ctx();
      const base = (): SecurityEvent => ({
        schema: 'soma.security.event/v1', id: uuidv7(), type: 'authentication_failed', occurred_at: new Date().toISOString(), service: 'auth', tenant,
        actor: { user_id: 'fuzz', ip_address: '203.0.113.9', user_agent: 'fuzz' }, action: 'login', resource: 'session', outcome: 'failure', reason: 'bad_password', details: {}, trace_id: null,
      });
      const mutated = fc.tuple(fc.constantFrom('id', 'type', 'occurred_at', 'service', 'tenant', 'actor', 'action', 'outcome', 'details', 'trace_id', 'extra'), fc.jsonValue({ maxDepth: 2 })).map(([field, value]) => {
        const e = base() as unknown as Record<string, unknown>;
        if (field !== 'id') e[field] = value;
        else e['id'] = typeof value === 'string' ? value : `not-a-uuid-${JSON.stringify(value)}`;
        return Buffer.from(JSON.stringify(e));
      });
      const messages = fc.sample(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), mutated), { numRuns: RUNS });
      const valid = Array.from({ length: 50 }, () => base());
      const invalid = messages.filter((m) => !decodeSecurityEvent(m).ok);
      const dlqBefore = kafka.messages.filter((m) => m.topic === Topics.SecurityEventsDlq).length;

      const producer = new Kafka({ clientId: 'soma-hostile-fuzz', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).producer();
      await producer.connect();
      try {
        const all = [...invalid.map((value) => ({ key: tenant, value })), ...valid.map((e) => ({ key: tenant, value: JSON.stringify(e) }))];
        for (let i = all.length - 1; i > 0; i--) {
          const j = (i * 7919) % (i + 1);
          [all[i], all[j]] = [all[j]!, all[i]!];
        }
        await producer.send({ topic: Topics.SecurityEvents, acks: -1, messages: all });
      } finally {
        await producer.disconnect();
      }

      const ids = valid.map((e) => e.id);
      const rows = await stack.waitForAuditRows({ eventIds: ids }, ids.length, 120_000);
      expect(new Set(rows.map((r) => r.event_id)).size).toBe(ids.length);
      expect(rows.length).toBe(ids.length);
      // Nothing else of this tenant's fuzz reached the log: only the valid ones carry actor "fuzz" / action "login" here.
      const tenantRows = await stack.auditRows({ tenant, action: 'login' });
      expect(tenantRows.map((r) => r.event_id).sort()).toEqual([...ids].sort());
      await waitFor(() => kafka.messages.filter((m) => m.topic === Topics.SecurityEventsDlq).length - dlqBefore >= invalid.length, { timeoutMs: 60_000, what: `${invalid.length} DLQ messages` });
      expect(stack.get('audit').alive()).toBe(true);
      console.log(`[hostile] event fuzz: ${invalid.length} invalid messages dead-lettered, ${valid.length} valid events stored once`);
    }, 240_000);
  });
}
