import { IsInt, Max, Min } from 'class-validator';
import { CommonConfig } from '@soma/config';

/** The retention service's configuration; property names are the environment variable names. */
export class RetentionConfig extends CommonConfig {
  @IsInt() @Min(1) @Max(65535)
  RETENTION_GRPC_PORT: number = 20060;

  @IsInt() @Min(1) @Max(65535)
  RETENTION_HTTP_PORT: number = 20061;
}
