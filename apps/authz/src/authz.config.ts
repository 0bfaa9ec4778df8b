import { IsInt, Max, Min } from 'class-validator';
import { CommonConfig } from '@soma/config';

/** The authz service's configuration; property names are the environment variable names. */
export class AuthzConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  AUTHZ_GRPC_PORT: number = 20030;

  @IsInt() @Min(1) @Max(65535)
  AUTHZ_HTTP_PORT: number = 20031;
}
