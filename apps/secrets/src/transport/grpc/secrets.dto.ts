import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

/*
 * Shapes only (types, bounds); the domain checks content (name alphabet, value size, references).
 * Field names are the proto's (snake_case, keepCase).
 */

export class PutSecretDto {
  @IsString() @MaxLength(256) name!: string;
  @IsOptional() @IsString() value: string = '';
  @IsOptional() @IsString() @MaxLength(2048) reference: string = '';
  @IsOptional() @IsInt() @Min(0) expected_version: number = 0;
}

export class NameDto {
  @IsString() @MaxLength(256) name!: string;
}

export class ListSecretsDto {
  @IsOptional() @IsString() @MaxLength(256) prefix: string = '';
  @IsOptional() @IsInt() @Min(0) @Max(100_000) page_size: number = 0;
  @IsOptional() @IsString() @MaxLength(256) page_token: string = '';
}

export class RotateEncryptionKeyDto {
  @IsOptional() @IsInt() @Min(0) max_secrets: number = 0;
}
