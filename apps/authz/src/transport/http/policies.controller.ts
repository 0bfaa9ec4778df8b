import { Controller, Get, Headers, Inject, Query } from '@nestjs/common';
import { requestIdFrom } from '@soma/service-runtime';
import { AuthzError, AuthzErrorCode } from '../../domain/authz.errors.js';
import { AuthzDecisions } from '../../domain/authz-decisions.js';
import type { CallerAccess } from '../../domain/caller-access.js';
import type { PolicyWatcher } from '../../infra/policy-watcher.js';
import { AUTHZ_DECISIONS, CALLER_ACCESS, POLICY_WATCHER } from '../../authz.tokens.js';

/** Read-only view of what the service decides with: the loaded policy set and its revision. */
@Controller('v1')
export class PoliciesHttpController {
  constructor(
    @Inject(POLICY_WATCHER) private readonly watcher: PolicyWatcher,
    @Inject(AUTHZ_DECISIONS) private readonly authz: AuthzDecisions,
    @Inject(CALLER_ACCESS) private readonly access: CallerAccess,
  ) {}

  /** The policy set is global: with AUTHZ_CALLER_AUTH=required the view needs authz:read and a platform credential (tenant *). */
  @Get('policies')
  async policies(@Headers('authorization') authorization?: string, @Headers('x-request-id') requestId?: string): Promise<Record<string, unknown>> {
    await this.access.authorize(authorization, 'authz:read', undefined, requestIdFrom(requestId));
    const v = this.watcher.view();
    return {
      mode: v.mode,
      revision: v.revision,
      engine_reachable: v.error === null && v.revision !== null,
      engine_error: v.error,
      policies: v.policies,
      relationships_enabled: this.authz.relationshipsEnabled,
      cache: this.authz.cacheSizes,
    };
  }

  /** The Rego text of one loaded module (server mode), by its id as listed in /v1/policies. */
  @Get('policies/source')
  async source(@Query('id') id: string | undefined, @Headers('authorization') authorization?: string, @Headers('x-request-id') requestId?: string): Promise<{ id: string; raw: string }> {
    await this.access.authorize(authorization, 'authz:read', undefined, requestIdFrom(requestId));
    if (typeof id !== 'string' || !id) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'query parameter id is required');
    const raw = this.watcher.policyText(id);
    if (raw === undefined) throw new AuthzError(AuthzErrorCode.NotFound, 'no loaded policy has this id');
    return { id, raw };
  }
}
