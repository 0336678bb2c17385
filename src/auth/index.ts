export type { Authenticator, Principal, Entitlements, AuthMethod } from './types.js'
export { createAuthenticator, type AuthenticatorDeps } from './authenticator.js'
export { createOidcVerifier, ACCEPTED_ALGORITHMS, type OidcVerifier, type OidcOptions, type OidcDeps } from './oidc.js'
export { defaultIssuerOptions, type IssuerOptions } from './oidc-issuer.js'
export { newApiKey, hashCredential, sameHash, verifyApiKey, API_KEY_PREFIX } from './api-keys.js'
export {
  resolveEntitlements,
  precompileRoles,
  compileModelPatterns,
  mergeRoleLimits,
  narrowLimits,
  LIMIT_NAMES,
} from './roles.js'
export { claimAt, parseRoles } from './claims.js'
export { createKeyStore } from '../store/index.js'
