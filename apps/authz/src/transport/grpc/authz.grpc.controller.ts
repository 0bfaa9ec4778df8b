import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { AuthzError, AuthzErrorCode } from '../../domain/authz.errors.js';
import { AuthzDecisions, type Decision } from '../../domain/authz-decisions.js';
import type { RelationshipTuple } from '../../domain/ports.js';
import { AUTHZ_DECISIONS } from '../../authz.tokens.js';

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

@Controller()
export class AuthzGrpcController {
  constructor(@Inject(AUTHZ_DECISIONS) private readonly authz: AuthzDecisions) {}

  @GrpcMethod('AuthzService', 'CheckTool')
  checkTool(req: Payload): Promise<Decision> {
    const principal = obj(req, 'principal', true);
    return this.authz.checkTool(str(req, 'tool'), {
      sub: str(principal, 'sub', 'principal.'),
      tenant: str(principal, 'tenant', 'principal.'),
      persona_id: str(principal, 'persona_id', 'principal.'),
    }, { ip_address: str(req, 'ip_address'), user_agent: str(req, 'user_agent') });
  }

  @GrpcMethod('AuthzService', 'Evaluate')
  async evaluate(req: Payload): Promise<{ decision: Decision; result_json: string }> {
    const principal = obj(req, 'principal', false);
    const r = await this.authz.evaluate(str(req, 'path'), str(req, 'input_json'), principal ? { sub: str(principal, 'sub'), tenant: str(principal, 'tenant') } : null);
    return { decision: r.decision, result_json: r.resultJson };
  }

  @GrpcMethod('AuthzService', 'Check')
  check(req: Payload): Promise<Decision> {
    return this.authz.check(tupleOf(obj(req, 'tuple', true), 'tuple'), str(req, 'consistency_token'), str(req, 'tenant'));
  }

  @GrpcMethod('AuthzService', 'BatchCheck')
  async batchCheck(req: Payload): Promise<{ results: { correlation_id: string; decision: Decision }[] }> {
    const items = list(req, 'checks').map((c, i) => ({ correlation_id: str(c, 'correlation_id', `checks[${i}].`), tuple: tupleOf(obj(c, 'tuple', true), `checks[${i}].tuple`) }));
    return { results: await this.authz.batchCheck(items, str(req, 'consistency_token'), str(req, 'tenant')) };
  }

  @GrpcMethod('AuthzService', 'ListObjects')
  listObjects(req: Payload): Promise<{ objects: string[]; truncated: boolean; decision_id: string }> {
    return this.authz.listObjects(str(req, 'user'), str(req, 'relation'), str(req, 'type'), str(req, 'consistency_token'));
  }

  @GrpcMethod('AuthzService', 'WriteTuples')
  writeTuples(req: Payload): Promise<{ consistency_token: string; decision_id: string; count: number }> {
    const tuples = list(req, 'tuples').map((t, i) => tupleOf(t, `tuples[${i}]`));
    return this.authz.writeTuples(tuples, str(req, 'tenant'), str(req, 'actor'));
  }

  @GrpcMethod('AuthzService', 'DeleteTuples')
  deleteTuples(req: Payload): Promise<{ consistency_token: string; decision_id: string; count: number }> {
    const tuples = list(req, 'tuples').map((t, i) => tupleOf(t, `tuples[${i}]`));
    return this.authz.deleteTuples(tuples, str(req, 'tenant'), str(req, 'actor'));
  }
}
