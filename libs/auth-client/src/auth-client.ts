import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { GRPC_REASON_KEY, REQUEST_ID_KEY, grpcClientConstructor } from '@soma/contracts';
import { injectTraceContext } from '@soma/observability';
import {
  principalFromWire,
  type ApiKeyRecord,
  type CreateApiKeyInput,
  type CreatedApiKey,
  type IssuedToken,
  type Principal,
  type PrincipalWire,
  type RotatedApiKey,
  type ServiceInfo,
  type SigningKeyInfo,
  type VerifyApiKeyResponse,
  type VerifyApiKeyResult,
} from './types.js';

export interface AuthClientOptions {
  /** host:port of the auth gRPC server, e.g. 127.0.0.1:20020. */
  address: string;
  /** Per-call deadline. Authentication is on every request: keep it short. Default 2000 ms. */
  deadlineMs?: number;
  /** Channel credentials; insecure (loopback / mesh-encrypted) when omitted. */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  /**
   * The caller's own credential (`Bearer …` or bare), sent as `authorization` metadata on
   * administrative calls (IssueToken, CreateApiKey, Revoke*, Rotate*). Needs scope `auth:admin`.
   */
  adminCredential?: string;
}

export interface CallOptions {
  /** Propagated as x-request-id so the caller's log line and the auth decision join up. */
  requestId?: string;
  /** W3C traceparent of the caller's span; when omitted the active OpenTelemetry context is injected. */
  traceparent?: string;
  tracestate?: string;
  deadlineMs?: number;
  /** End-user address and agent, recorded in authentication events. */
  ipAddress?: string;
  userAgent?: string;
  /** Every one of these scopes must be held (else PERMISSION_DENIED / INSUFFICIENT_SCOPE). */
  requiredScopes?: string[];
  /** Overrides the client's adminCredential for this call. */
  credential?: string;
}

/** A failed call (transport or status), with the gRPC code and Soma reason code from the trailers. */
export class AuthClientError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly reason: string | undefined,
    readonly requestId: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuthClientError';
  }

  /** True when the credential itself was refused (as opposed to auth being unreachable). */
  get isCredentialRejected(): boolean {
    return this.code === grpc.status.UNAUTHENTICATED || this.code === grpc.status.PERMISSION_DENIED;
  }
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

function serviceConstructor(): grpc.ServiceClientConstructor {
  return grpcClientConstructor('auth');
}

function bearerOf(credential: string): string {
  return /^bearer\s+/i.test(credential) ? credential : `Bearer ${credential}`;
}

/**
 * Typed client of soma.auth.v1.AuthService. One instance per process (it holds one HTTP/2 channel).
 * Every call has a deadline and carries x-request-id and the W3C trace context. Failed calls reject
 * with AuthClientError (code + soma-reason); callers must treat any rejection as "not authenticated"
 * (fail closed): UNAVAILABLE / DEADLINE_EXCEEDED mean auth could not answer, not that the caller is fine.
 */
export class AuthClient {
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;
  private readonly adminCredential: string | undefined;

  constructor(options: AuthClientOptions) {
    const Ctor = serviceConstructor();
    this.client = new Ctor(options.address, options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
    this.deadlineMs = options.deadlineMs ?? 2000;
    this.adminCredential = options.adminCredential;
  }

  /** Any bearer credential (JWT or API key, with or without "Bearer ") → principal. Rejects otherwise. */
  async authenticate(bearer: string, opts?: CallOptions): Promise<Principal> {
    const res = await this.call<{ principal: PrincipalWire }>(
      'Authenticate',
      { bearer, required_scopes: opts?.requiredScopes ?? [], ip_address: opts?.ipAddress ?? '', user_agent: opts?.userAgent ?? '' },
      opts,
      false,
    );
    return principalFromWire(res.principal);
  }

  /** Fail-closed helper: the principal, or undefined on any error (refused, unreachable, deadline). */
  async tryAuthenticate(bearer: string, opts?: CallOptions): Promise<Principal | undefined> {
    try {
      return await this.authenticate(bearer, opts);
    } catch {
      return undefined;
    }
  }

  async verifyToken(token: string, opts?: CallOptions): Promise<Principal> {
    const res = await this.call<{ principal: PrincipalWire }>('VerifyToken', { token, required_scopes: opts?.requiredScopes ?? [] }, opts, false);
    return principalFromWire(res.principal);
  }

  async verifyApiKey(key: string, opts?: CallOptions): Promise<VerifyApiKeyResponse> {
    const res = await this.call<{ result: VerifyApiKeyResult; principal: PrincipalWire | null; remaining: string; retry_after_ms: string }>(
      'VerifyApiKey',
      { key, required_scopes: opts?.requiredScopes ?? [] },
      opts,
      false,
    );
    return {
      result: res.result,
      ...(res.principal && res.result === 'VALID' ? { principal: principalFromWire(res.principal) } : {}),
      ...(Number(res.remaining) > 0 ? { remaining: Number(res.remaining) } : {}),
      ...(Number(res.retry_after_ms) > 0 ? { retryAfterMs: Number(res.retry_after_ms) } : {}),
    };
  }

  issueToken(input: { tenant: string; sub: string; personaId?: string; scopes?: string[]; ttlSeconds?: number }, opts?: CallOptions): Promise<IssuedToken> {
    return this.call('IssueToken', { tenant: input.tenant, sub: input.sub, persona_id: input.personaId ?? '', scopes: input.scopes ?? [], ttl_seconds: input.ttlSeconds ?? 0 }, opts, true);
  }

  revokeToken(input: { tenant: string; jti?: string; token?: string; expiresAt?: string }, opts?: CallOptions): Promise<{ jti: string; revoked_until: string }> {
    return this.call('RevokeToken', { tenant: input.tenant, jti: input.jti ?? '', token: input.token ?? '', expires_at: input.expiresAt ?? '' }, opts, true);
  }

  createApiKey(input: CreateApiKeyInput, opts?: CallOptions): Promise<CreatedApiKey> {
    return this.call('CreateApiKey', { ...input, scopes: input.scopes ?? [], metadata: input.metadata ?? {} }, opts, true);
  }

  async listApiKeys(tenant: string, includeRevoked = false, opts?: CallOptions): Promise<ApiKeyRecord[]> {
    const res = await this.call<{ api_keys: ApiKeyRecord[] }>('ListApiKeys', { tenant, include_revoked: includeRevoked }, opts, true);
    return res.api_keys;
  }

  async revokeApiKey(tenant: string, id: string, opts?: CallOptions): Promise<ApiKeyRecord> {
    return (await this.call<{ api_key: ApiKeyRecord }>('RevokeApiKey', { tenant, id }, opts, true)).api_key;
  }

  rotateApiKey(tenant: string, id: string, graceSeconds = 0, opts?: CallOptions): Promise<RotatedApiKey> {
    return this.call('RotateApiKey', { tenant, id, grace_seconds: graceSeconds }, opts, true);
  }

  async rotateTenantApiKeys(tenant: string, graceSeconds = 0, opts?: CallOptions): Promise<RotatedApiKey[]> {
    return (await this.call<{ rotated: RotatedApiKey[] }>('RotateTenantApiKeys', { tenant, grace_seconds: graceSeconds }, opts, true)).rotated;
  }

  /** Revoke every API key owned by sub and every token issued to sub before now (GDPR erasure). */
  async revokeSubject(tenant: string, sub: string, opts?: CallOptions): Promise<{ apiKeysRevoked: number; tokensRevokedBefore: string }> {
    const res = await this.call<{ api_keys_revoked: number; tokens_revoked_before: string }>('RevokeSubject', { tenant, sub }, opts, true);
    return { apiKeysRevoked: res.api_keys_revoked, tokensRevokedBefore: res.tokens_revoked_before };
  }

  rotateSigningKey(opts?: CallOptions): Promise<{ signing_key: SigningKeyInfo; verification_keys: SigningKeyInfo[] }> {
    return this.call('RotateSigningKey', {}, opts, true);
  }

  async listSigningKeys(opts?: CallOptions): Promise<SigningKeyInfo[]> {
    return (await this.call<{ keys: SigningKeyInfo[] }>('ListSigningKeys', {}, opts, true)).keys;
  }

  getServiceInfo(opts?: CallOptions): Promise<ServiceInfo> {
    return this.call('GetServiceInfo', {}, opts, false);
  }

  close(): void {
    this.client.close();
  }

  private call<T>(method: string, request: unknown, opts: CallOptions | undefined, admin: boolean): Promise<T> {
    const requestId = opts?.requestId ?? randomUUID();
    const md = new grpc.Metadata();
    md.set(REQUEST_ID_KEY, requestId);
    if (opts?.traceparent) {
      md.set('traceparent', opts.traceparent);
      if (opts.tracestate) md.set('tracestate', opts.tracestate);
    } else {
      for (const [k, v] of Object.entries(injectTraceContext({}))) md.set(k, v);
    }
    const credential = opts?.credential ?? (admin ? this.adminCredential : undefined);
    if (credential) md.set('authorization', bearerOf(credential));
    const deadline = new Date(Date.now() + (opts?.deadlineMs ?? this.deadlineMs));
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    if (!fn) return Promise.reject(new Error(`unknown AuthService method ${method}`));
    return new Promise<T>((resolve, reject) => {
      fn.call(this.client, request, md, { deadline }, (err, res) => {
        if (err) {
          const reason = err.metadata?.get(GRPC_REASON_KEY)[0];
          reject(new AuthClientError(err.code, typeof reason === 'string' ? reason : undefined, requestId, err.details || err.message));
        } else resolve(res as T);
      });
    });
  }
}
