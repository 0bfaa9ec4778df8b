export { AuthzClient, AuthzClientError } from './authz-client.js';
export type { AuthzClientOptions, CallOptions } from './authz-client.js';
export type {
  Principal,
  Decision,
  DecisionReason,
  EvaluateResult,
  RelationshipTuple,
  BatchCheckItem,
  BatchCheckResult,
  ListObjectsResult,
  WriteTuplesResult,
  ServiceInfo,
} from './types.js';
