import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type Producer, type LogEntry } from 'kafkajs';
import { join } from 'node:path';
import { SecurityEventTypes, Topics, validateSecurityEvent, type SecurityEvent } from '@soma/contracts';
import { Counter, Gauge, injectTraceContext, type Logger, type Registry } from '@soma/observability';
import { buildSecurityEvent, type SecurityEventInput } from './build-security-event.js';
import { DurableEventBuffer } from './durable-event-buffer.js';
import { splitByBytes } from './kafka-batches.js';
import { fullFormats } from 'ajv-formats/dist/formats.js';

export interface SecurityEventPublisherOptions {
  service: string;
  brokers: string[];
  /** TLS to the brokers (kafkaSslOf of @soma/config); plain text when absent. */
  ssl?: ConnectionOptions;
  logger: Logger;
  /** Buffer file; defaults to `<bufferDir>/<service>.sqlite`. */
  bufferPath?: string;
  bufferDir?: string;
  capacity?: number;
  sync?: 'normal' | 'full';
  metrics?: Registry;
  batchSize?: number;
}

const KNOWN_TYPES = new Set<string>(SecurityEventTypes);
const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const OUTCOMES = new Set(['success', 'failure', 'denied', 'error']);
// The very expressions the contract's validator uses for `format: ipv4 / ipv6` (ajv-formats, full mode).
const IPV4 = fullFormats.ipv4 as RegExp;
const IPV6 = fullFormats.ipv6 as RegExp;
const optionalString = (v: unknown, max: number) => v === null || (typeof v === 'string' && v.length <= max);
const string = (v: unknown, min: number, max: number) => typeof v === 'string' && v.length >= min && v.length <= max;

/**
 * The contract checks an event built here by buildSecurityEvent still needs: the fields the caller
 * supplied. The rest (schema, UUIDv7 id, the time of now, the key set) is correct by construction.
 * A sufficient condition only (UTF-16 length ≥ the schema's code-point length): when it does not hold,
 * the full validator decides, so refusals and their messages are unchanged.
 */
function builtEventConforms(event: SecurityEvent, input: SecurityEventInput, serviceOk: boolean): boolean {
  return (
    serviceOk &&
    input.occurred_at === undefined &&
    typeof event.type === 'string' && KNOWN_TYPES.has(event.type) &&
    string(event.tenant, 1, 128) &&
    string(event.action, 1, 128) &&
    typeof event.resource === 'string' && event.resource.length <= 512 &&
    OUTCOMES.has(event.outcome as string) &&
    optionalString(event.reason, 256) &&
    optionalString(event.actor.user_id, 256) &&
    (event.actor.ip_address === null || (typeof event.actor.ip_address === 'string' && (IPV4.test(event.actor.ip_address) || IPV6.test(event.actor.ip_address)))) &&
    optionalString(event.actor.user_agent, 1024) &&
    event.details !== null && typeof event.details === 'object' && !Array.isArray(event.details) &&
    (event.trace_id === null || (typeof event.trace_id === 'string' && TRACE_ID.test(event.trace_id)))
  );
}

export class InvalidSecurityEventError extends Error {
  constructor(readonly errors: string[]) {
    super(`security event does not match the contract: ${errors.join('; ')}`);
    this.name = 'InvalidSecurityEventError';
  }
}

/**
 * The one way a service emits security events. `publish` validates the event and writes it to a
 * durable local buffer (returning as soon as it is safe on disk); a background loop sends the
 * buffer to `security.events` in order with an idempotent, acks=all producer and deletes what Kafka
 * acknowledged. While Kafka is unreachable the buffer grows, survives restarts, and drains when the
 * broker is back. When it reaches its bound, `publish` throws: callers fail closed instead of acting
 * unaudited, and readiness says so.
 */
export class SecurityEventPublisher {
  private readonly buffer: DurableEventBuffer;
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private running = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private kafkaUp = false;
  private outageLogged = false;
  private readonly batchSize: number;
  private readonly serviceNameOk: boolean;
  private readonly depthGauge?: Gauge;
  private readonly fullGauge?: Gauge;
  private readonly connectedGauge?: Gauge;
  private readonly sentCounter?: Counter;
  private readonly failureCounter?: Counter;

  constructor(private readonly options: SecurityEventPublisherOptions) {
    const path = options.bufferPath ?? join(options.bufferDir ?? '.local/buffer', `${options.service}.sqlite`);
    try {
      this.buffer = new DurableEventBuffer(path, options.capacity ?? 1_000_000, options.sync ?? 'normal');
    } catch (e) {
      throw new Error(`cannot open the event buffer ${path} (${(e as Error).message}); each instance needs its own EVENT_BUFFER_PATH`);
    }
    this.batchSize = options.batchSize ?? 500;
    this.serviceNameOk = SERVICE_NAME.test(options.service);
    const kafkaLogger = options.logger.child({ component: 'kafkajs' });
    this.kafka = new Kafka({
      clientId: `soma-${options.service}`,
      brokers: options.brokers,
      ...(options.ssl ? { ssl: options.ssl } : {}),
      connectionTimeout: 3000,
      requestTimeout: 10000,
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2000 },
      logLevel: logLevel.WARN,
      logCreator: () => ({ level, log }: LogEntry) => {
        // During an outage kafkajs repeats itself; the publisher reports outages once, itself.
        if (level <= logLevel.ERROR && this.kafkaUp) kafkaLogger.warn({ kafka: log.message }, 'kafka client error');
      },
    });
    if (options.metrics) {
      const registers = [options.metrics];
      this.depthGauge = new Gauge({ name: 'soma_event_buffer_depth', help: 'Security events waiting in the durable buffer for Kafka', registers });
      this.fullGauge = new Gauge({ name: 'soma_event_buffer_full', help: '1 when the event buffer reached its bound and new events are refused', registers });
      this.connectedGauge = new Gauge({ name: 'soma_event_kafka_connected', help: '1 while the last send to Kafka succeeded', registers });
      this.sentCounter = new Counter({ name: 'soma_events_published_total', help: 'Security events acknowledged by Kafka', registers });
      this.failureCounter = new Counter({ name: 'soma_events_publish_failures_total', help: 'Failed attempts to send buffered events to Kafka', registers });
      this.depthGauge.set(this.buffer.depth);
    }
  }

  get bufferedCount(): number {
    return this.buffer.depth;
  }

  get kafkaConnected(): boolean {
    return this.kafkaUp;
  }

  /** Start draining the buffer (events left by a previous run go first). Never blocks on Kafka. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.drainLoop();
  }

  /** Build, validate and durably buffer an event. Throws EventBufferFullError when at the bound. */
  publish(input: SecurityEventInput | SecurityEvent): SecurityEvent {
    const built = !('schema' in input);
    const event = built ? buildSecurityEvent(this.options.service, input) : input;
    if (!built || !builtEventConforms(event, input, this.serviceNameOk)) {
      const result = validateSecurityEvent(event);
      if (!result.ok) throw new InvalidSecurityEventError(result.errors);
    }
    const headers = injectTraceContext({ 'content-type': 'application/json', 'soma-event-type': event.type });
    try {
      this.buffer.append({ id: event.id, key: event.tenant, value: Buffer.from(JSON.stringify(event)), headers });
    } catch (e) {
      this.fullGauge?.set(1);
      this.options.logger.error({ depth: this.buffer.depth, capacity: this.buffer.capacity }, 'SECURITY EVENT BUFFER FULL: refusing new security events until Kafka drains it');
      throw e;
    }
    this.depthGauge?.set(this.buffer.depth);
    this.wake?.();
    return event;
  }

  /** For /readyz: null when events can be accepted, a reason otherwise. */
  readiness(): string | null {
    if (this.buffer.isFull) return `event buffer full (${this.buffer.depth} events waiting for Kafka)`;
    return null;
  }

  /** Wait until the buffer is empty or the timeout passes; resolves to the events still buffered. */
  async flush(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.depth > 0 && Date.now() < deadline) {
      this.wake?.();
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.buffer.depth;
  }

  /** Stop: try to drain for a bounded time, then close. Whatever is left stays on disk for next start. */
  async stop(timeoutMs = 3000): Promise<void> {
    if (this.running) await this.flush(timeoutMs);
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
    this.buffer.close();
  }

  private async drainLoop(): Promise<void> {
    let backoffMs = 200;
    while (this.running) {
      if (this.buffer.depth === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        this.wake = undefined;
        continue;
      }
      const batch = this.buffer.peek(this.batchSize);
      try {
        const producer = await this.connectedProducer();
        // In groups under the broker's record batch limit (a refusal for size is not retriable: the buffer would
        // never drain); each group is forgotten as soon as Kafka has it.
        for (const group of splitByBytes(batch)) {
          await producer.send({ topic: Topics.SecurityEvents, acks: -1, messages: group.map(({ key, value, headers }) => ({ key, value, headers })) });
          this.buffer.acknowledge(group[group.length - 1]!.seq);
          this.sentCounter?.inc(group.length);
        }
        this.depthGauge?.set(this.buffer.depth);
        this.fullGauge?.set(this.buffer.isFull ? 1 : 0);
        this.markUp();
        backoffMs = 200;
      } catch (e) {
        this.failureCounter?.inc();
        this.markDown(e as Error);
        // A producer that failed may hold a broken idempotence state: start afresh next time.
        await this.producer?.disconnect().catch(() => undefined);
        this.producer = undefined;
        await new Promise<void>((resolve) => {
          this.wake = undefined;
          setTimeout(resolve, backoffMs).unref();
        });
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  private async connectedProducer(): Promise<Producer> {
    if (this.producer) return this.producer;
    const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    this.producer = producer;
    return producer;
  }

  private markUp(): void {
    if (!this.kafkaUp && this.outageLogged) this.options.logger.info({ buffered: this.buffer.depth }, 'kafka reachable again; draining buffered security events');
    this.kafkaUp = true;
    this.outageLogged = false;
    this.connectedGauge?.set(1);
  }

  private markDown(error: Error): void {
    this.kafkaUp = false;
    this.connectedGauge?.set(0);
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.options.logger.warn({ buffered: this.buffer.depth, reason: error.message }, 'kafka unreachable; buffering security events durably');
    }
  }
}
