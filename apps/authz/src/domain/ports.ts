/** What the authz domain needs from the outside world. Implementations live in ../infra. */

/** The outcome of asking a policy engine. Never throws: an engine failure is `unavailable`. */
export type PolicyOutcome =
  | { kind: 'result'; value: unknown }
  | { kind: 'undefined' }
  | { kind: 'unavailable'; detail: string };

export interface PolicyEvaluator {
  readonly mode: 'server' | 'wasm';
  /** `path` is slash separated (`tool_policy/allow`); `inputJson` is a validated JSON object text. */
  evaluate(path: string, inputJson: string): Promise<PolicyOutcome>;
}

export interface RelationshipTuple {
  user: string;
  relation: string;
  object: string;
}

/** Raised by a RelationshipStore when OpenFGA cannot answer (unreachable, timeout, 5xx). */
export class RelationshipStoreUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelationshipStoreUnavailable';
  }
}

/** Raised by a RelationshipStore when OpenFGA refuses a request as invalid (unknown type / relation…). */
export class RelationshipRequestInvalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelationshipRequestInvalid';
  }
}

export interface RelationshipStore {
  /** `fresh`: answer at least as fresh as every acknowledged write (OpenFGA HIGHER_CONSISTENCY). */
  check(tuple: RelationshipTuple, fresh: boolean): Promise<boolean>;
  /** Per item: true/false, or an Error for that item. */
  batchCheck(items: { id: string; tuple: RelationshipTuple }[], fresh: boolean): Promise<Map<string, boolean | Error>>;
  listObjects(user: string, relation: string, type: string, fresh: boolean): Promise<{ objects: string[]; truncated: boolean }>;
  write(tuples: RelationshipTuple[]): Promise<void>;
  delete(tuples: RelationshipTuple[]): Promise<void>;
}

/** The security-event sink (SecurityEventPublisher satisfies it). Synchronous; throws when the buffer is full. */
export interface AuditSink {
  publish(event: {
    type: 'authorization_denied' | 'authorization_granted' | 'policy_reloaded' | 'relationship_written' | 'relationship_deleted';
    tenant: string;
    action: string;
    resource?: string;
    outcome: 'success' | 'failure' | 'denied' | 'error';
    reason?: string | null;
    actor?: { user_id?: string | null; ip_address?: string | null; user_agent?: string | null };
    details?: Record<string, unknown>;
  }): unknown;
}
