import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { decodeInput } from '@soma/service-runtime';
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

/** soma.audit.v1.AuditService: decode → validate → one domain call → map. */
@Controller()
export class AuditGrpcController {
  constructor(@Inject(AuditQueries) private readonly queries: AuditQueries) {}

  private filterOf(req: FilterWire): EventFilterDto {
    return decodeInput(EventFilterDto, { ...withoutDefaults(req.filter), ...withoutDefaults({ page_size: req.page_size, page_token: req.page_token }) });
  }

  @GrpcMethod('AuditService', 'QueryEvents')
  async queryEvents(req: FilterWire): Promise<Record<string, unknown>> {
    const result = await this.queries.query(queryInputOf(this.filterOf(req)));
    return { records: result.records.map(recordToWire), next_page_token: result.next_page_token };
  }

  @GrpcMethod('AuditService', 'CountEvents')
  async countEvents(req: FilterWire): Promise<Record<string, unknown>> {
    return { count: String(await this.queries.count(queryInputOf(this.filterOf({ filter: req.filter })))) };
  }

  @GrpcMethod('AuditService', 'VerifyChain')
  async verifyChain(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const dto = decodeInput(RangeDto, withoutDefaults(req));
    return verifyToWire(await this.queries.verify(rangeOf(dto)));
  }
}
