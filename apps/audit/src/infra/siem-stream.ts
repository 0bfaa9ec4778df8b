import type { Admin, Kafka, Producer } from 'kafkajs';
import { TOPIC_PARTITIONS, Topics } from '@soma/contracts';
import { Counter, type Logger, type Registry } from '@soma/observability';
import { listen, withTransaction, type PgListener, type Pool } from '@soma/postgres';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { splitByBytes } from '@soma/events';
import { COMMITTED_CHANNEL } from './pg-audit-store.js';
import type { ChainReader } from '../domain/ports.js';
import { CommittedRows } from './committed-rows.js';
import { siemRecordJson } from './siem-record.js';

export { SIEM_RECORD_SCHEMA, siemRecordJson } from './siem-record.js';

/**
 * The outbox of the SIEM stream: rows are published to security.audit strictly in chain order, after
 * they committed, each chain position exactly once for read_committed consumers (ADR 0404).
 *
 * A drain locks the chain's `audit_siem_cursor` row (SKIP LOCKED: one drainer per chain across instances),
 * then writes one Kafka transaction per page: the records, plus the page's last chain position committed as
 * the offset of a pseudo consumer group, so that records and position become visible together or not at all.
 * The position in Kafka is the truth; `audit_siem_cursor.published_seq` follows it for lag and backlog only.
 * Each chain has its own transactional id: a drainer that takes a chain over fences the previous one (a
 * crashed or stalled process) and aborts its open transaction before it reads the position.
 *
 * A page comes from the rows this instance's ingest just committed when it holds exactly the rows after the
 * position (`CommittedRows`), otherwise from PostgreSQL: the common case costs no read-back.
 */
export class SiemStream {
  /**
   * One transactional producer per chain this instance drains, with the chain's committed position as of its
   * fencing, advanced by each of its own commits: while the producer is not fenced nobody else can commit a page
   * of the chain, so the position is read from Kafka once per producer, not once per page.
   */
  private readonly producers = new Map<number, { producer: Producer; position: number | undefined }>();
  private admin: Admin | undefined;
  private streamId: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listener: PgListener | undefined;
  private readonly running = new Map<number, Promise<void>>();
  private readonly again = new Set<number>();
  private stopped = false;
  private readonly committed: CommittedRows;
  private readonly published: Counter;
  private readonly readBack: Counter;
  private readonly failures: Counter;

  constructor(
    private readonly kafka: Kafka,
    private readonly pool: Pool,
    /** The audit log's rows by chain position (PgAuditStore): pages this instance does not hold. */
    private readonly reader: Pick<ChainReader, 'rows'>,
    private readonly logger: Logger,
    metrics: Registry,
    private readonly intervalMs: number,
    private readonly pageSize = 1000,
  ) {
    this.published = new Counter({ name: 'soma_audit_siem_published_total', help: 'Records published to security.audit', registers: [metrics] });
    this.failures = new Counter({ name: 'soma_audit_siem_failures_total', help: 'Failed drains of the SIEM outbox (retried)', registers: [metrics] });
    this.readBack = new Counter({ name: 'soma_audit_siem_read_back_total', help: 'Records the SIEM stream read back from PostgreSQL (not held from ingest)', registers: [metrics] });
    // Ingest commits chunks of up to AUDIT_INGEST_CHUNK_SIZE rows; a few chunks per chain cover a stream that keeps up.
    this.committed = new CommittedRows(Math.max(4 * pageSize, 20_000));
  }

  /**
   * `listenForCommits`: also drain when another instance's ingest commits (LISTEN on PostgreSQL), for a SIEM-only
   * instance (ADR 0407); the interval stays as the net for notifications missed while the connection was down.
   */
  start(listenForCommits = false): void {
    this.timer = setInterval(() => void this.drainAll(), this.intervalMs);
    this.timer.unref();
    if (listenForCommits) {
      this.listener = listen(this.pool, COMMITTED_CHANNEL, {
        onNotify: (payload) => {
          const chain = Number(payload);
          if (Number.isInteger(chain) && chain >= 0) this.notify(chain);
        },
        onError: (e) => this.logger.warn({ reason: e.message }, 'SIEM stream lost its LISTEN connection; reconnecting (the poll covers the gap)'),
      });
    }
  }

  /** A batch of `chain` committed (its rows, when this instance wrote them): drain it soon (coalesced). */
  notify(chain: number, rows?: readonly StoredAuditRow[]): void {
    if (this.stopped) return;
    if (rows) this.committed.add(chain, rows);
    if (this.running.has(chain)) {
      this.again.add(chain);
      return;
    }
    const run = this.drain(chain)
      .catch(async (e: unknown) => {
        this.failures.inc();
        this.logger.warn({ chain, reason: (e as Error).message }, 'SIEM stream drain failed; will retry');
        // The next drain starts with a new producer: it fences whatever this one left open.
        await this.dropProducer(chain);
      })
      .finally(() => {
        this.running.delete(chain);
        if (this.again.delete(chain)) this.notify(chain);
      });
    this.running.set(chain, run);
  }

  async drainAll(): Promise<void> {
    try {
      const { rows } = await this.pool.query<{ chain_partition: number }>(
        'SELECT c.chain_partition FROM audit_siem_cursor c JOIN audit_chain_heads h USING (chain_partition) WHERE h.last_seq > c.published_seq',
      );
      for (const r of rows) this.notify(r.chain_partition);
    } catch (e) {
      this.logger.warn({ reason: (e as Error).message }, 'SIEM stream could not read its backlog; will retry');
    }
  }

  /** `soma-audit-siem-<stream id>-<chain>`: the chain's transactional id and its position's group. */
  private async chainId(chain: number): Promise<string> {
    if (!this.streamId) {
      const { rows } = await this.pool.query<{ stream_id: string }>('SELECT stream_id FROM audit_stream_identity');
      if (!rows[0]) throw new Error('audit_stream_identity is empty: run the audit migrations (npx soma db migrate)');
      this.streamId = rows[0].stream_id;
    }
    return `soma-audit-siem-${this.streamId}-${chain}`;
  }

  private async producerFor(chain: number, id: string, partition: number): Promise<{ producer: Producer; position: number | undefined }> {
    const existing = this.producers.get(chain);
    if (existing) return existing;
    const producer = this.kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    // connect() initialises the transactional id: earlier producers of this chain are fenced from here on, so
    // the position read after it cannot move behind our back.
    await producer.connect();
    let position: number | undefined;
    try {
      position = await this.committedPosition(id, partition);
    } catch (e) {
      await producer.disconnect().catch(() => undefined);
      throw e;
    }
    const entry = { producer, position };
    this.producers.set(chain, entry);
    return entry;
  }

  private async dropProducer(chain: number): Promise<void> {
    const entry = this.producers.get(chain);
    this.producers.delete(chain);
    await entry?.producer.disconnect().catch(() => undefined);
  }

  /** The last chain position committed to security.audit, or undefined before the first transaction. */
  private async committedPosition(groupId: string, partition: number): Promise<number | undefined> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    const topics = await this.admin.fetchOffsets({ groupId, topics: [Topics.SecurityAudit] });
    const offset = Number(topics[0]?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
    return offset >= 0 ? offset : undefined;
  }

  private async drain(chain: number): Promise<void> {
    const partition = chain % TOPIC_PARTITIONS[Topics.SecurityAudit];
    for (;;) {
      if (this.stopped) return;
      const page = await withTransaction(this.pool, async (client) => {
        const cursor = await client.query<{ published_seq: string }>(
          'SELECT published_seq FROM audit_siem_cursor WHERE chain_partition = $1 FOR UPDATE SKIP LOCKED',
          [chain],
        );
        if (cursor.rows.length === 0) {
          // Another instance is draining this chain: it reads back what this one holds, so let it go.
          this.committed.drop(chain);
          return { sent: 0, held: false };
        }
        const recorded = Number(cursor.rows[0]!.published_seq);
        const id = await this.chainId(chain);
        const chainProducer = await this.producerFor(chain, id, partition);
        // Before the first transaction of this stream (or after an upgrade), the recorded cursor is the position.
        const from = chainProducer.position ?? recorded;
        const held = this.committed.take(chain, from, this.pageSize);
        const records = held ?? (await this.readPage(chain, from));
        const last = records.length ? records[records.length - 1]!.chain_seq : from;
        if (records.length) {
          const txn = await chainProducer.producer.transaction();
          try {
            const messages = records.map((r) => ({
              key: r.tenant,
              partition,
              value: siemRecordJson(r),
              // One header: kafkajs encodes each header through its own buffer, ~2 µs a record; the media type and
              // the chain position are in the record itself (docs/events.md).
              headers: { 'soma-event-type': r.event_type },
            }));
            // Several sends, one transaction: each send stays under the broker's record batch limit.
            for (const group of splitByBytes(messages)) await txn.send({ topic: Topics.SecurityAudit, acks: -1, messages: group });
            await txn.sendOffsets({ consumerGroupId: id, topics: [{ topic: Topics.SecurityAudit, partitions: [{ partition, offset: String(last) }] }] });
            await txn.commit();
            chainProducer.position = last;
          } catch (e) {
            await txn.abort().catch(() => undefined);
            throw e;
          }
        }
        // Catches up after a crash between a Kafka commit and this one: those rows are not sent again.
        if (last !== recorded) await client.query('UPDATE audit_siem_cursor SET published_seq = $2, updated_at = now() WHERE chain_partition = $1', [chain, last]);
        return { sent: records.length, held: held !== null };
      });
      this.published.inc(page.sent);
      // A held page ends where ingest's chunk ended, not where the chain does: look again (PostgreSQL says when it is done).
      if (!page.held && page.sent < this.pageSize) return;
    }
  }

  /** The page after `afterSeq` from PostgreSQL (committed rows: the cursor lock is not needed to read them). */
  private async readPage(chain: number, afterSeq: number): Promise<StoredAuditRow[]> {
    const rows = await this.reader.rows(chain, {}, afterSeq, this.pageSize);
    this.readBack.inc(rows.length);
    return rows;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.listener?.stop();
    await Promise.allSettled([...this.running.values()]);
    await Promise.allSettled([...this.producers.keys()].map((chain) => this.dropProducer(chain)));
    await this.admin?.disconnect().catch(() => undefined);
  }
}
