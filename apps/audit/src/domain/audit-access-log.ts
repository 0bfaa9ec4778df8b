import { isIP } from 'node:net';
import type { SecurityEventInput, SecurityEventOutcome } from '@soma/contracts';
import { maskSecretsInText } from '@soma/masking';
import type { AccessDenialReason, AuditCaller } from './access.js';
import { AuditError, AuditErrorCode } from './audit.errors.js';
import type { SecurityEventSink } from './ports.js';

/** The reads of the audit log; each is the `action` of its `audit_log_accessed` event. */
export type AuditReadOperation = 'query_events' | 'count_events' | 'verify_chain' | 'export_events';

/** Where a call came from, as the transport saw it (the event's actor besides the caller's subject). */
export interface AccessContext {
  ip_address?: string | null;
  user_agent?: string | null;
}

/**
 * What a caller asked for, as it is recorded. Never a clear user id: a query by user is recorded with the
 * subject's keyed pseudonym (the value its rows carry), which erasure makes unlinkable like the rows.
 */
export interface AccessRequest {
  /** The tenant read (asked for, or the one the caller is confined to); `*` = every tenant. */
  tenant: string;
  event_type?: string;
  outcome?: string;
  from?: Date;
  to?: Date;
  /** A query by user_id. */
  by_user?: boolean;
  /** That subject's pseudonym; null when unknown or erased (nothing was found), or when not resolved (denied). */
  user_pseudonym?: string | null;
  page_size?: number;
  /** A page after the first (a page token was given). */
  continued?: boolean;
}

/** What left the service. */
export interface AccessResult {
  /** Audit records whose content was returned. */
  records_returned: number;
  /** Of those, records returned with clear personal fields (only a query by user decrypts them). */
  personal_records: number;
  /** Operation-specific figures (`count`, `rows_checked`, `more`, …). */
  figures?: Record<string, unknown>;
}

const TYPE = 'audit_log_accessed' as const;

/** Caller-side addresses that are not an IP (or IPv4-mapped IPv6) are recorded as unknown, not refused. */
function ipOrNull(ip: string | null | undefined): string | null {
  if (!ip) return null;
  const bare = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  return isIP(bare) ? bare : null;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A caller-supplied string (the tenant asked for) as recorded: without what PostgreSQL cannot store (NUL,
 * lone surrogates: ingest would dead-letter the event instead of logging it) and without credential-shaped
 * parts (the publisher masks `details`, not `resource`).
 */
function recordable(s: string): string {
  return maskSecretsInText(s.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD'));
}

function filterOf(r: AccessRequest): Record<string, unknown> {
  return {
    tenant: recordable(r.tenant),
    event_type: r.event_type ?? null,
    outcome: r.outcome ?? null,
    from: r.from?.toISOString() ?? null,
    to: r.to?.toISOString() ?? null,
    by_user: r.by_user ?? false,
    ...(r.by_user ? { user_pseudonym: r.user_pseudonym ?? null } : {}),
  };
}

/**
 * "Who watched the watchers": one `audit_log_accessed` event per read of the audit log (ADR 0408).
 * The event belongs to the caller's tenant (`*` for all-tenant principals), like every event of the
 * suite; `actor.user_id` is the caller's subject, which ingest pseudonymises like any actor. The
 * credential never enters, only its id. A successful read is recorded before its answer leaves, and
 * refused (AUDIT_UNAVAILABLE) when its event cannot be buffered; a refusal is recorded best effort.
 */
export class AuditAccessLog {
  constructor(private readonly sink: SecurityEventSink) {}

  /** A read about to answer. Throws AUDIT_UNAVAILABLE when it cannot be recorded: the caller must not answer then. */
  granted(caller: AuditCaller, operation: AuditReadOperation, request: AccessRequest, result: AccessResult, ctx: AccessContext = {}): void {
    this.publishOrRefuse(operation, this.event(caller, operation, request, ctx, 'success', null, {
      ...(request.page_size !== undefined ? { page_size: request.page_size, continued: request.continued ?? false } : {}),
      records_returned: result.records_returned,
      personal_revealed: result.personal_records > 0,
      personal_records: result.personal_records,
      ...result.figures,
    }));
  }

  /** A refused read. Best effort: the refusal stands whether or not its event could be buffered. */
  denied(caller: AuditCaller, operation: AuditReadOperation, request: AccessRequest, reason: AccessDenialReason, neededScope: string | undefined, ctx: AccessContext = {}): void {
    try {
      this.sink.publish(this.event(caller, operation, request, ctx, 'denied', reason, { ...(neededScope ? { needed_scope: neededScope } : {}) }));
    } catch {
      // The caller is refused either way; the publisher itself logs a full buffer loudly.
    }
  }

  /**
   * An export about to send its first byte: recorded first (fail closed, like `granted`). How many records
   * it streamed is known only at its end, which `exportFinished` records.
   */
  exportStarted(caller: AuditCaller, request: AccessRequest, ctx: AccessContext = {}): void {
    this.publishOrRefuse('export_events', this.event(caller, 'export_events', request, ctx, 'success', null, { phase: 'started', personal_revealed: false }));
  }

  /** An export's end: the records handed to the transport and whether the stream completed. Best effort (they have left). */
  exportFinished(caller: AuditCaller, request: AccessRequest, outcome: { records_returned: number; complete: boolean }, ctx: AccessContext = {}): void {
    const event = this.event(caller, 'export_events', request, ctx, outcome.complete ? 'success' : 'failure', outcome.complete ? null : 'stream_interrupted', {
      phase: 'finished',
      complete: outcome.complete,
      records_returned: outcome.records_returned,
      personal_revealed: false,
      personal_records: 0,
    });
    try {
      this.sink.publish(event);
    } catch {
      // Nothing left to refuse; the `started` event already names the caller and the range.
    }
  }

  private publishOrRefuse(operation: AuditReadOperation, event: SecurityEventInput): void {
    try {
      this.sink.publish(event);
    } catch (e) {
      throw new AuditError(AuditErrorCode.AuditUnavailable, 'this read cannot be recorded now; it is refused rather than answered unrecorded', { operation, error: (e as Error)?.name });
    }
  }

  private event(
    caller: AuditCaller,
    operation: AuditReadOperation,
    request: AccessRequest,
    ctx: AccessContext,
    outcome: SecurityEventOutcome,
    reason: string | null,
    extra: Record<string, unknown>,
  ): SecurityEventInput {
    return {
      type: TYPE,
      tenant: caller.tenant,
      action: operation,
      resource: `audit_log:${recordable(request.tenant)}`,
      outcome,
      reason,
      actor: { user_id: caller.subject.slice(0, 256), ip_address: ipOrNull(ctx.ip_address), user_agent: ctx.user_agent?.slice(0, 1024) ?? null },
      details: {
        operation,
        ...(caller.credential_id ? { credential_id: caller.credential_id } : {}),
        filter: filterOf(request),
        ...extra,
      },
    };
  }
}
