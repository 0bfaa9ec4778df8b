/** JSON Schema (draft-07) of the security-event contract; published to SIEM integrators by `npx soma events schema`. */
export const SECURITY_EVENT_JSON_SCHEMA = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "https://soma.dev/schemas/soma.security.event/v1.json",
  "title": "Soma security event v1",
  "type": "object",
  "additionalProperties": false,
  "required": ["schema", "id", "type", "occurred_at", "service", "tenant", "actor", "action", "resource", "outcome", "reason", "details", "trace_id"],
  "properties": {
    "schema": { "const": "soma.security.event/v1" },
    "id": { "type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$" },
    "type": { "type": "string", "pattern": "^[a-z][a-z0-9]*(_[a-z0-9]+)*$", "maxLength": 64 },
    "occurred_at": { "type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$", "format": "date-time" },
    "service": { "type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$" },
    "tenant": { "type": "string", "minLength": 1, "maxLength": 128 },
    "actor": {
      "type": "object",
      "additionalProperties": false,
      "required": ["user_id", "ip_address", "user_agent"],
      "properties": {
        "user_id": { "type": ["string", "null"], "maxLength": 256 },
        "ip_address": { "anyOf": [{ "type": "null" }, { "type": "string", "format": "ipv4" }, { "type": "string", "format": "ipv6" }] },
        "user_agent": { "type": ["string", "null"], "maxLength": 1024 }
      }
    },
    "action": { "type": "string", "minLength": 1, "maxLength": 128 },
    "resource": { "type": "string", "maxLength": 512 },
    "outcome": { "enum": ["success", "failure", "denied", "error"] },
    "reason": { "type": ["string", "null"], "maxLength": 256 },
    "details": { "type": "object" },
    "trace_id": { "anyOf": [{ "type": "null" }, { "type": "string", "pattern": "^[0-9a-f]{32}$" }] }
  }
} as const;
