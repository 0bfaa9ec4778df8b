import { Controller, type Type } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';

const STARTED_AT = new Date().toISOString();

export interface ServiceInfo {
  service: string;
  version: string;
  instance_id: string;
  started_at: string;
}

/** `GetServiceInfo` on the service's own gRPC service: which build and instance answered. */
export function serviceInfoController(grpcService: string, info: { service: string; instanceId: string }): Type<unknown> {
  @Controller()
  class ServiceInfoGrpcController {
    @GrpcMethod(grpcService, 'GetServiceInfo')
    getServiceInfo(): ServiceInfo {
      return { service: info.service, version: process.env['SOMA_VERSION'] ?? '0.1.0', instance_id: info.instanceId, started_at: STARTED_AT };
    }
  }
  return ServiceInfoGrpcController;
}
