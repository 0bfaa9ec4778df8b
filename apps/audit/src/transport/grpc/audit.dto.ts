import { IsIn, IsInt, IsISO8601, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import type { QueryInput } from '../../domain/audit-query.js';
import type { TimeRange } from '../../domain/verify-chain.js';

export class EventFilterDto {
  @IsOptional() @IsISO8601({ strict: true })
  from?: string;

  @IsOptional() @IsISO8601({ strict: true })
  to?: string;

  @IsOptional() @IsString() @Length(1, 128)
  tenant?: string;

  @IsOptional() @Matches(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/) @Length(1, 64)
  event_type?: string;

  @IsOptional() @IsString() @Length(1, 256)
  user_id?: string;

  @IsOptional() @IsIn(['success', 'failure', 'denied', 'error'])
  outcome?: 'success' | 'failure' | 'denied' | 'error';

  @IsOptional() @IsInt() @Min(1) @Max(1000)
  page_size?: number;

  @IsOptional() @IsString() @Length(1, 512)
  page_token?: string;
}

export class RangeDto {
  @IsOptional() @IsISO8601({ strict: true })
  from?: string;

  @IsOptional() @IsISO8601({ strict: true })
  to?: string;
}

/** Proto3 sends unset strings as '' and unset numbers as 0: both mean "not given". */
export function withoutDefaults(value: Record<string, unknown> | null | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== '' && v !== 0 && v !== null && v !== undefined));
}

export function queryInputOf(dto: EventFilterDto): QueryInput {
  return {
    from: dto.from ? new Date(dto.from) : undefined,
    to: dto.to ? new Date(dto.to) : undefined,
    tenant: dto.tenant,
    event_type: dto.event_type,
    user_id: dto.user_id,
    outcome: dto.outcome,
    page_size: dto.page_size,
    page_token: dto.page_token,
  };
}

export function rangeOf(dto: RangeDto): TimeRange {
  return { from: dto.from ? new Date(dto.from) : undefined, to: dto.to ? new Date(dto.to) : undefined };
}
