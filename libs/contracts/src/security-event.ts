/** The security-event contract every service emits and a SIEM reads (docs/events.md). */
export const SECURITY_EVENT_SCHEMA = 'soma.security.event/v1' as const;

export type SecurityEventOutcome = 'success' | 'failure' | 'denied' | 'error';

/** Every event type of the suite. A new type is a contract change: add it here and in docs/events.md. */
export const SecurityEventTypes = [
  // auth
  'authentication_succeeded', 'authentication_failed', 'login_locked', 'token_issued', 'token_revoked',
  'api_key_created', 'api_key_revoked', 'api_key_rotated', 'signing_key_rotated',
  // authz
  'authorization_denied', 'authorization_granted', 'policy_reloaded', 'relationship_written', 'relationship_deleted',
  // secrets
  'secret_accessed', 'secret_written', 'secret_deleted', 'encryption_key_rotated', 'secret_access_denied',
  // audit: reads of the audit log itself (who watched the watchers)
  'audit_log_accessed',
  // retention
  'retention_run', 'data_exported', 'data_erased', 'consent_changed',
  // platform
  'service_started', 'service_stopped', 'event_buffer_overflow',
] as const;
export type SecurityEventType = (typeof SecurityEventTypes)[number];

export interface SecurityEventActor {
  user_id: string | null;
  ip_address: string | null;
  user_agent: string | null;
}

export interface SecurityEvent {
  schema: typeof SECURITY_EVENT_SCHEMA;
  /** UUIDv7: time-ordered, unique; the audit log's idempotency key. */
  id: string;
  type: SecurityEventType;
  /** RFC 3339, UTC, milliseconds: `2026-12-04T10:00:00.000Z`. */
  occurred_at: string;
  service: string;
  tenant: string;
  actor: SecurityEventActor;
  action: string;
  resource: string;
  outcome: SecurityEventOutcome;
  reason: string | null;
  /** Free details; personal data masked by the publisher. */
  details: Record<string, unknown>;
  /** W3C trace id (32 lowercase hex) of the request that caused the event. */
  trace_id: string | null;
}

/**
 * What a service says about an event; the publisher fills in the rest (id, time, service, trace id)
 * and masks the details. Domain code describes events with this type and hands them to a port.
 */
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
