export {
  maskApiKey,
  maskBearer,
  maskEmail,
  maskFernetKey,
  maskSecretsInText,
  maskSecretsDeep,
  maskPersonalData,
  isSecretFieldName,
  SECRET_FIELD_NAMES,
} from './masking.js';
