import { Type } from 'class-transformer';
import {
  ArrayMaxSize, IsArray, IsBoolean, IsDateString, IsInt, IsIP, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateIf, ValidateNested,
} from 'class-validator';

const TENANT = /^[A-Za-z0-9*][A-Za-z0-9._:@-]{0,127}$/;
const SCOPE = /^[A-Za-z0-9:._*\/-]{1,128}$/;

export class UsageBudgetDto {
  @IsInt() @Min(0) @Max(Number.MAX_SAFE_INTEGER) @Type(() => Number) remaining!: number;
  @IsOptional() @IsInt() @Min(0) @Type(() => Number) refill_amount?: number;
  @IsOptional() @IsInt() @Min(0) @Max(86_400 * 366) @Type(() => Number) refill_interval_seconds?: number;
}

export class RateLimitDto {
  @IsInt() @Min(1) @Max(1_000_000) limit!: number;
  @IsInt() @Min(1) @Max(86_400) window_seconds!: number;
}

export class IssueTokenDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsString() @MaxLength(256) @Matches(/^\S+$/) sub!: string;
  @IsOptional() @IsString() @MaxLength(128) persona_id?: string;
  @IsOptional() @IsArray() @ArrayMaxSize(100) @Matches(SCOPE, { each: true }) scopes?: string[];
  @IsOptional() @IsInt() @Min(0) ttl_seconds?: number;
}

export class VerifyTokenDto {
  @IsString() @MaxLength(65_536) token!: string;
  @IsOptional() @IsArray() @ArrayMaxSize(100) @IsString({ each: true }) required_scopes?: string[];
}

export class RevokeTokenDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsOptional() @IsString() @MaxLength(256) jti?: string;
  @IsOptional() @IsString() @MaxLength(65_536) token?: string;
  @IsOptional() @IsString() expires_at?: string;
}

export class CreateApiKeyDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsString() @MaxLength(128) @Matches(/^.+$/) name!: string;
  @IsOptional() @IsArray() @ArrayMaxSize(100) @Matches(SCOPE, { each: true }) scopes?: string[];
  @IsOptional() @IsString() expires_at?: string;
  @IsOptional() @IsString() @MaxLength(256) owner_sub?: string;
  @IsOptional() @IsString() @MaxLength(128) persona_id?: string;
  @IsOptional() @IsString() @MaxLength(256) external_id?: string;
  @IsOptional() @IsObject() metadata?: Record<string, string>;
  @IsOptional() @ValidateNested() @Type(() => UsageBudgetDto) budget?: UsageBudgetDto | null;
  @IsOptional() @ValidateNested() @Type(() => RateLimitDto) rate_limit?: RateLimitDto | null;
}

export class VerifyApiKeyDto {
  @IsString() @MaxLength(1024) key!: string;
  @IsOptional() @IsArray() @ArrayMaxSize(100) @IsString({ each: true }) required_scopes?: string[];
}

export class ListApiKeysDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsOptional() @IsBoolean() include_revoked?: boolean;
}

export class ApiKeyRefDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsString() @Matches(/^ak_[A-Za-z0-9]{1,64}$/) id!: string;
}

export class RotateApiKeyDto extends ApiKeyRefDto {
  @IsOptional() @IsInt() @Min(0) @Max(86_400 * 30) grace_seconds?: number;
}

export class RotateTenantApiKeysDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsOptional() @IsInt() @Min(0) @Max(86_400 * 30) grace_seconds?: number;
}

export class AuthenticateDto {
  @IsString() @MaxLength(65_536) bearer!: string;
  @IsOptional() @IsArray() @ArrayMaxSize(100) @IsString({ each: true }) required_scopes?: string[];
  // The caller's address goes into security events (the contract allows an IPv4/IPv6 address or nothing): anything else is refused here.
  @IsOptional() @ValidateIf((o: AuthenticateDto) => o.ip_address !== '') @IsIP() @MaxLength(64) ip_address?: string;
  @IsOptional() @IsString() @MaxLength(1024) user_agent?: string;
}

export class RevokeSubjectDto {
  @IsString() @Matches(TENANT) tenant!: string;
  @IsString() @MaxLength(256) @Matches(/^\S+$/) sub!: string;
}

export class LoginDto {
  @IsOptional() @IsString() @MaxLength(128) username?: string;
  @IsString() @MaxLength(1024) password!: string;
}

export function isIsoDate(v: string | undefined): boolean {
  return !v || !Number.isNaN(Date.parse(v));
}
export { IsDateString };
