import { IsInt, Max, Min } from 'class-validator';
import { CommonConfig } from '@soma/config';

/** The auth service's configuration; property names are the environment variable names. */
export class AuthConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  AUTH_GRPC_PORT: number = 20020;

  @IsInt() @Min(1) @Max(65535)
  AUTH_HTTP_PORT: number = 20021;
}
