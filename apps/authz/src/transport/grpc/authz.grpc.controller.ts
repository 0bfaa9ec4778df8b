import type { Metadata } from '@grpc/grpc-js';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { REQUEST_ID_KEY } from '@soma/contracts';
import { requestIdFrom } from '@soma/service-runtime';
import { AuthzError, AuthzErrorCode } from '../../domain/authz.errors.js';
import { AuthzDecisions, type Decision } from '../../domain/authz-decisions.js';
import type { AuthzCaller, AuthzPermission, CallerAccess } from '../../domain/caller-access.js';
import type { RelationshipTuple } from '../../domain/ports.js';
import { AUTHZ_DECISIONS, CALLER_ACCESS } from '../../authz.tokens.js';

/*
 * Requests are checked here for shape (types, presence) by hand rather than through class-validator
 * DTOs: CheckTool is on every sensitive action of every service and a DTO round trip costs more than
 * the cached decision itself. The domain validates content (formats, sizes) for every call.
 */

type Payload = Record<string, unknown> | null | undefined;

function invalid(message: string): AuthzError {
  return new AuthzError(AuthzErrorCode.InvalidArgument, message);
}

function str(p: Payload, field: string, prefix = ''): string {
  const v = p?.[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalid(`${prefix}${field} must be a string`);
  return v;
}

function obj(p: Payload, field: string, required: boolean): Payload {
  const v = p?.[field];
  if (v === undefined || v === null) {
    if (required) throw invalid(`${field} is required`);
    return null;
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${field} must be a message`);
  return v as Payload;
}

function tupleOf(p: Payload, prefix: string): RelationshipTuple {
  if (!p || typeof p !== 'object') throw invalid(`${prefix} is required`);
  return { user: str(p, 'user', `${prefix}.`), relation: str(p, 'relation', `${prefix}.`), object: str(p, 'object', `${prefix}.`) };
}

function list(p: Payload, field: string): Payload[] {
  const v = p?.[field] ?? [];
  if (!Array.isArray(v)) throw invalid(`${field} must be a list`);
  return v as Payload[];
}

function header(md: Metadata | undefined, key: string): string | undefined {
  const v = md?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

@Controller()
export class AuthzGrpcController {
  constructor(
    @Inject(AUTHZ_DECISIONS) private readonly authz: AuthzDecisions,
    @Inject(CALLER_ACCESS) private readonly access: CallerAccess,
  ) {}

  /**
   * The caller's credential, scope and tenant, checked before the request is acted on (AUTHZ_CALLER_AUTH=required).
   * Returns undefined without a promise when caller authentication is off, so the hot path awaits nothing extra.
   */
  private allow(md: Metadata | undefined, permission: AuthzPermission, tenant: string): Promise<AuthzCaller | undefined> | undefined {
    if (!this.access.required) return undefined;
    return this.access.authorize(header(md, 'authorization'), permission, tenant || undefined, requestIdFrom(md?.get(REQUEST_ID_KEY)));
  }

  @GrpcMethod('AuthzService', 'CheckTool')
  async checkTool(req: Payload, md?: Metadata): Promise<Decision> {
    const principal = obj(req, 'principal', true);
    const p = { sub: str(principal, 'sub', 'principal.'), tenant: str(principal, 'tenant', 'principal.'), persona_id: str(principal, 'persona_id', 'principal.') };
    const client = { ip_address: str(req, 'ip_address'), user_agent: str(req, 'user_agent') };
    const gate = this.allow(md, 'authz:check', p.tenant);
    if (gate) await gate;
    return this.authz.checkTool(str(req, 'tool'), p, client);
  }

  @GrpcMethod('AuthzService', 'Evaluate')
  async evaluate(req: Payload, md?: Metadata): Promise<{ decision: Decision; result_json: string }> {
    const principal = obj(req, 'principal', false);
    const p = principal ? { sub: str(principal, 'sub'), tenant: str(principal, 'tenant') } : null;
    await this.allow(md, 'authz:check', p?.tenant ?? '');
    const r = await this.authz.evaluate(str(req, 'path'), str(req, 'input_json'), p);
    return { decision: r.decision, result_json: r.resultJson };
  }

  @GrpcMethod('AuthzService', 'Check')
  async check(req: Payload, md?: Metadata): Promise<Decision> {
    const tuple = tupleOf(obj(req, 'tuple', true), 'tuple');
    await this.allow(md, 'authz:check', str(req, 'tenant'));
    return this.authz.check(tuple, str(req, 'consistency_token'), str(req, 'tenant'));
  }

  @GrpcMethod('AuthzService', 'BatchCheck')
  async batchCheck(req: Payload, md?: Metadata): Promise<{ results: { correlation_id: string; decision: Decision }[] }> {
    const items = list(req, 'checks').map((c, i) => ({ correlation_id: str(c, 'correlation_id', `checks[${i}].`), tuple: tupleOf(obj(c, 'tuple', true), `checks[${i}].tuple`) }));
    await this.allow(md, 'authz:check', str(req, 'tenant'));
    return { results: await this.authz.batchCheck(items, str(req, 'consistency_token'), str(req, 'tenant')) };
  }

  @GrpcMethod('AuthzService', 'ListObjects')
  async listObjects(req: Payload, md?: Metadata): Promise<{ objects: string[]; truncated: boolean; decision_id: string }> {
    await this.allow(md, 'authz:check', str(req, 'tenant'));
    return this.authz.listObjects(str(req, 'user'), str(req, 'relation'), str(req, 'type'), str(req, 'consistency_token'));
  }

  @GrpcMethod('AuthzService', 'WriteTuples')
  async writeTuples(req: Payload, md?: Metadata): Promise<{ consistency_token: string; decision_id: string; count: number }> {
    const tuples = list(req, 'tuples').map((t, i) => tupleOf(t, `tuples[${i}]`));
    const caller = await this.allow(md, 'authz:write', str(req, 'tenant'));
    return this.authz.writeTuples(tuples, str(req, 'tenant'), str(req, 'actor') || caller?.sub || '');
  }

  @GrpcMethod('AuthzService', 'DeleteTuples')
  async deleteTuples(req: Payload, md?: Metadata): Promise<{ consistency_token: string; decision_id: string; count: number }> {
    const tuples = list(req, 'tuples').map((t, i) => tupleOf(t, `tuples[${i}]`));
    const caller = await this.allow(md, 'authz:write', str(req, 'tenant'));
    return this.authz.deleteTuples(tuples, str(req, 'tenant'), str(req, 'actor') || caller?.sub || '');
  }
}
