import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { decodeInput } from '@soma/service-runtime';
import { AUDIT_AUTH } from '../../audit.tokens.js';
import type { AuditCaller } from '../../domain/access.js';
import type { AccessContext } from '../../domain/audit-access-log.js';
import type { AuditAuthenticator } from '../../infra/export-auth.js';
import { AuditQueries, type AuditRecordView } from '../../domain/audit-query.js';
import type { VerifyResult } from '../../domain/verify-chain.js';
import { EventFilterDto, RangeDto, queryInputOf, rangeOf, withoutDefaults } from './audit.dto.js';

interface FilterWire {
  filter?: Record<string, unknown> | null;
  page_size?: number;
  page_token?: string;
}

export function recordToWire(r: AuditRecordView): Record<string, unknown> {
  return {
    id: r.id,
    event_id: r.event_id,
    timestamp: r.timestamp,
    occurred_at: r.occurred_at,
    event_type: r.event_type,
    tenant: r.tenant,
    service: r.service,
    user_pseudonym: r.user_pseudonym ?? '',
    ip_network: r.ip_network ?? '',
    personal_revealed: r.personal !== null,
    user_id: r.personal?.user_id ?? '',
    ip_address: r.personal?.ip_address ?? '',
    user_agent: r.personal?.user_agent ?? '',
    action: r.action,
    resource: r.resource,
    outcome: r.outcome,
    reason: r.reason ?? '',
    details_json: JSON.stringify(r.details),
    trace_id: r.trace_id ?? '',
    chain_partition: r.chain_partition,
    chain_seq: String(r.chain_seq),
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

export function verifyToWire(v: VerifyResult): Record<string, unknown> {
  return {
    intact: v.intact,
    chains_checked: String(v.chains_checked),
    rows_checked: String(v.rows_checked),
    checkpoints_checked: String(v.checkpoints_checked),
    broken: v.broken ? { ...v.broken, chain_seq: String(v.broken.chain_seq) } : null,
  };
}

function first(md: Metadata | undefined, key: string): string | undefined {
  const v = md?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/** `ipv4:127.0.0.1:5000` / `ipv6:[::1]:5000` → the address, when it is one. */
function peerAddress(call: ServerUnaryCall<unknown, unknown> | undefined): string | null {
  const peer = call?.getPeer?.() ?? '';
  const m = /^(?:ipv4:)?(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(peer) ?? /^ipv6:\[([0-9a-fA-F:.]+)\]:\d+$/.exec(peer);
  return m?.[1] ?? null;
}

/** Who is calling from where, for the call's `audit_log_accessed` event. */
function contextOf(md: Metadata | undefined, call: ServerUnaryCall<unknown, unknown> | undefined): AccessContext {
  return { ip_address: peerAddress(call), user_agent: first(md, 'user-agent') ?? null };
}

/** soma.audit.v1.AuditService: authenticate → decode → one domain call (authorises and records it) → map. */
@Controller()
export class AuditGrpcController {
  constructor(
    @Inject(AuditQueries) private readonly queries: AuditQueries,
    @Inject(AUDIT_AUTH) private readonly auth: AuditAuthenticator,
  ) {}

  private caller(md: Metadata | undefined): Promise<AuditCaller> {
    return this.auth.authenticate(first(md, 'authorization'));
  }

  private filterOf(req: FilterWire): EventFilterDto {
    return decodeInput(EventFilterDto, { ...withoutDefaults(req.filter), ...withoutDefaults({ page_size: req.page_size, page_token: req.page_token }) });
  }

  @GrpcMethod('AuditService', 'QueryEvents')
  async queryEvents(req: FilterWire, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<Record<string, unknown>> {
    const caller = await this.caller(md);
    const dto = this.filterOf(req);
    const result = await this.queries.query(caller, queryInputOf(dto), contextOf(md, call));
    return { records: result.records.map(recordToWire), next_page_token: result.next_page_token };
  }

  @GrpcMethod('AuditService', 'CountEvents')
  async countEvents(req: FilterWire, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<Record<string, unknown>> {
    const caller = await this.caller(md);
    const dto = this.filterOf({ filter: req.filter });
    return { count: String(await this.queries.count(caller, queryInputOf(dto), contextOf(md, call))) };
  }

  @GrpcMethod('AuditService', 'VerifyChain')
  async verifyChain(req: Record<string, unknown>, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<Record<string, unknown>> {
    const caller = await this.caller(md);
    const dto = decodeInput(RangeDto, withoutDefaults(req));
    return verifyToWire(await this.queries.verify(caller, rangeOf(dto), contextOf(md, call)));
  }
}
