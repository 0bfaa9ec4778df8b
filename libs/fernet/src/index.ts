export {
  Fernet,
  MultiFernet,
  InvalidTokenError,
  FernetKeyError,
  parseFernetKeyList,
  base64UrlEncode,
  base64UrlDecodeStrict,
  MAX_CLOCK_SKEW_SECONDS,
} from './fernet.js';
export type { InvalidTokenReason, EncryptOptions, DecryptOptions, MultiDecryptResult } from './fernet.js';
