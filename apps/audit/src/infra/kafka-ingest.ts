import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type Producer, type LogEntry } from 'kafkajs';
import { Topics, type SecurityEvent } from '@soma/contracts';
import { Counter, Histogram, type Logger, type Registry } from '@soma/observability';
import { appendToChain, classifyMessages, type IncomingMessage, type Rejected } from '../domain/audit-ingest.js';
import type { AuditLogWriter } from '../domain/ports.js';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { splitByBytes } from '@soma/events';

export interface KafkaIngestOptions {
  brokers: string[];
  /** TLS to the brokers (kafkaSslOf of @soma/config); plain text when absent. */
  ssl?: ConnectionOptions;
  groupId: string;
  clientId: string;
  sessionTimeoutMs: number;
  maxBytesPerPartition: number;
  logger: Logger;
  metrics: Registry;
  writer: AuditLogWriter;
  kek: Buffer;
  /** Called after a batch of `chain` committed to PostgreSQL, with its rows in chain order (the SIEM stream drains it). */
  onCommitted: (chain: number, rows: StoredAuditRow[]) => void;
  /**
   * Messages per PostgreSQL transaction and offset commit. A fetched batch can hold tens of thousands
   * of small events; bounded chunks keep transactions short and let the consumer heartbeat between
   * them, so a big backlog never outlives the session timeout.
   */
  chunkSize: number;
}

/** PostgreSQL errors caused by one row's data (class 22 data exception, 23 integrity, 54 limits), not by the server. */
function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

/**
 * The consumer group on security.events. Per fetched batch (one partition): invalid events go to the
 * DLQ first, valid ones are persisted in one PostgreSQL transaction, and only then is the offset
 * committed — a crash anywhere replays the batch and the event-id dedupe makes the replay a no-op.
 */
export class KafkaAuditIngest {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private dlq: Producer | undefined;
  private joined = false;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartBackoffMs = 500;
  private readonly ingested: Counter;
  private readonly duplicates: Counter;
  private readonly dead: Counter;
  private readonly batchSeconds: Histogram;

  constructor(private readonly o: KafkaIngestOptions) {
    const kafkaLog = o.logger.child({ component: 'kafkajs' });
    this.kafka = new Kafka({
      clientId: o.clientId,
      brokers: o.brokers,
      ...(o.ssl ? { ssl: o.ssl } : {}),
      connectionTimeout: 3000,
      requestTimeout: 30000,
      retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 5000 },
      logLevel: logLevel.WARN,
      logCreator: () => ({ level, log }: LogEntry) => {
        if (level <= logLevel.ERROR) kafkaLog.warn({ kafka: log.message }, 'kafka client error');
      },
    });
    const registers = [o.metrics];
    this.ingested = new Counter({ name: 'soma_audit_events_stored_total', help: 'Events persisted to audit_log', registers });
    this.duplicates = new Counter({ name: 'soma_audit_events_duplicate_total', help: 'Redelivered events already stored (skipped)', registers });
    this.dead = new Counter({ name: 'soma_audit_events_dlq_total', help: 'Events sent to security.events.dlq', registers });
    this.batchSeconds = new Histogram({ name: 'soma_audit_batch_seconds', help: 'Kafka batch to committed offset', registers, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
  }

  get isJoined(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.dlq = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.dlq.connect();
    await this.startConsumer();
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.o.groupId,
      sessionTimeout: this.o.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.o.sessionTimeoutMs / 10)),
      rebalanceTimeout: Math.max(this.o.sessionTimeoutMs, 30_000),
      maxBytesPerPartition: this.o.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 5000, restartOnFailure: async () => true },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      this.restartBackoffMs = 500;
      this.o.logger.info({ assignment: e.payload.memberAssignment }, 'audit consumer joined the group');
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.joined = false;
      this.o.logger.error({ reason: (e.payload.error as Error)?.message, restart: e.payload.restart }, 'audit consumer crashed');
      // kafkajs gives up on errors it deems non-retriable (e.g. a commit after the coordinator dropped this
      // member). An audit consumer never gives up: build a fresh consumer and rejoin. Uncommitted work is replayed.
      if (!e.payload.restart && consumer === this.consumer) this.scheduleRestart();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: Topics.SecurityEvents, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: (payload) => this.handleBatch(payload),
    });
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer) return;
    const delay = this.restartBackoffMs;
    this.restartBackoffMs = Math.min(this.restartBackoffMs * 2, 10_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void (async () => {
        await this.consumer?.disconnect().catch(() => undefined);
        if (this.stopping) return;
        try {
          await this.startConsumer();
          this.o.logger.info('audit consumer restarted after a crash');
        } catch (e) {
          this.o.logger.warn({ reason: (e as Error).message }, 'audit consumer could not restart; retrying');
          this.scheduleRestart();
        }
      })();
    }, delay);
    this.restartTimer.unref();
  }

  private async handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const chunkSize = this.o.chunkSize;
    // Offset commits of this batch, in order, overlapping the next chunk's database work: a commit only ever
    // follows the PostgreSQL commit of its own chunk, and the batch returns only once all of them landed.
    let commits: Promise<void> = Promise.resolve();
    try {
      for (let i = 0; i < batch.messages.length; i += chunkSize) {
        // Stop between chunks when the partition was revoked or the consumer stops: what is committed stays.
        if (!isRunning() || isStale()) return;
        const chunk = batch.messages.slice(i, i + chunkSize);
        const started = process.hrtime.bigint();
        // kafkajs' messages are IncomingMessages already (offset, key, value): no copy per event.
        const { valid, rejected, sources } = classifyMessages(chunk);
        const stored = valid.length ? await this.persist(batch.partition, valid, sources, rejected) : [];
        if (rejected.length) await this.sendToDlq(batch.partition, rejected);
        const last = chunk[chunk.length - 1]!.offset;
        // Offsets move only now: the rows are committed in PostgreSQL and the rejects are on the DLQ.
        const offsets = [{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }];
        commits = commits.then(() => this.consumer!.commitOffsets(offsets));
        commits.catch(() => undefined); // observed when awaited below; a failure means the chunks are redelivered
        resolveOffset(last);
        this.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        if (valid.length) this.o.onCommitted(batch.partition, stored);
        await heartbeat();
      }
    } finally {
      await commits;
    }
  }

  /** Store the valid events of a chunk; resolves to the rows stored, in chain order. */
  private async persist(chain: number, valid: SecurityEvent[], original: Map<string, IncomingMessage>, rejected: Rejected[]): Promise<StoredAuditRow[]> {
    try {
      const r = await appendToChain(this.o.writer, this.o.kek, chain, valid);
      this.ingested.inc(r.inserted);
      this.duplicates.inc(r.duplicates);
      return r.rows;
    } catch (e) {
      if (!isDataError(e)) throw e; // server or connection trouble: the whole batch is retried
      // One event's data is refused by the database: store the others one by one, dead-letter the culprit.
      const stored: StoredAuditRow[] = [];
      for (const event of valid) {
        try {
          const r = await appendToChain(this.o.writer, this.o.kek, chain, [event]);
          this.ingested.inc(r.inserted);
          this.duplicates.inc(r.duplicates);
          stored.push(...r.rows);
        } catch (inner) {
          if (!isDataError(inner)) throw inner;
          rejected.push({ message: original.get(event.id)!, reason: `refused by the database (SQLSTATE ${(inner as { code: string }).code})` });
        }
      }
      return stored;
    }
  }

  private async sendToDlq(partition: number, rejected: Rejected[]): Promise<void> {
    const messages = rejected.map((r) => ({
      key: r.message.key,
      value: r.message.value ?? Buffer.alloc(0),
      headers: {
        'soma-dlq-reason': r.reason.slice(0, 2000),
        'soma-dlq-source': `${Topics.SecurityEvents}/${partition}/${r.message.offset}`,
        'soma-dlq-at': new Date().toISOString(),
      },
    }));
    // In groups under the broker's record batch limit: a chunk of large rejects must not stall the partition.
    for (const group of splitByBytes(messages)) await this.dlq!.send({ topic: Topics.SecurityEventsDlq, acks: -1, messages: group });
    this.dead.inc(rejected.length);
    this.o.logger.warn({ count: rejected.length, partition, first_reason: rejected[0]!.reason.slice(0, 200) }, 'invalid security events sent to the DLQ');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.joined = false;
    await this.consumer?.disconnect().catch(() => undefined);
    await this.dlq?.disconnect().catch(() => undefined);
  }
}
