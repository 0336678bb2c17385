export type { Authenticator, Principal, Entitlements, AuthMethod } from './types.js'
export { createAuthenticator, type AuthenticatorDeps } from './authenticator.js'
// Types only: the OIDC modules (and jose with them) load when an issuer is configured.
export type { OidcVerifier, OidcOptions, OidcDeps } from './oidc.js'
export type { IssuerOptions } from './oidc-issuer.js'
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
