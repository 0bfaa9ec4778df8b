import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { SECURITY_EVENT_JSON_SCHEMA } from './security-event.schema.js';
import { SecurityEventTypes, type SecurityEvent } from './security-event.js';

/** Largest serialized event accepted (bytes). Bigger payloads go to the DLQ instead of the audit log. */
export const MAX_SECURITY_EVENT_BYTES = 64 * 1024;

export type EventValidationResult =
  | { ok: true; event: SecurityEvent }
  | { ok: false; errors: string[] };

// ajv-formats ships CJS with a default export; under NodeNext it arrives as the module namespace.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;
const ajv = new Ajv({ allErrors: true, strict: true });
(addFormats as unknown as (a: Ajv) => void)(ajv);
const validateShape = ajv.compile(SECURITY_EVENT_JSON_SCHEMA as object);
const KNOWN_TYPES = new Set<string>(SecurityEventTypes);

/** Validate an already-parsed value against the contract. Never throws. */
export function validateSecurityEvent(value: unknown): EventValidationResult {
  if (!validateShape(value)) {
    const errors = (validateShape.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
    return { ok: false, errors };
  }
  const event = value as unknown as SecurityEvent;
  const errors: string[] = [];
  if (!KNOWN_TYPES.has(event.type)) errors.push(`/type unknown event type "${event.type}"`);
  if (Number.isNaN(Date.parse(event.occurred_at))) errors.push('/occurred_at not a real instant');
  return errors.length ? { ok: false, errors } : { ok: true, event };
}

/** Decode the bytes of a Kafka message and validate them. Never throws. */
export function decodeSecurityEvent(bytes: Buffer | Uint8Array | null | undefined): EventValidationResult {
  if (!bytes || bytes.length === 0) return { ok: false, errors: ['empty message'] };
  if (bytes.length > MAX_SECURITY_EVENT_BYTES) return { ok: false, errors: [`message larger than ${MAX_SECURITY_EVENT_BYTES} bytes`] };
  let parsed: unknown;
  try {
    // A Buffer (what kafkajs hands over) is decoded in place; Buffer.from would copy it first.
    parsed = JSON.parse((Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)).toString('utf8'));
  } catch {
    return { ok: false, errors: ['not valid JSON'] };
  }
  return validateSecurityEvent(parsed);
}
