import { IsBoolean, IsString, Length, MaxLength } from 'class-validator';

/** Wire shapes of soma.retention.v1 requests (keepCase, defaults: every field present). */
export class RunPolicyDto {
  @IsString() @MaxLength(63)
  policy!: string;

  @IsBoolean()
  dry_run!: boolean;
}

export class SubjectDto {
  @IsString() @Length(1, 128)
  tenant!: string;

  @IsString() @Length(1, 256)
  user_id!: string;
}

export class EraseUserDataDto extends SubjectDto {
  @IsString() @MaxLength(256)
  reason!: string;
}

export class RecordConsentDto extends SubjectDto {
  @IsString() @Length(1, 64)
  purpose!: string;

  @IsBoolean()
  granted!: boolean;

  @IsString() @MaxLength(128)
  source!: string;

  @IsString() @MaxLength(64)
  policy_version!: string;
}

export class GetConsentDto extends SubjectDto {
  @IsString() @MaxLength(64)
  purpose!: string;

  @IsBoolean()
  include_history!: boolean;
}
