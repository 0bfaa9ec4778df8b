import type { SecurityEventInput, SecurityEventOutcome } from '@soma/contracts';
import type { ChainHead, StoredAuditRow } from './audit-record.js';
import type { Checkpoint } from './checkpoint.js';
import type { ChainReader } from './verify-chain.js';

export type { ChainReader } from './verify-chain.js';

/** The writes of one batch on one chain, inside one database transaction. */
export interface ChainTransaction {
  /** Lock the chain head (FOR UPDATE), creating the genesis head on first use. */
  lockHead(): Promise<ChainHead>;
  /**
   * Record event ids; resolves to those not seen before (the others are duplicates), each mapped to the
   * `audit_log.id` its row gets.
   */
  claimEventIds(ids: string[], timestamp: Date): Promise<Map<string, string>>;
  insertRows(rows: StoredAuditRow[]): Promise<void>;
  saveHead(head: ChainHead): Promise<void>;
}

/**
 * The wrapped per-subject keys (ADR 0401), outside any chain transaction: a key is created once per subject and only
 * ever deleted (erasure), so a chunk can be protected before its chain is locked (ADR 0409).
 */
export interface SubjectKeyStore {
  /** Wrapped subject keys of existing subjects, keyed `tenant \u0000 user_id`. */
  loadSubjectKeys(subjects: Array<{ tenant: string; user_id: string }>): Promise<Map<string, Buffer>>;
  /** Insert new wrapped keys unless present; resolves to the subjects actually inserted (same key form). */
  insertSubjectKeys(keys: Array<{ tenant: string; user_id: string; key: Buffer }>): Promise<Set<string>>;
}

export interface AuditLogWriter extends SubjectKeyStore {
  /** Run `work` in one transaction: all of it commits or none of it does. */
  inChainTransaction<T>(chain: number, work: (tx: ChainTransaction) => Promise<T>): Promise<T>;
}

export interface QueryFilter {
  from?: Date;
  to?: Date;
  tenant?: string;
  event_type?: string;
  outcome?: SecurityEventOutcome;
  /** Already pseudonymised. */
  user_pseudonym?: string;
}

/** Position of the last row of a page (newest first): the next page starts strictly before it. */
export interface PageCursor {
  timestamp: Date;
  id: string;
}

export interface AuditLogReader extends ChainReader {
  query(filter: QueryFilter, after: PageCursor | null, limit: number): Promise<StoredAuditRow[]>;
  count(filter: QueryFilter): Promise<number>;
  /** Wrapped key of a subject, or null (never seen, or erased). */
  subjectKey(tenant: string, userId: string): Promise<Buffer | null>;
  /** Every row of a time range, oldest first, in pages (the export). */
  exportRange(from: Date, to: Date, tenant: string | undefined, after: PageCursor | null, limit: number): Promise<StoredAuditRow[]>;
}

export interface CheckpointStore {
  /** Heads with rows not yet covered by a checkpoint. */
  headsToCheckpoint(): Promise<ChainHead[]>;
  saveCheckpoint(c: Checkpoint): Promise<void>;
}

/**
 * The suite's security-event publisher (the runtime's durable buffer in front of `security.events`):
 * the event is on disk when `publish` returns; it throws when the event cannot be buffered (buffer full).
 */
export interface SecurityEventSink {
  publish(event: SecurityEventInput): unknown;
}
