export { AuthClient, AuthClientError } from './auth-client.js';
export type { AuthClientOptions, CallOptions } from './auth-client.js';
export { principalFromWire } from './types.js';
export type {
  Principal,
  PrincipalWire,
  AuthMethodWire,
  VerifyApiKeyResult,
  VerifyApiKeyResponse,
  IssuedToken,
  ApiKeyRecord,
  CreateApiKeyInput,
  CreatedApiKey,
  RotatedApiKey,
  UsageBudget,
  RateLimit,
  SigningKeyInfo,
  ServiceInfo,
} from './types.js';
