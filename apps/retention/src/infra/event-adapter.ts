import type { SecurityEventPublisher } from '@soma/events';
import type { RetentionEvent, RetentionEvents } from '../domain/ports.js';
import { RetentionError, RetentionErrorCode } from '../domain/retention.errors.js';

/** The domain's event port on the durable outbox; a refusal becomes AUDIT_UNAVAILABLE (fail closed). */
export class OutboxRetentionEvents implements RetentionEvents {
  constructor(private readonly publisher: SecurityEventPublisher) {}

  publish(event: RetentionEvent): void {
    try {
      this.publisher.publish(event);
    } catch (e) {
      throw new RetentionError(RetentionErrorCode.AuditUnavailable, 'security events cannot be recorded now; request refused', { error: (e as Error)?.name });
    }
  }

  unavailableReason(): string | null {
    return this.publisher.readiness();
  }
}
