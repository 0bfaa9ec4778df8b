import { IsInt, Max, Min } from 'class-validator';
import { CommonConfig } from '@soma/config';

/** The secrets service's configuration; property names are the environment variable names. */
export class SecretsConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  SECRETS_GRPC_PORT: number = 20040;

  @IsInt() @Min(1) @Max(65535)
  SECRETS_HTTP_PORT: number = 20041;
}
