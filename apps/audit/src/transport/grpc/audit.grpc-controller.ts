import type { Metadata } from '@grpc/grpc-js';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { decodeInput } from '@soma/service-runtime';
import { AUDIT_AUTH } from '../../audit.tokens.js';
import { authorizeGlobal, authorizeTenantRead, type AuditCaller } from '../../domain/access.js';
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

/** soma.audit.v1.AuditService: authenticate → decode → authorise → one domain call → map. */
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
  async queryEvents(req: FilterWire, md: Metadata): Promise<Record<string, unknown>> {
    const caller = await this.caller(md);
    const dto = this.filterOf(req);
    dto.tenant = authorizeTenantRead(caller, 'audit:read', dto.tenant);
    const result = await this.queries.query(queryInputOf(dto));
    return { records: result.records.map(recordToWire), next_page_token: result.next_page_token };
  }

  @GrpcMethod('AuditService', 'CountEvents')
  async countEvents(req: FilterWire, md: Metadata): Promise<Record<string, unknown>> {
    const caller = await this.caller(md);
    const dto = this.filterOf({ filter: req.filter });
    dto.tenant = authorizeTenantRead(caller, 'audit:read', dto.tenant);
    return { count: String(await this.queries.count(queryInputOf(dto))) };
  }

  @GrpcMethod('AuditService', 'VerifyChain')
  async verifyChain(req: Record<string, unknown>, md: Metadata): Promise<Record<string, unknown>> {
    const caller = await this.caller(md);
    const dto = decodeInput(RangeDto, withoutDefaults(req));
    authorizeGlobal(caller, 'audit:verify');
    return verifyToWire(await this.queries.verify(rangeOf(dto)));
  }
}
