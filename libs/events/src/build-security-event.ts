import { v7 as uuidv7 } from 'uuid';
import { maskPersonalData } from '@soma/masking';
import { SECURITY_EVENT_SCHEMA, type SecurityEvent, type SecurityEventInput } from '@soma/contracts';
import { currentTraceId } from '@soma/observability';

export type { SecurityEventInput };

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
