import type { SecurityEventOutcome } from '@soma/contracts';
import { authorizeGlobal, authorizeTenantRead, denialReasonOf, type AuditCaller } from './access.js';
import type { AccessContext, AccessRequest, AuditAccessLog, AuditReadOperation } from './audit-access-log.js';
import type { StoredAuditRow } from './audit-record.js';
import { AuditError, AuditErrorCode } from './audit.errors.js';
import type { CheckpointSigner } from './checkpoint.js';
import type { AuditLogReader, PageCursor, QueryFilter } from './ports.js';
import { decryptPii, pseudonymOf, unwrapSubjectKey, type PersonalFields } from './subject-crypto.js';
import { verifyChains, type TimeRange, type VerifyResult } from './verify-chain.js';

export interface QueryInput {
  from?: Date;
  to?: Date;
  tenant?: string;
  event_type?: string;
  outcome?: SecurityEventOutcome;
  /** Clear user id: requires `tenant`; reveals that subject's personal fields while their key exists. */
  user_id?: string;
  page_size?: number;
  page_token?: string;
}

/** A row as the query API shows it. */
export interface AuditRecordView {
  id: string;
  event_id: string;
  timestamp: string;
  occurred_at: string;
  event_type: string;
  tenant: string;
  service: string;
  /** The stored keyed pseudonym. */
  user_pseudonym: string | null;
  /** Network only (`203.0.113.0/24`). */
  ip_network: string | null;
  /** Clear personal fields, present only when queried by user and the subject key still exists. */
  personal: PersonalFields | null;
  action: string;
  resource: string;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
  trace_id: string | null;
  chain_partition: number;
  chain_seq: number;
  prev_hash: string;
  hash: string;
}

export const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 100;

export function encodePageToken(c: PageCursor): string {
  return Buffer.from(JSON.stringify({ t: c.timestamp.toISOString(), id: c.id }), 'utf8').toString('base64url');
}

export function decodePageToken(token: string): PageCursor {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { t?: unknown; id?: unknown };
    if (typeof parsed.t !== 'string' || typeof parsed.id !== 'string' || !/^\d{1,19}$/.test(parsed.id)) throw new Error('shape');
    const timestamp = new Date(parsed.t);
    if (Number.isNaN(timestamp.getTime())) throw new Error('time');
    return { timestamp, id: parsed.id };
  } catch {
    throw new AuditError(AuditErrorCode.InvalidPageToken, 'page_token is not a token issued by this API');
  }
}

export function toView(row: StoredAuditRow, personal: PersonalFields | null = null): AuditRecordView {
  return {
    id: row.id,
    event_id: row.event_id,
    timestamp: row.timestamp.toISOString(),
    occurred_at: row.occurred_at.toISOString(),
    event_type: row.event_type,
    tenant: row.tenant,
    service: row.service,
    user_pseudonym: row.user_id,
    ip_network: row.ip_address,
    personal,
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    reason: row.reason,
    details: row.details,
    trace_id: row.trace_id,
    chain_partition: row.chain_partition,
    chain_seq: row.chain_seq,
    prev_hash: row.prev_hash.toString('hex'),
    hash: row.hash.toString('hex'),
  };
}

function checkRange(from?: Date, to?: Date): void {
  if (from && to && from.getTime() > to.getTime()) throw new AuditError(AuditErrorCode.InvalidQuery, 'from must not be after to');
}

/** What the NDJSON export asks for. */
export interface ExportRequest {
  from: Date;
  to: Date;
  tenant?: string;
}

/** Rows per page of the export (the first page is read before anything is sent). */
export const EXPORT_PAGE_SIZE = 1000;

/** How a read is recorded when it is asked for (before authorisation): the tenant it would cover. */
function requestOf(caller: AuditCaller, input: QueryInput): AccessRequest {
  return {
    tenant: input.tenant ?? caller.tenant,
    event_type: input.event_type,
    outcome: input.outcome,
    from: input.from,
    to: input.to,
    by_user: input.user_id !== undefined,
  };
}

/** The personal fields of a row, when it is the queried subject's and their key still exists. */
function personalOf(key: Buffer | null, row: StoredAuditRow): PersonalFields | null {
  if (!key || !row.pii) return null;
  try {
    return decryptPii(key, row.event_id, row.pii);
  } catch {
    return null; // not this subject's ciphertext: show the stored form
  }
}

/**
 * An export whose first page is read and whose start is recorded: the transport streams `records()`
 * and then calls `finish` once, with whether the stream completed.
 */
export class AuditExport {
  private sent = 0;
  private finished = false;

  constructor(
    private readonly reader: AuditLogReader,
    private readonly access: AuditAccessLog,
    private readonly caller: AuditCaller,
    private readonly request: ExportRequest & { access: AccessRequest; ctx: AccessContext },
    private firstPage: StoredAuditRow[],
  ) {}

  /** Every row of the range, oldest first. */
  async *records(): AsyncGenerator<AuditRecordView> {
    let page = this.firstPage;
    this.firstPage = [];
    const { from, to, tenant } = this.request;
    for (;;) {
      for (const row of page) {
        this.sent += 1;
        yield toView(row);
      }
      if (page.length < EXPORT_PAGE_SIZE) return;
      const last = page[page.length - 1]!;
      page = await this.reader.exportRange(from, to, tenant, { timestamp: last.timestamp, id: last.id }, EXPORT_PAGE_SIZE);
    }
  }

  /** Record the end of the stream (once): how many records were handed to the transport, complete or cut. */
  finish(complete: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.access.exportFinished(this.caller, this.request.access, { records_returned: this.sent, complete }, this.request.ctx);
  }
}

/**
 * The read side of the audit log: queries, counts, chain verification, the export. Each call authorises
 * its caller (access.ts) and is itself recorded as an `audit_log_accessed` event, granted or denied; a
 * granted read whose event cannot be buffered is refused (AUDIT_UNAVAILABLE) before anything leaves.
 */
export class AuditQueries {
  constructor(
    private readonly reader: AuditLogReader,
    private readonly kek: Buffer,
    private readonly signer: Pick<CheckpointSigner, 'verify'>,
    private readonly access: AuditAccessLog,
  ) {}

  /** Authorise, recording a refusal before it is thrown. */
  private authorized<T>(caller: AuditCaller, operation: AuditReadOperation, request: AccessRequest, ctx: AccessContext, check: () => T): T {
    try {
      return check();
    } catch (e) {
      const reason = denialReasonOf(e);
      if (reason) this.access.denied(caller, operation, request, reason, (e as AuditError).detail?.['needed'] as string | undefined, ctx);
      throw e;
    }
  }

  /** Resolve a clear user id to its pseudonym and key; null when the subject is unknown or erased. */
  private async subject(tenant: string, userId: string): Promise<{ pseudonym: string; key: Buffer } | null> {
    const wrapped = await this.reader.subjectKey(tenant, userId);
    if (!wrapped) return null;
    const key = unwrapSubjectKey(this.kek, tenant, userId, wrapped);
    return { pseudonym: pseudonymOf(key), key };
  }

  private async filterOf(input: QueryInput): Promise<{ filter: QueryFilter; key: Buffer | null } | null> {
    checkRange(input.from, input.to);
    const filter: QueryFilter = { from: input.from, to: input.to, tenant: input.tenant, event_type: input.event_type, outcome: input.outcome };
    if (input.user_id === undefined) return { filter, key: null };
    if (!input.tenant) throw new AuditError(AuditErrorCode.InvalidQuery, 'a query by user_id needs a tenant');
    const subject = await this.subject(input.tenant, input.user_id);
    if (!subject) return null;
    return { filter: { ...filter, user_pseudonym: subject.pseudonym }, key: subject.key };
  }

  /** QueryEvents: scope audit:read, confined to the caller's tenant unless it is `*`. */
  async query(caller: AuditCaller, input: QueryInput, ctx: AccessContext = {}): Promise<{ records: AuditRecordView[]; next_page_token: string }> {
    const tenant = this.authorized(caller, 'query_events', requestOf(caller, input), ctx, () => authorizeTenantRead(caller, 'audit:read', input.tenant));
    const scoped: QueryInput = { ...input, tenant };
    const size = input.page_size || DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) throw new AuditError(AuditErrorCode.InvalidQuery, `page_size must be 1..${MAX_PAGE_SIZE}`);
    const after = input.page_token ? decodePageToken(input.page_token) : null;
    const resolved = await this.filterOf(scoped);
    let records: AuditRecordView[] = [];
    let next = '';
    if (resolved) {
      const rows = await this.reader.query(resolved.filter, after, size + 1);
      const page = rows.slice(0, size);
      records = page.map((row) => toView(row, personalOf(resolved.key, row)));
      const lastRow = page[page.length - 1];
      next = rows.length > size && lastRow ? encodePageToken({ timestamp: lastRow.timestamp, id: lastRow.id }) : '';
    }
    // Recorded before the page leaves: a query by user is the most sensitive read (it decrypts), so its
    // event names the subject by pseudonym and says how many records came back in clear.
    this.access.granted(
      caller,
      'query_events',
      { ...requestOf(caller, scoped), tenant: tenant ?? '*', user_pseudonym: resolved?.filter.user_pseudonym ?? null, page_size: size, continued: after !== null },
      { records_returned: records.length, personal_records: records.filter((r) => r.personal !== null).length, figures: { more: next !== '' } },
      ctx,
    );
    return { records, next_page_token: next };
  }

  /** CountEvents: as QueryEvents; only a number leaves. */
  async count(caller: AuditCaller, input: QueryInput, ctx: AccessContext = {}): Promise<number> {
    const tenant = this.authorized(caller, 'count_events', requestOf(caller, input), ctx, () => authorizeTenantRead(caller, 'audit:read', input.tenant));
    const scoped: QueryInput = { ...input, tenant };
    const resolved = await this.filterOf(scoped);
    const count = resolved ? await this.reader.count(resolved.filter) : 0;
    this.access.granted(
      caller,
      'count_events',
      { ...requestOf(caller, scoped), tenant: tenant ?? '*', user_pseudonym: resolved?.filter.user_pseudonym ?? null },
      { records_returned: 0, personal_records: 0, figures: { count } },
      ctx,
    );
    return count;
  }

  /** VerifyChain: scope audit:verify, `*` principals only (chains interleave every tenant). */
  async verify(caller: AuditCaller, range: TimeRange, ctx: AccessContext = {}): Promise<VerifyResult> {
    const request: AccessRequest = { tenant: '*', from: range.from, to: range.to };
    this.authorized(caller, 'verify_chain', request, ctx, () => authorizeGlobal(caller, 'audit:verify'));
    checkRange(range.from, range.to);
    const result = await verifyChains(this.reader, this.signer, range);
    this.access.granted(caller, 'verify_chain', request, {
      records_returned: 0,
      personal_records: 0,
      figures: { intact: result.intact, chains_checked: result.chains_checked, rows_checked: result.rows_checked, checkpoints_checked: result.checkpoints_checked, broken_reason: result.broken?.reason ?? null },
    }, ctx);
    return result;
  }

  /**
   * The NDJSON export: scope audit:export, tenant rule as QueryEvents. The first page is read and the
   * export's start recorded before anything is sent, so a database failure or an unrecordable export is
   * still a proper error status.
   */
  async openExport(caller: AuditCaller, input: ExportRequest, ctx: AccessContext = {}): Promise<AuditExport> {
    checkRange(input.from, input.to);
    const tenant = this.authorized(caller, 'export_events', requestOf(caller, input), ctx, () => authorizeTenantRead(caller, 'audit:export', input.tenant));
    const access: AccessRequest = { tenant: tenant ?? '*', from: input.from, to: input.to };
    const first = await this.reader.exportRange(input.from, input.to, tenant, null, EXPORT_PAGE_SIZE);
    this.access.exportStarted(caller, access, ctx);
    return new AuditExport(this.reader, this.access, caller, { from: input.from, to: input.to, tenant, access, ctx }, first);
  }
}
