import type { Config } from '../config/index.js'
import { InvalidApiKey } from '../errors/index.js'
import type { Logger } from '../log/index.js'
import type { KeyStore } from '../store/index.js'
import { API_KEY_PREFIX, hashCredential, sameHash, verifyApiKey } from './api-keys.js'
import type { OidcDeps, OidcOptions, OidcVerifier } from './oidc.js'
import { precompileRoles } from './roles.js'
import type { Authenticator, Principal } from './types.js'

export interface AuthenticatorDeps {
  config: Config
  keyStore: KeyStore
  log: Logger
  /** Overrides of the OIDC timings (tests); SPEC values by default. */
  oidc?: Partial<OidcOptions>
}

const ADMIN_PRINCIPAL: Principal = Object.freeze({
  subject: 'admin',
  authMethod: 'admin_token',
  keyId: null,
  roles: Object.freeze([]),
  isAdmin: true,
  keyModels: null,
  keyLimits: null,
})

// One visible-ASCII credential after the scheme; anything else is not a credential we issue.
const BEARER = /^Bearer +([\x21-\x7e]+) *$/i
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/

/**
 * The OIDC verifier, or null without issuers. Its module and jose (≈6 MiB of RSS) load only
 * when an issuer is configured; loading starts at once, so the issuers' keys are fetched at
 * start as before.
 */
function loadOidc(deps: OidcDeps, options?: Partial<OidcOptions>): Pick<OidcVerifier, 'verify'> & { close(): Promise<void> } | null {
  if (deps.issuers.length === 0) return null
  const loading = import('./oidc.js').then((m) => m.createOidcVerifier(deps, options))
  return {
    verify: async (token, tokenHash) => (await loading).verify(token, tokenHash),
    close: async () => (await loading).close(),
  }
}

/**
 * Turns an `Authorization` header into a Principal: the bootstrap admin token, an API key
 * (`ghk_...`) or a JWT from a configured issuer. The credential is hashed once; the hash
 * compares the admin token in constant time and keys the key and token caches.
 */
export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const { config, keyStore, log } = deps
  precompileRoles(config)
  const adminHash = config.auth.adminToken ? hashCredential(config.auth.adminToken) : null
  const oidc = loadOidc({ issuers: config.auth.oidc, adminRoles: config.auth.adminRoles, log }, deps.oidc)

  return {
    async authenticate(authorization) {
      if (!authorization) throw new InvalidApiKey('no credential given: send Authorization: Bearer <key or token>', { reason: 'missing' })
      const match = BEARER.exec(authorization)
      if (!match) throw new InvalidApiKey('the Authorization header must be "Bearer <key or token>"', { reason: 'malformed' })
      const credential = match[1]
      const hash = hashCredential(credential)
      if (adminHash && sameHash(hash, adminHash)) return ADMIN_PRINCIPAL
      if (credential.startsWith(API_KEY_PREFIX)) {
        if (!config.auth.apiKeys) throw new InvalidApiKey('API keys are not accepted here', { reason: 'api_keys_disabled' })
        return verifyApiKey(keyStore, credential, hash)
      }
      if (JWT_SHAPE.test(credential)) {
        if (oidc === null) throw new InvalidApiKey('no token issuer is configured', { reason: 'unknown_issuer' })
        return oidc.verify(credential, hash)
      }
      throw new InvalidApiKey('the credential is neither an API key nor a token', { reason: 'malformed' })
    },
    async close() {
      await oidc?.close()
    },
  }
}
