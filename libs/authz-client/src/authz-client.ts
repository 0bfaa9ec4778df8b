import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { GRPC_REASON_KEY, REQUEST_ID_KEY, grpcClientConstructor } from '@soma/contracts';
import { injectTraceContext } from '@soma/observability';
import type {
  BatchCheckItem,
  BatchCheckResult,
  Decision,
  EvaluateResult,
  ListObjectsResult,
  Principal,
  RelationshipTuple,
  ServiceInfo,
  WriteTuplesResult,
} from './types.js';

export interface AuthzClientOptions {
  /** host:port of the authz gRPC server, e.g. 127.0.0.1:20030. */
  address: string;
  /** Per-call deadline. Authorization is on the hot path: keep it short. Default 2000 ms. */
  deadlineMs?: number;
  /** Channel credentials; insecure (loopback / mesh-encrypted) when omitted. */
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options (keepalive etc.). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * This service's own credential (JWT or sk-soma-… API key with authz:check / authz:write, tenant `*` to ask about
   * any tenant), sent as `authorization: Bearer …` on every call; authz requires it when AUTHZ_CALLER_AUTH=required.
   */
  credential?: string;
}

export interface CallOptions {
  /** Propagated as x-request-id so the caller's log line and the authz decision join up. */
  requestId?: string;
  deadlineMs?: number;
  /** End-user address and agent (checkTool), recorded in the decision's audit event only. */
  ipAddress?: string;
  userAgent?: string;
  /** Overrides the client's credential for this call. */
  credential?: string;
}

/** A failed call (transport or status), with the gRPC code and Soma reason code from the trailers. */
export class AuthzClientError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly reason: string | undefined,
    readonly requestId: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuthzClientError';
  }
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

function serviceConstructor(): grpc.ServiceClientConstructor {
  return grpcClientConstructor('authz');
}

/**
 * Typed client of soma.authz.v1.AuthzService for the other services. One instance per process
 * (it holds one HTTP/2 channel). Every call has a deadline and carries x-request-id and the W3C
 * trace context. Failed calls reject with AuthzClientError; for a yes/no answer that can never
 * throw, use `allows*`, which fail closed (false) on any error.
 */
export class AuthzClient {
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;
  private readonly credential: string | undefined;

  constructor(options: AuthzClientOptions) {
    const Ctor = serviceConstructor();
    this.client = new Ctor(options.address, options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
    this.deadlineMs = options.deadlineMs ?? 2000;
    this.credential = options.credential;
  }

  evaluate(path: string, input: Record<string, unknown>, principal?: Principal, opts?: CallOptions): Promise<EvaluateResult> {
    return this.call('Evaluate', { path, input_json: JSON.stringify(input), principal: principal ?? null }, opts);
  }

  checkTool(tool: string, principal: Principal, opts?: CallOptions): Promise<Decision> {
    return this.call('CheckTool', { tool, principal, ip_address: opts?.ipAddress ?? '', user_agent: opts?.userAgent ?? '' }, opts);
  }

  check(tuple: RelationshipTuple, extra: { tenant?: string; consistencyToken?: string } = {}, opts?: CallOptions): Promise<Decision> {
    return this.call('Check', { tuple, tenant: extra.tenant ?? '', consistency_token: extra.consistencyToken ?? '' }, opts);
  }

  async batchCheck(checks: BatchCheckItem[], extra: { tenant?: string; consistencyToken?: string } = {}, opts?: CallOptions): Promise<BatchCheckResult[]> {
    const res = await this.call<{ results: BatchCheckResult[] }>('BatchCheck', { checks, tenant: extra.tenant ?? '', consistency_token: extra.consistencyToken ?? '' }, opts);
    return res.results;
  }

  listObjects(user: string, relation: string, type: string, extra: { tenant?: string; consistencyToken?: string } = {}, opts?: CallOptions): Promise<ListObjectsResult> {
    return this.call('ListObjects', { user, relation, type, tenant: extra.tenant ?? '', consistency_token: extra.consistencyToken ?? '' }, opts);
  }

  writeTuples(tuples: RelationshipTuple[], extra: { tenant?: string; actor?: string } = {}, opts?: CallOptions): Promise<WriteTuplesResult> {
    return this.call('WriteTuples', { tuples, tenant: extra.tenant ?? '', actor: extra.actor ?? '' }, opts);
  }

  deleteTuples(tuples: RelationshipTuple[], extra: { tenant?: string; actor?: string } = {}, opts?: CallOptions): Promise<WriteTuplesResult> {
    return this.call('DeleteTuples', { tuples, tenant: extra.tenant ?? '', actor: extra.actor ?? '' }, opts);
  }

  getServiceInfo(opts?: CallOptions): Promise<ServiceInfo> {
    return this.call('GetServiceInfo', {}, opts);
  }

  /** Fail-closed yes/no: any error (deadline, unavailable, invalid) is false. */
  async allowsTool(tool: string, principal: Principal, opts?: CallOptions): Promise<boolean> {
    try {
      return (await this.checkTool(tool, principal, opts)).allowed === true;
    } catch {
      return false;
    }
  }

  /** Fail-closed yes/no for a relationship. */
  async allows(tuple: RelationshipTuple, extra: { tenant?: string; consistencyToken?: string } = {}, opts?: CallOptions): Promise<boolean> {
    try {
      return (await this.check(tuple, extra, opts)).allowed === true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.client.close();
  }

  private call<T>(method: string, request: unknown, opts?: CallOptions): Promise<T> {
    const requestId = opts?.requestId ?? randomUUID();
    const md = new grpc.Metadata();
    md.set(REQUEST_ID_KEY, requestId);
    const credential = opts?.credential ?? this.credential;
    if (credential) md.set('authorization', `Bearer ${credential}`);
    for (const [k, v] of Object.entries(injectTraceContext({}))) md.set(k, v);
    const deadline = new Date(Date.now() + (opts?.deadlineMs ?? this.deadlineMs));
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    if (!fn) return Promise.reject(new Error(`unknown AuthzService method ${method}`));
    return new Promise<T>((resolve, reject) => {
      fn.call(this.client, request, md, { deadline }, (err, res) => {
        if (err) {
          const reason = err.metadata?.get(GRPC_REASON_KEY)[0];
          reject(new AuthzClientError(err.code, typeof reason === 'string' ? reason : undefined, requestId, err.details || err.message));
        } else resolve(res as T);
      });
    });
  }
}
