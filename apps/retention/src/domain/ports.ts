import type { SecurityEventOutcome, SecurityEventType } from '@soma/contracts';
import type { RetentionPolicy } from './policy.js';

/** Who is calling, as the auth service vouches for it. */
export interface Caller {
  sub: string;
  /** `*` = every tenant. */
  tenant: string;
  scopes: string[];
  credentialId: string;
}

/** What a transport knows about the request, passed through to downstream calls (auth). */
export interface RequestContext {
  requestId: string;
  /** The caller's own credential; forwarded to auth only when no service credential is configured. */
  bearer: string;
  ipAddress?: string;
  userAgent?: string;
}

/** Bearer → caller. Throws RetentionError(Unauthenticated | AuthUnavailable); never lets an unknown caller through. */
export interface Authenticator {
  authenticate(bearer: string, ctx: RequestContext): Promise<Caller>;
}

/** The database side of retention policies. Every method takes validated policies only. */
export interface RetentionStore {
  /** Run `work` holding the policy's cluster-wide lock; `acquired: false` when another run holds it. */
  withPolicyLock<T>(policy: RetentionPolicy, work: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }>;
  countExpired(policy: RetentionPolicy, cutoff: Date): Promise<number>;
  /**
   * How a time-budgeted run reaches its `expired` rows (ADR 0506): along the timestamp index when few
   * rows are expired, or over the table's pages in physical order when so many are that the database
   * itself would read the whole table for one plain DELETE.
   */
  planDeletion(policy: RetentionPolicy, cutoff: Date, expired: number): Promise<DeletionPlan>;
  /**
   * Delete one batch of expired rows in one short statement (its own transaction); rows another
   * transaction holds locked are skipped (left for the next run), never waited for beyond a moment.
   */
  deleteExpiredBatch(policy: RetentionPolicy, cutoff: Date, batch: BatchRequest): Promise<BatchResult>;
  /** Partitions lying entirely before the cutoff, with their row counts (dry-run of drop_partitions). */
  expiredPartitions(policy: RetentionPolicy, cutoff: Date): Promise<Array<{ name: string; rows: number }>>;
  /** Drop every partition lying entirely before the cutoff; their names. */
  dropExpiredPartitions(policy: RetentionPolicy, cutoff: Date): Promise<string[]>;
}

/** How one run walks the expired rows; chosen once per run. */
export type DeletionPlan =
  /** Oldest first along the timestamp index; a batch is a number of rows. */
  | { walk: 'index' }
  /** In physical order over pages [0, pages) as they were when the run started; a batch is a page range. */
  | { walk: 'pages'; pages: number; rowsPerPage: number };

export type BatchRequest =
  /** The oldest `rows` expired rows, from `after` on (the previous batch's `after`; null = from the start). */
  | { walk: 'index'; rows: number; after: string | null }
  /** Every expired row on pages [fromPage, toPage). */
  | { walk: 'pages'; fromPage: number; toPage: number };

export interface BatchResult {
  deleted: number;
  /**
   * Index walk: where the next batch starts (the newest timestamp this batch deleted, opaque to the
   * domain), so a batch does not step again over the index entries of the rows already deleted.
   */
  after: string | null;
}

/** The platform's tables (sessions, messages, session_events …) as seen for one data subject. */
export interface PlatformSubjectStore {
  /** Every row of the user, per table, as JSON objects; throws RetentionError(ExportTooLarge) above maxRows in total. */
  exportUser(tenant: string, userId: string, maxRows: number): Promise<Array<{ table: string; rows: Array<Record<string, unknown>> }>>;
  /** Delete every row of the user (bounded batches); rows deleted per table. Idempotent. */
  eraseUser(tenant: string, userId: string): Promise<Array<{ table: string; rows: number }>>;
}

/** The user's credentials, held by the auth service. Failures throw RetentionError(AuthUnavailable | PermissionDenied). */
export interface SubjectCredentials {
  /** Metadata of the API keys the user owns (never a secret), revoked ones included. */
  listApiKeys(tenant: string, userId: string, ctx: RequestContext): Promise<Array<Record<string, unknown>>>;
  revokeSubject(tenant: string, userId: string, ctx: RequestContext): Promise<{ apiKeysRevoked: number; tokensRevokedBefore: string }>;
}

/** An audit row about the user, decrypted for the export. */
export interface AuditEntryExport {
  id: string;
  timestamp: string;
  occurred_at: string;
  event_id: string;
  event_type: string;
  service: string;
  action: string;
  resource: string;
  outcome: string;
  reason: string | null;
  details: unknown;
  ip_network: string | null;
  /** The decrypted personal fields {user_id, ip_address, user_agent}. */
  personal: Record<string, unknown> | null;
}

/** The audit log's per-subject keys (ADR 0401): read for export, destroyed for erasure. */
export interface AuditSubjects {
  /** The user's keyed pseudonym, or null when the audit log holds no key for them. */
  pseudonymOf(tenant: string, userId: string): Promise<string | null>;
  exportEntries(tenant: string, userId: string, maxRows: number): Promise<{ pseudonym: string | null; entries: AuditEntryExport[] }>;
  /** Delete the subject key (as the audit_retention role). True when a key existed. */
  destroyKey(tenant: string, userId: string): Promise<boolean>;
}

export interface ConsentRecord {
  tenant: string;
  userId: string;
  purpose: string;
  granted: boolean;
  recordedAt: string;
  source: string;
  policyVersion: string;
  recordedBy: string;
}

export interface ConsentStore {
  append(record: Omit<ConsentRecord, 'recordedAt'>): Promise<ConsentRecord>;
  /** Oldest first; one purpose or all. */
  history(tenant: string, userId: string, purpose?: string): Promise<ConsentRecord[]>;
  eraseUser(tenant: string, userId: string): Promise<number>;
}

export interface RetentionEvent {
  type: Extract<SecurityEventType, 'retention_run' | 'data_exported' | 'data_erased' | 'consent_changed'>;
  tenant: string;
  action: string;
  resource: string;
  outcome: SecurityEventOutcome;
  reason?: string | null;
  actor?: { user_id?: string | null; ip_address?: string | null; user_agent?: string | null };
  details: Record<string, unknown>;
}

/** The durable security-event outbox. `publish` throws when it cannot accept the event (fail closed). */
export interface RetentionEvents {
  publish(event: RetentionEvent): void;
  /** null when events can be accepted, else why not. */
  unavailableReason(): string | null;
}

export interface RetentionMetrics {
  rowsDeleted(policy: string, table: string, rows: number): void;
  batch(policy: string, seconds: number): void;
  run(policy: string, outcome: string, seconds: number, dryRun: boolean): void;
  gdpr(kind: 'export' | 'erase' | 'consent_record' | 'consent_get', outcome: 'success' | 'denied' | 'error'): void;
}

export interface Clock {
  now(): Date;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
