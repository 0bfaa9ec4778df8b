import type { Kafka, Producer } from 'kafkajs';
import { SECURITY_EVENT_SCHEMA, TOPIC_PARTITIONS, Topics, type SecurityEvent } from '@soma/contracts';
import { Counter, type Logger, type Registry } from '@soma/observability';
import { withTransaction, type Pool } from '@soma/postgres';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { parseIpNetwork } from '../domain/ip-network.js';
import { ROW_COLUMNS, rowFromDb } from './pg-audit-store.js';

export const SIEM_RECORD_SCHEMA = 'soma.audit.record/v1';

/** What a SIEM reads on security.audit: the stored event in the contract envelope plus its chain position. */
export function siemRecordOf(row: StoredAuditRow): Record<string, unknown> {
  const event: SecurityEvent = {
    schema: SECURITY_EVENT_SCHEMA,
    id: row.event_id,
    type: row.event_type as SecurityEvent['type'],
    occurred_at: row.occurred_at.toISOString(),
    service: row.service,
    tenant: row.tenant,
    // The stored (pseudonymised) actor: no clear personal data leaves the audit database (ADR 0401).
    actor: { user_id: row.user_id, ip_address: row.ip_address ? row.ip_address.split('/', 1)[0]! : null, user_agent: null },
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    reason: row.reason,
    details: row.details,
    trace_id: row.trace_id,
  };
  return {
    schema: SIEM_RECORD_SCHEMA,
    event,
    audit: {
      id: row.id,
      recorded_at: row.timestamp.toISOString(),
      chain_partition: row.chain_partition,
      chain_seq: row.chain_seq,
      prev_hash: row.prev_hash.toString('hex'),
      hash: row.hash.toString('hex'),
      ip_prefix_length: row.ip_address ? parseIpNetwork(row.ip_address).prefix : null,
      user_pseudonymous: row.user_id !== null,
    },
  };
}

/**
 * The outbox of the SIEM stream: rows are published to security.audit strictly in chain order, after
 * they committed, from `audit_siem_cursor`. A drain locks the chain's cursor row (SKIP LOCKED: one
 * drainer per chain across instances), sends the next rows with an idempotent acks=all producer to the
 * security.audit partition of the same number, then advances the cursor in the same transaction.
 */
export class SiemStream {
  private producer: Producer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Map<number, Promise<void>>();
  private readonly again = new Set<number>();
  private stopped = false;
  private readonly published: Counter;
  private readonly failures: Counter;

  constructor(
    private readonly kafka: Kafka,
    private readonly pool: Pool,
    private readonly logger: Logger,
    metrics: Registry,
    private readonly intervalMs: number,
    private readonly pageSize = 1000,
  ) {
    this.published = new Counter({ name: 'soma_audit_siem_published_total', help: 'Records published to security.audit', registers: [metrics] });
    this.failures = new Counter({ name: 'soma_audit_siem_failures_total', help: 'Failed drains of the SIEM outbox (retried)', registers: [metrics] });
  }

  start(): void {
    this.timer = setInterval(() => void this.drainAll(), this.intervalMs);
    this.timer.unref();
  }

  /** A batch of `chain` committed: drain it soon (coalesced). */
  notify(chain: number): void {
    if (this.stopped) return;
    if (this.running.has(chain)) {
      this.again.add(chain);
      return;
    }
    const run = this.drain(chain)
      .catch((e: unknown) => {
        this.failures.inc();
        this.logger.warn({ chain, reason: (e as Error).message }, 'SIEM stream drain failed; will retry');
        void this.producer?.disconnect().catch(() => undefined);
        this.producer = undefined;
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

  private async connected(): Promise<Producer> {
    if (this.producer) return this.producer;
    const p = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await p.connect();
    this.producer = p;
    return p;
  }

  private async drain(chain: number): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const sent = await withTransaction(this.pool, async (client) => {
        const cursor = await client.query<{ published_seq: string }>(
          'SELECT published_seq FROM audit_siem_cursor WHERE chain_partition = $1 FOR UPDATE SKIP LOCKED',
          [chain],
        );
        if (cursor.rows.length === 0) return 0; // another instance is draining this chain
        const from = Number(cursor.rows[0]!.published_seq);
        const { rows } = await client.query(
          `SELECT ${ROW_COLUMNS} FROM audit_log WHERE chain_partition = $1 AND chain_seq > $2 ORDER BY chain_seq LIMIT $3`,
          [chain, from, this.pageSize],
        );
        if (rows.length === 0) return 0;
        const records = rows.map((r) => rowFromDb(r as Parameters<typeof rowFromDb>[0]));
        const producer = await this.connected();
        await producer.send({
          topic: Topics.SecurityAudit,
          acks: -1,
          messages: records.map((r) => ({
            key: r.tenant,
            partition: r.chain_partition % TOPIC_PARTITIONS[Topics.SecurityAudit],
            value: JSON.stringify(siemRecordOf(r)),
            headers: { 'content-type': 'application/json', 'soma-event-type': r.event_type, 'soma-chain': `${r.chain_partition}:${r.chain_seq}` },
          })),
        });
        await client.query('UPDATE audit_siem_cursor SET published_seq = $2, updated_at = now() WHERE chain_partition = $1', [chain, records[records.length - 1]!.chain_seq]);
        return records.length;
      });
      this.published.inc(sent);
      if (sent < this.pageSize) return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.running.values()]);
    await this.producer?.disconnect().catch(() => undefined);
  }
}
