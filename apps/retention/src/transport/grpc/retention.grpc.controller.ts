import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import { InvalidInputError, REQUEST_ID_KEY } from '@soma/contracts';
import { decodeInput, requestIdFrom } from '@soma/service-runtime';
import { authorizeGlobal } from '../../domain/access.js';
import type { ConsentRecord as DomainConsent, Authenticator, Caller, RequestContext } from '../../domain/ports.js';
import { EXPORT_FORMAT, type GdprService } from '../../domain/gdpr.service.js';
import type { PolicyRunResult, RetentionRunner } from '../../domain/retention-runner.js';
import type { RetentionPolicy } from '../../domain/policy.js';
import { AUTHENTICATOR, GDPR_SERVICE, RETENTION_RUNNER } from '../../retention.tokens.js';
import { EraseUserDataDto, GetConsentDto, RecordConsentDto, RunPolicyDto, SubjectDto } from './retention.dto.js';

const SERVICE = 'RetentionService';

function first(md: Metadata | undefined, key: string): string {
  const v = md?.get(key)[0];
  return typeof v === 'string' ? v : '';
}

const policyWire = (p: RetentionPolicy) => ({
  name: p.name,
  table: p.table,
  timestamp_column: p.timestampColumn,
  key_column: p.keyColumn,
  max_age_days: p.maxAgeDays,
  batch_size: p.batchSize,
  pause_ms: p.pauseMs,
  schedule: p.schedule,
  mode: p.mode,
  max_run_seconds: p.maxRunSeconds,
  batch_target_ms: p.batchTargetMs,
  pause_percent: p.pausePercent,
});

const resultWire = (r: PolicyRunResult) => ({
  policy: r.policy,
  table: r.table,
  mode: r.mode,
  cutoff: r.cutoff,
  dry_run: r.dryRun,
  rows_expired: String(r.rowsExpired),
  rows_deleted: String(r.rowsDeleted),
  batches: r.batches,
  partitions_dropped: r.partitionsDropped,
  outcome: r.outcome,
  reason: r.reason,
  duration_ms: String(r.durationMs),
});

const consentWire = (r: DomainConsent) => ({
  tenant: r.tenant,
  user_id: r.userId,
  purpose: r.purpose,
  granted: r.granted,
  recorded_at: r.recordedAt,
  source: r.source,
  policy_version: r.policyVersion,
  recorded_by: r.recordedBy,
});

/** soma.retention.v1.RetentionService: authenticate → decode → one domain call → map. */
@Controller()
export class RetentionGrpcController {
  constructor(
    @Inject(RETENTION_RUNNER) private readonly runner: RetentionRunner,
    @Inject(GDPR_SERVICE) private readonly gdpr: GdprService,
    @Inject(AUTHENTICATOR) private readonly authenticator: Authenticator,
  ) {}

  private async caller(md: Metadata | undefined): Promise<{ caller: Caller; ctx: RequestContext }> {
    const ctx: RequestContext = {
      requestId: requestIdFrom(md?.get(REQUEST_ID_KEY)),
      bearer: first(md, 'authorization'),
      userAgent: first(md, 'x-soma-user-agent') || undefined,
    };
    const caller = await this.authenticator.authenticate(ctx.bearer, ctx);
    return { caller, ctx };
  }

  @GrpcMethod(SERVICE, 'ListPolicies')
  async listPolicies(data: unknown, md: Metadata): Promise<unknown> {
    const { caller } = await this.caller(md);
    // An empty message: nothing to validate beyond its shape (class-validator refuses decorator-less DTOs).
    if (data !== undefined && data !== null && (typeof data !== 'object' || Object.keys(data).length > 0)) throw new InvalidInputError(['ListPoliciesRequest has no fields']);
    authorizeGlobal(caller, 'retention:admin');
    return { policies: this.runner.list().map(policyWire) };
  }

  @GrpcMethod(SERVICE, 'RunPolicy')
  async runPolicy(data: unknown, md: Metadata): Promise<unknown> {
    const { caller } = await this.caller(md);
    const req = decodeInput(RunPolicyDto, data);
    const results = await this.runner.runAs(caller, req.policy || undefined, { dryRun: req.dry_run, trigger: 'api' });
    return { results: results.map(resultWire) };
  }

  @GrpcMethod(SERVICE, 'ExportUserData')
  async exportUserData(data: unknown, md: Metadata): Promise<unknown> {
    const { caller, ctx } = await this.caller(md);
    const req = decodeInput(SubjectDto, data);
    const out = await this.gdpr.exportUserData(caller, req.tenant, req.user_id, ctx);
    return { format: EXPORT_FORMAT, document_json: out.json, sha256: out.sha256 };
  }

  @GrpcMethod(SERVICE, 'EraseUserData')
  async eraseUserData(data: unknown, md: Metadata): Promise<unknown> {
    const { caller, ctx } = await this.caller(md);
    const req = decodeInput(EraseUserDataDto, data);
    const r = await this.gdpr.eraseUserData(caller, req.tenant, req.user_id, req.reason, ctx);
    return {
      rows_deleted: r.rowsDeleted.map((t) => ({ table: t.table, rows: String(t.rows) })),
      consent_records_deleted: String(r.consentRecordsDeleted),
      api_keys_revoked: r.apiKeysRevoked,
      tokens_revoked_before: r.tokensRevokedBefore,
      audit_key_destroyed: r.auditKeyDestroyed,
      audit_pseudonym: r.auditPseudonym ?? '',
    };
  }

  @GrpcMethod(SERVICE, 'RecordConsent')
  async recordConsent(data: unknown, md: Metadata): Promise<unknown> {
    const { caller, ctx } = await this.caller(md);
    const req = decodeInput(RecordConsentDto, data);
    const record = await this.gdpr.recordConsent(
      caller,
      { tenant: req.tenant, userId: req.user_id, purpose: req.purpose, granted: req.granted, source: req.source, policyVersion: req.policy_version },
      ctx,
    );
    return { record: consentWire(record) };
  }

  @GrpcMethod(SERVICE, 'GetConsent')
  async getConsent(data: unknown, md: Metadata): Promise<unknown> {
    const { caller } = await this.caller(md);
    const req = decodeInput(GetConsentDto, data);
    const r = await this.gdpr.getConsent(caller, req.tenant, req.user_id, req.purpose, req.include_history);
    return { current: r.current.map(consentWire), history: r.history.map(consentWire) };
  }
}
