import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics, validateSecurityEvent } from '@soma/contracts';
import { ensureTopics, SecurityEventPublisher } from '@soma/events';
import { createLogger, initTracing, tracer } from '@soma/observability';
import { infra, KAFKA_BROKERS } from '../support/infra.js';
import { readFrom, topicEnds, TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';

const logLines: string[] = [];
const logger = createLogger({ service: 'auth', level: 'debug', destination: new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } }) });
const tmp = mkdtempSync(join(tmpdir(), 'soma-events-'));

function publisher(bufferPath: string): SecurityEventPublisher {
  return new SecurityEventPublisher({ service: 'auth', brokers: KAFKA_BROKERS, logger, bufferPath, capacity: 10_000 });
}

beforeAll(async () => {
  initTracing('auth');
  const admin = new Kafka({ clientId: 'soma-test-admin', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureTopics(admin);
  await admin.disconnect();
});

describe('security events: publisher → Kafka → consumer', () => {
  it('delivers a published event to security.events unchanged, keyed by tenant, with trace context', async () => {
    const tenant = `t-${randomUUID()}`;
    const collector = await new TopicCollector(Topics.SecurityEvents, (m) => m.key === tenant).start();
    const pub = publisher(join(tmp, 'one.sqlite'));
    pub.start();
    try {
      const span = tracer('test').startSpan('login');
      const sent = context.with(trace.setSpan(context.active(), span), () =>
        pub.publish({
          type: 'authentication_failed',
          tenant,
          action: 'login',
          resource: 'session',
          outcome: 'failure',
          reason: 'bad_password',
          actor: { user_id: 'user123', ip_address: '203.0.113.7', user_agent: 'vitest' },
          details: { email: 'alice@example.com', password: 'hunter2-hunter2' },
        }),
      );
      span.end();
      await waitFor(() => collector.messages.length >= 1, { what: 'the event on security.events' });
      const [received] = collector.messages;
      expect(received!.json).toEqual(sent);
      expect(validateSecurityEvent(received!.json).ok).toBe(true);
      expect(sent.trace_id).toBe(span.spanContext().traceId);
      expect(received!.headers['traceparent']?.toString()).toContain(span.spanContext().traceId);
      // Personal data and secrets in details are masked before the event leaves the service.
      expect(JSON.stringify(received!.json)).not.toContain('hunter2');
      expect(JSON.stringify(received!.json)).not.toContain('alice@example.com');
      expect(pub.bufferedCount).toBe(0);
    } finally {
      await pub.stop();
      await collector.stop();
    }
  });

  it('drains a buffer whose events together exceed the broker\'s record batch limit (sent in groups)', async () => {
    const tenant = `t-${randomUUID()}`;
    const collector = await new TopicCollector(Topics.SecurityEvents, (m) => m.key === tenant).start();
    const pub = publisher(join(tmp, 'large.sqlite'));
    try {
      // 500 events of ~4 KiB, buffered before the sender starts: one peeked batch of ~2 MiB (limit 1 MiB).
      for (let i = 0; i < 500; i++) pub.publish({ type: 'authentication_failed', tenant, action: 'login', outcome: 'failure', details: { i, note: 'n'.repeat(4000) } });
      pub.start();
      await waitFor(() => pub.bufferedCount === 0, { timeoutMs: 30_000, what: `buffer drained (${pub.bufferedCount} left)` });
      await waitFor(() => collector.messages.length >= 500, { what: 'all 500 on security.events' });
      expect(new Set(collector.messages.map((m) => (m.json as { id: string }).id)).size).toBe(500);
    } finally {
      await pub.stop();
      await collector.stop();
    }
  });

  it('refuses an event that breaks the contract instead of sending it', () => {
    const pub = publisher(join(tmp, 'invalid.sqlite'));
    try {
      expect(() => pub.publish({ type: 'authentication_failed', tenant: '', action: 'login', outcome: 'failure' })).toThrow(/contract/);
      expect(pub.bufferedCount).toBe(0);
    } finally {
      void pub.stop(0);
    }
  });
});

describe('security events survive a broker outage and a service restart', () => {
  const bufferPath = join(tmp, 'outage.sqlite');
  afterAll(async () => {
    await infra('up', 'kafka');
  });

  it('buffers 100 events while Kafka is down, keeps them across a restart, and delivers each exactly once', async () => {
    const tenant = `t-${randomUUID()}`;
    const start = await topicEnds(Topics.SecurityEvents);
    await infra('down', 'kafka');

    // First life of the service: Kafka is down, every publish lands in the durable buffer.
    const first = publisher(bufferPath);
    first.start();
    const ids = new Set<string>();
    for (let i = 0; i < 100; i++) {
      ids.add(first.publish({ type: 'token_issued', tenant, action: 'issue_token', outcome: 'success', details: { n: i } }).id);
    }
    expect(first.bufferedCount).toBe(100);
    await first.stop(500); // the service stops (or dies) with the events still on disk
    expect(logLines.some((l) => l.includes('kafka unreachable; buffering security events durably'))).toBe(true);

    // Second life: starts while Kafka is still down, then the broker comes back.
    const second = publisher(bufferPath);
    expect(second.bufferedCount).toBe(100);
    second.start();
    await infra('up', 'kafka');
    try {
      await waitFor(() => second.bufferedCount === 0, { timeoutMs: 60_000, what: 'the buffer to drain' });
      const all = (await readFrom(Topics.SecurityEvents, start, (m) => m.key === tenant)).map((m) => m.json!);
      const receivedIds = all.map((e) => e['id'] as string);
      expect(receivedIds).toHaveLength(100);
      expect(new Set(receivedIds)).toEqual(ids);
      // In order: the buffer is FIFO and all events share one key, hence one partition.
      expect(all.map((e) => (e['details'] as { n: number }).n)).toEqual([...Array(100).keys()]);
    } finally {
      await second.stop();
    }
  });
});
