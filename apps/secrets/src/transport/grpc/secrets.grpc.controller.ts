import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { REQUEST_ID_KEY } from '@soma/contracts';
import { decodeInput, requestIdFrom } from '@soma/service-runtime';
import type { RequestContext, SecretMetadata } from '../../domain/ports.js';
import type { SecretsManager } from '../../domain/secrets-manager.js';
import { SECRETS_MANAGER } from '../../secrets.tokens.js';
import { decodeNameRequest, ListSecretsDto, PutSecretDto, RotateEncryptionKeyDto } from './secrets.dto.js';

interface MetadataWire {
  name: string;
  kind: 'SECRET_KIND_VALUE' | 'SECRET_KIND_REFERENCE';
  created_at: string;
  updated_at: string;
  version: number;
  created_by: string;
  updated_by: string;
  key_id: string;
}

function toWire(m: SecretMetadata): MetadataWire {
  return {
    name: m.name,
    kind: m.kind === 'reference' ? 'SECRET_KIND_REFERENCE' : 'SECRET_KIND_VALUE',
    created_at: m.createdAt,
    updated_at: m.updatedAt,
    version: m.version,
    created_by: m.createdBy,
    updated_by: m.updatedBy,
    key_id: m.keyId,
  };
}

function first(metadata: Metadata | undefined, key: string): string | undefined {
  const v = metadata?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/** `ipv4:127.0.0.1:5000` / `ipv6:[::1]:5000` → the address, when it is one. */
function peerAddress(call: ServerUnaryCall<unknown, unknown> | undefined): string | undefined {
  const peer = call?.getPeer?.() ?? '';
  const m = /^(?:ipv4:)?(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(peer) ?? /^ipv6:\[([0-9a-fA-F:.]+)\]:\d+$/.exec(peer);
  return m?.[1];
}

function contextOf(metadata: Metadata | undefined, call: ServerUnaryCall<unknown, unknown> | undefined): RequestContext {
  const ua = first(metadata, 'user-agent');
  const ip = peerAddress(call);
  return {
    requestId: requestIdFrom(metadata?.get(REQUEST_ID_KEY)),
    credential: first(metadata, 'authorization'),
    ...(ip ? { ipAddress: ip } : {}),
    ...(ua ? { userAgent: ua.slice(0, 256) } : {}),
  };
}

/** soma.secrets.v1.SecretsService: decode → one domain call → wire shape. */
@Controller()
export class SecretsGrpcController {
  constructor(@Inject(SECRETS_MANAGER) private readonly secrets: SecretsManager) {}

  @GrpcMethod('SecretsService', 'PutSecret')
  async putSecret(req: unknown, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<{ metadata: MetadataWire; created: boolean }> {
    const dto = decodeInput(PutSecretDto, req);
    const r = await this.secrets.putSecret(contextOf(md, call), { name: dto.name, value: dto.value, reference: dto.reference, expectedVersion: dto.expected_version });
    return { metadata: toWire(r.metadata), created: r.created };
  }

  @GrpcMethod('SecretsService', 'GetSecret')
  async getSecret(req: unknown, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<{ value: string; metadata: MetadataWire }> {
    const dto = decodeNameRequest(req);
    const r = await this.secrets.getSecret(contextOf(md, call), dto.name);
    return { value: r.value, metadata: toWire(r.metadata) };
  }

  @GrpcMethod('SecretsService', 'DeleteSecret')
  async deleteSecret(req: unknown, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<{ deleted: boolean }> {
    const dto = decodeNameRequest(req);
    return { deleted: await this.secrets.deleteSecret(contextOf(md, call), dto.name) };
  }

  @GrpcMethod('SecretsService', 'ListSecrets')
  async listSecrets(req: unknown, md: Metadata, call: ServerUnaryCall<unknown, unknown>): Promise<{ secrets: MetadataWire[]; next_page_token: string }> {
    const dto = decodeInput(ListSecretsDto, req);
    const r = await this.secrets.listSecrets(contextOf(md, call), dto.prefix, dto.page_size, dto.page_token);
    return { secrets: r.secrets.map(toWire), next_page_token: r.nextPageToken };
  }

  @GrpcMethod('SecretsService', 'RotateEncryptionKey')
  async rotateEncryptionKey(req: unknown, md: Metadata, call: ServerUnaryCall<unknown, unknown>) {
    const dto = decodeInput(RotateEncryptionKeyDto, req);
    const r = await this.secrets.rotateEncryptionKey(contextOf(md, call), dto.max_secrets);
    return {
      key_id: r.keyId,
      examined: r.examined,
      rotated: r.rotated,
      already_current: r.alreadyCurrent,
      unreadable: r.unreadable.length,
      unreadable_names: r.unreadable.slice(0, 1000),
      complete: r.complete,
      resumed: r.resumed,
    };
  }
}
