import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { InvalidInputError } from '@soma/contracts';

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

const NAME_MAX = 256;

/**
 * NameDto's rules by hand, with class-validator's messages (decode-input parity is a unit test): GetSecret is
 * the hot call, and plainToInstance + validateSync of this one-field DTO cost ~8% of the service's CPU per read
 * (profile in docs/performance.md). The domain still checks the name's alphabet.
 */
export function decodeNameRequest(payload: unknown): NameDto {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new InvalidInputError(['request body must be an object']);
  const problems: string[] = [];
  for (const key of Object.keys(payload)) if (key !== 'name') problems.push(`property ${key} should not exist`);
  const name: unknown = (payload as { name?: unknown }).name;
  if (typeof name !== 'string') problems.push(`name must be shorter than or equal to ${NAME_MAX} characters`, 'name must be a string');
  else if (name.length > NAME_MAX) problems.push(`name must be shorter than or equal to ${NAME_MAX} characters`);
  if (problems.length) throw new InvalidInputError(problems);
  const dto = new NameDto();
  dto.name = name as string;
  return dto;
}

export class ListSecretsDto {
  @IsOptional() @IsString() @MaxLength(256) prefix: string = '';
  @IsOptional() @IsInt() @Min(0) @Max(100_000) page_size: number = 0;
  @IsOptional() @IsString() @MaxLength(256) page_token: string = '';
}

export class RotateEncryptionKeyDto {
  @IsOptional() @IsInt() @Min(0) max_secrets: number = 0;
}
