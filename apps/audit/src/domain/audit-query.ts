import type { SecurityEventOutcome } from '@soma/contracts';
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

/** The read side of the audit log: queries, counts, chain verification. */
export class AuditQueries {
  constructor(
    private readonly reader: AuditLogReader,
    private readonly kek: Buffer,
    private readonly signer: Pick<CheckpointSigner, 'verify'>,
  ) {}

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

  async query(input: QueryInput): Promise<{ records: AuditRecordView[]; next_page_token: string }> {
    const size = input.page_size || DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) throw new AuditError(AuditErrorCode.InvalidQuery, `page_size must be 1..${MAX_PAGE_SIZE}`);
    const after = input.page_token ? decodePageToken(input.page_token) : null;
    const resolved = await this.filterOf(input);
    if (!resolved) return { records: [], next_page_token: '' };
    const rows = await this.reader.query(resolved.filter, after, size + 1);
    const page = rows.slice(0, size);
    const records = page.map((row) => {
      let personal: PersonalFields | null = null;
      if (resolved.key && row.pii) {
        try {
          personal = decryptPii(resolved.key, row.event_id, row.pii);
        } catch {
          personal = null; // not this subject's ciphertext: show the stored form
        }
      }
      return toView(row, personal);
    });
    const lastRow = page[page.length - 1];
    return { records, next_page_token: rows.length > size && lastRow ? encodePageToken({ timestamp: lastRow.timestamp, id: lastRow.id }) : '' };
  }

  async count(input: QueryInput): Promise<number> {
    const resolved = await this.filterOf(input);
    return resolved ? this.reader.count(resolved.filter) : 0;
  }

  async verify(range: TimeRange): Promise<VerifyResult> {
    checkRange(range.from, range.to);
    return verifyChains(this.reader, this.signer, range);
  }
}
