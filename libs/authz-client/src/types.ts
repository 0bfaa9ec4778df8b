/** Wire types of soma.authz.v1 (keepCase: field names as in the proto). */
export interface Principal {
  sub: string;
  tenant: string;
  persona_id?: string;
}

export type DecisionReason =
  | 'allowed'
  | 'policy_violation'
  | 'undefined'
  | 'policy_unavailable'
  | 'relationship_missing'
  | 'relationship_unavailable';

export interface Decision {
  decision_id: string;
  allowed: boolean;
  reason: DecisionReason | string;
  cached: boolean;
}

export interface EvaluateResult {
  decision: Decision;
  /** Raw JSON of the policy result; '' when undefined or unavailable. */
  result_json: string;
}

export interface RelationshipTuple {
  user: string;
  relation: string;
  object: string;
}

export interface BatchCheckItem {
  correlation_id: string;
  tuple: RelationshipTuple;
}

export interface BatchCheckResult {
  correlation_id: string;
  decision: Decision;
}

export interface ListObjectsResult {
  objects: string[];
  truncated: boolean;
  decision_id: string;
}

export interface WriteTuplesResult {
  consistency_token: string;
  decision_id: string;
  count: number;
}

export interface ServiceInfo {
  service: string;
  version: string;
  instance_id: string;
  started_at: string;
}
