import { IsInt, Max, Min } from 'class-validator';
import { CommonConfig } from '@soma/config';

/** The audit service's configuration; property names are the environment variable names. */
export class AuditConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  AUDIT_GRPC_PORT: number = 20050;

  @IsInt() @Min(1) @Max(65535)
  AUDIT_HTTP_PORT: number = 20051;
}
