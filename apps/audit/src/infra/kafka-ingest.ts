import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type Producer, type LogEntry } from 'kafkajs';
import { Topics } from '@soma/contracts';
import { Counter, Histogram, type Logger, type Registry } from '@soma/observability';
import type { IncomingMessage, Rejected } from '../domain/audit-ingest.js';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { splitByBytes } from '@soma/events';
import type { IndexedReject, StoreReply } from './ingest-workers/chunk-protocol.js';
import { ChunkWorkerLostError, type ChunkWorkers } from './ingest-workers/chunk-workers.js';

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
  /** Where each chunk is protected and stored (ADR 0410); started and closed with the consumer. */
  workers: ChunkWorkers;
  /**
   * Called after a chunk of `chain` committed to PostgreSQL (the SIEM stream drains it), with its rows in chain order
   * when `wantRows` (they cross from the worker only then).
   */
  onCommitted: (chain: number, rows: StoredAuditRow[] | undefined) => void;
  wantRows: boolean;
  /**
   * Messages per PostgreSQL transaction and offset commit. A fetched batch can hold tens of thousands
   * of small events; bounded chunks keep transactions short, and a dropped lane (a rejoin, a stop) stops between
   * them.
   */
  chunkSize: number;
}

/** A worker's rejects (by index in the chunk) with their original messages, for the DLQ. */
const rejectsOf = (chunk: readonly IncomingMessage[], indexed: readonly IndexedReject[]): Rejected[] =>
  indexed.map((r) => ({ message: chunk[r.index]!, reason: r.reason }));

/** Chunks a partition may hold, being protected, stored or queued, before it holds the fetch loop. */
const LANE_DEPTH = 2;

/** One partition's chunks, protected and stored in offset order; `epoch` moves on to drop what is queued. */
interface Lane {
  /** The chunk worker that protects and stores this lane's chunks (and holds them in between). */
  worker: number;
  /** The last chunk's protection (stage 1). */
  protecting: Promise<void>;
  /** Each chunk's storage and offset commit (stage 2) not yet done, oldest first: the next chunk is stored after the last. */
  queued: Array<Promise<void>>;
  epoch: number;
  commits: Promise<void>;
}

/** A chunk after stage 1: its rejects for the DLQ; its valid events, protected, are held by the lane's worker. */
interface PreparedChunk {
  chunk: IncomingMessage[];
  /** When stage 1 began: `soma_audit_batch_seconds` covers a chunk from there to its offset commit. */
  started: bigint;
  rejected: Rejected[];
  handle: number;
}

/**
 * The consumer group on security.events. Per chunk of a fetched batch (one partition, on its lane): valid events are
 * persisted in one PostgreSQL transaction, invalid ones go to the DLQ, and only then is the offset committed — a
 * crash anywhere replays the chunk and the event-id dedupe makes the replay a no-op.
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
  private lanes = new Map<number, Lane>();
  private readonly heartbeatMs: number;

  constructor(private readonly o: KafkaIngestOptions) {
    this.heartbeatMs = Math.max(500, Math.floor(o.sessionTimeoutMs / 10));
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
    this.o.workers.start();
    this.dlq = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.dlq.connect();
    await this.startConsumer();
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.o.groupId,
      sessionTimeout: this.o.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatMs,
      rebalanceTimeout: Math.max(this.o.sessionTimeoutMs, 30_000),
      maxBytesPerPartition: this.o.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 5000, restartOnFailure: async () => true },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      this.restartBackoffMs = 500;
      // A (re)join starts fetching at the committed offsets again: what the lanes still queue would be stored twice.
      this.dropLanes();
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

  /**
   * kafkajs fetches the next batch only once every batch of the previous fetch was handled. Waiting here until a
   * batch is stored would leave the fetch (and its decode) and the other partitions' stragglers idle in turn, so a
   * batch is only queued, chunk by chunk, on its partition's lane: the fetch position moves on at once, while the
   * group's committed offset still moves only after each chunk's PostgreSQL commit (`storeChunk`). A lane holding more
   * than `LANE_DEPTH` chunks holds the fetch loop here, heartbeating, until it drains (ADR 0409). (Pausing the
   * partition instead would make kafkajs sleep its whole fetch wait once every partition is paused.)
   */
  private async handleBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    const last = batch.messages[batch.messages.length - 1];
    if (!last || this.stopping) return;
    const lane = this.laneOf(batch.partition);
    const epoch = lane.epoch;
    resolveOffset(last.offset);
    for (let i = 0; i < batch.messages.length; i += this.o.chunkSize) {
      // kafkajs' messages are IncomingMessages already (offset, key, value): no copy per event.
      const chunk: IncomingMessage[] = batch.messages.slice(i, i + this.o.chunkSize);
      // Two stages, each in offset order: a chunk is protected (no chain lock needed) while the one before it is in
      // its chain transaction, then stored.
      const prepared = lane.protecting.then(() => this.protect(batch.partition, chunk, lane, epoch));
      lane.protecting = prepared.then(() => undefined, () => undefined); // its failure is handled on the stage-2 chain
      const stored: Promise<void> = (lane.queued[lane.queued.length - 1] ?? Promise.resolve())
        .then(() => prepared)
        .then((p) => (p ? this.storeChunk(batch.topic, batch.partition, p, lane, epoch) : undefined))
        .catch((e: unknown) => {
          // Server trouble is retried inside each stage, so this is a defect. The chunks behind this one must not
          // commit offsets past it: the lane is dropped and the consumer rebuilt, which fetches from the committed offset.
          this.o.logger.error({ partition: batch.partition, reason: (e as Error).message }, 'audit lane failed a chunk; rebuilding the consumer');
          if (epoch === lane.epoch) {
            lane.epoch += 1;
            this.scheduleRestart();
          }
        })
        .finally(() => {
          lane.queued.splice(lane.queued.indexOf(stored), 1);
        });
      lane.queued.push(stored);
    }
    while (lane.queued.length > LANE_DEPTH && epoch === lane.epoch && !this.stopping) {
      // Until the oldest chunk is stored (or a heartbeat is due).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([lane.queued[0], new Promise((r) => (timer = setTimeout(r, this.heartbeatMs)))]);
      clearTimeout(timer); // a stop must not wait for it
      await heartbeat(); // a rebalance throws here: kafkajs rejoins, and the join drops the lanes
    }
  }

  private laneOf(partition: number): Lane {
    let lane = this.lanes.get(partition);
    if (!lane) this.lanes.set(partition, (lane = { worker: this.o.workers.assign(), protecting: Promise.resolve(), queued: [], epoch: 0, commits: Promise.resolve() }));
    return lane;
  }

  /** Drop every queued chunk (a rejoin or a stop): the chunk being stored finishes; kafkajs fetches the rest again. */
  private dropLanes(): void {
    for (const lane of this.lanes.values()) lane.epoch += 1;
  }

  /** Retry `work` with backoff (300 ms doubling to 5 s) until it succeeds; undefined once the lane is dropped or the instance stops. */
  private async untilDone<T>(partition: number, lane: Lane, epoch: number, what: string, work: () => Promise<T>): Promise<T | undefined> {
    let backoffMs = 300;
    for (;;) {
      if (this.stopping || epoch !== lane.epoch) return undefined;
      try {
        return await work();
      } catch (e) {
        if (e instanceof ChunkWorkerLostError) throw e; // nothing to retry: the lane's catch rebuilds the consumer
        if (this.stopping || epoch !== lane.epoch) return undefined;
        this.o.logger.warn({ partition, reason: (e as Error).message, retry_in_ms: backoffMs }, `audit chunk not ${what}; retrying`);
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  /** Stage 1 on the lane's worker: classify the chunk and protect its valid events (subject keys may need PostgreSQL: retried). */
  private protect(partition: number, chunk: IncomingMessage[], lane: Lane, epoch: number): Promise<PreparedChunk | undefined> {
    const started = process.hrtime.bigint();
    return this.untilDone(partition, lane, epoch, 'protected', async () => {
      const { handle, rejected } = await this.o.workers.protect(lane.worker, chunk);
      return { chunk, started, handle, rejected: rejectsOf(chunk, rejected) };
    });
  }

  /**
   * Stage 2: store a protected chunk (on the lane's worker), dead-letter its rejects, then commit its offset; retried
   * with backoff while PostgreSQL or the DLQ is unavailable (the chunk stays held, in order).
   */
  private async storeChunk(topic: string, partition: number, p: PreparedChunk, lane: Lane, epoch: number): Promise<void> {
    let stored: StoreReply | undefined;
    try {
      stored = await this.untilDone(partition, lane, epoch, 'stored', async () => {
        const r = await this.o.workers.store(lane.worker, p.handle, partition, this.o.wantRows);
        // The database refused these events' data (the others were stored around them): to the DLQ with the rest.
        const rejected = [...p.rejected, ...rejectsOf(p.chunk, r.refused)];
        if (rejected.length) await this.sendToDlq(partition, rejected);
        return r;
      });
    } finally {
      this.o.workers.release(lane.worker, p.handle);
    }
    if (stored === undefined) return;
    this.ingested.inc(stored.inserted);
    this.duplicates.inc(stored.duplicates);
    const offsets = [{ topic, partition, offset: (BigInt(p.chunk[p.chunk.length - 1]!.offset) + 1n).toString() }];
    // Offsets move only now: the rows are committed in PostgreSQL and the rejects are on the DLQ. Commits are
    // chained per partition (in order) and overlap the next chunk; one that fails is covered by the next.
    const consumer = this.consumer!;
    lane.commits = lane.commits
      .then(() => consumer.commitOffsets(offsets))
      .catch((e: unknown) => this.o.logger.warn({ partition, reason: (e as Error).message }, 'offset commit failed; the chunk is redelivered unless a later commit lands'));
    this.batchSeconds.observe(Number(process.hrtime.bigint() - p.started) / 1e9);
    if (stored.inserted) this.o.onCommitted(partition, stored.rows ?? undefined);
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
    // The chunk being stored finishes and its offset commit lands; what is only queued is fetched again by whoever
    // owns the partition next.
    this.dropLanes();
    await Promise.all([...this.lanes.values()].map((lane) => Promise.all(lane.queued).then(() => lane.commits)));
    await this.consumer?.disconnect().catch(() => undefined);
    await this.dlq?.disconnect().catch(() => undefined);
    await this.o.workers.close();
  }
}
