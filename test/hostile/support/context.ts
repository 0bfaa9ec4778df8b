/**
 * What every hostile suite shares: the running stack (test/e2e/support/stack.ts), a capture of the Kafka topics
 * security.events and security.audit for the whole run, every secret/credential the run used (to grep for), and
 * every error message the services returned.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { Topics } from '@soma/contracts';
import { holdFaultLock, KAFKA_BROKERS } from '../../support/infra.js';
import type { Stack } from '../../e2e/support/stack.js';

export interface KafkaCapture {
  /** Values of every message seen on the captured topics since start, as text. */
  readonly messages: Array<{ topic: string; value: string }>;
  stop(): Promise<void>;
}

/** Capture every message of the topics from their current end on (offsets set before joining: nothing missed). */
export async function captureTopics(topics: string[], cap = 500_000): Promise<KafkaCapture> {
  const kafka = new Kafka({ clientId: 'soma-hostile-capture', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const groupId = `soma-hostile-capture-${randomBytes(6).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.setOffsets({ groupId, topic, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
    }
  } finally {
    await admin.disconnect();
  }
  const consumer: Consumer = kafka.consumer({ groupId, sessionTimeout: 6000 });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: false });
  const messages: KafkaCapture['messages'] = [];
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      if (messages.length < cap) messages.push({ topic, value: message.value?.toString('utf8') ?? '' });
    },
  });
  return {
    messages,
    async stop() {
      await consumer.disconnect().catch(() => undefined);
      const a = kafka.admin();
      await a.connect().then(() => a.deleteGroups([groupId])).catch(() => undefined).finally(() => a.disconnect().catch(() => undefined));
    },
  };
}

export interface HostileContext {
  stack: Stack;
  kafka: KafkaCapture;
  /** Tenant the suites write under. */
  tenant: string;
  /**
   * A token for `tenant` with every scope the services know (secrets:admin, gdpr:*, consent:*, retention:admin,
   * auth:admin): hostile input reaches the handlers instead of stopping at authorization.
   */
  power: string;
  /** The credential that lets a call on `service` through: the operator token for auth, a platform token for secrets, else `power`. */
  credentialFor(service: string): string;
  /** Remember a value that must never appear in any log, event, row or error message. */
  secret(label: string, value: string): string;
  /** Remember an error text a service returned (HTTP body, gRPC details). */
  error(text: string): void;
  readonly secrets: ReadonlyMap<string, string>;
  readonly errors: readonly string[];
}

export const ALL_SCOPES = ['auth:admin', 'secrets:admin', 'gdpr:export', 'gdpr:erase', 'consent:read', 'consent:write', 'retention:admin', 'audit:read'];

export async function newContext(stack: Stack, kafka: KafkaCapture): Promise<HostileContext> {
  const secrets = new Map<string, string>();
  const errors: string[] = [];
  const tenant = `hostile-${stack.runId}`;
  const issued = await stack.grpc('auth').call<{ token: string }>('IssueToken', { tenant, sub: 'hostile-operator', scopes: ALL_SCOPES, ttl_seconds: 3600 }, { bearer: stack.adminToken() });
  secrets.set('power token', issued.token);
  // The secrets service serves platform callers (tenant `*`) only.
  const platform = await stack.grpc('auth').call<{ token: string }>('IssueToken', { tenant: '*', sub: 'hostile-platform', scopes: ALL_SCOPES, ttl_seconds: 3600 }, { bearer: stack.adminToken() });
  secrets.set('platform token', platform.token);
  return {
    stack,
    kafka,
    tenant,
    power: issued.token,
    credentialFor: (service) => (service === 'auth' ? stack.adminToken() : service === 'secrets' ? platform.token : issued.token),
    secrets,
    errors,
    secret(label, value) {
      secrets.set(label, value);
      return value;
    },
    error(text) {
      if (errors.length < 200_000) errors.push(text);
    },
  };
}

/**
 * Dependency timeouts for the stacks of the hostile and soak runs. These runs judge answers, not latency, and share
 * small machines with other suites: a Redis/OPA/auth round trip slowed past the production bounds must not turn
 * into an UNAVAILABLE the input did not deserve. (Each bound is still finite: a dead dependency still fails closed.)
 */
export const PATIENT_ENV = {
  auth: { AUTH_REDIS_TIMEOUT_MS: '5000' },
  authz: { OPA_TIMEOUT_MS: '5000' },
  secrets: { SECRETS_ACCESS_CHECK_TIMEOUT_MS: '10000' },
  retention: { AUTH_DEADLINE_MS: '10000' },
};

export const CAPTURED_TOPICS = [Topics.SecurityEvents, Topics.SecurityAudit, Topics.SecurityEventsDlq];

/** gRPC codes that mean the server failed rather than refused the input. */
export const SERVER_FAILURE_CODES = new Set([2 /* UNKNOWN */, 13 /* INTERNAL */, 15 /* DATA_LOSS */]);

/**
 * Hold /tmp/soma-infra-fault.lock shared while the run needs the infrastructure up: fault tests take it exclusively
 * to stop a server, so they wait for this run instead of failing it (and this run waits for a fault in progress).
 * Returns the release function (kills the `flock` child this started).
 */
export async function holdInfraShared(timeoutSeconds = 900): Promise<() => void> {
  const lock = await holdFaultLock({ shared: true, timeoutMs: timeoutSeconds * 1000 });
  return () => void lock.release();
}
