import { v7 as uuidv7 } from 'uuid';
import { maskPersonalData } from '@soma/masking';
import { SECURITY_EVENT_SCHEMA, type SecurityEvent, type SecurityEventOutcome, type SecurityEventType } from '@soma/contracts';
import { currentTraceId } from '@soma/observability';

export interface SecurityEventInput {
  type: SecurityEventType;
  tenant: string;
  action: string;
  resource?: string;
  outcome: SecurityEventOutcome;
  reason?: string | null;
  actor?: { user_id?: string | null; ip_address?: string | null; user_agent?: string | null };
  details?: Record<string, unknown>;
  /** Defaults to the active OpenTelemetry trace. */
  trace_id?: string | null;
  /** Defaults to now. */
  occurred_at?: Date;
}

/** Build a contract-conforming event: UUIDv7 id, UTC millisecond timestamp, masked details. */
export function buildSecurityEvent(service: string, input: SecurityEventInput): SecurityEvent {
  return {
    schema: SECURITY_EVENT_SCHEMA,
    id: uuidv7(),
    type: input.type,
    occurred_at: (input.occurred_at ?? new Date()).toISOString(),
    service,
    tenant: input.tenant,
    actor: {
      user_id: input.actor?.user_id ?? null,
      ip_address: input.actor?.ip_address ?? null,
      user_agent: input.actor?.user_agent ?? null,
    },
    action: input.action,
    resource: input.resource ?? '',
    outcome: input.outcome,
    reason: input.reason ?? null,
    details: maskPersonalData(input.details ?? {}),
    trace_id: input.trace_id === undefined ? currentTraceId() : input.trace_id,
  };
}
