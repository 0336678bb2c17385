import type { Limits } from '../config/index.js'

export type AuthMethod = 'oidc' | 'api_key' | 'admin_token'

/** Who is calling, as established from the credential (before roles are applied). */
export interface Principal {
  subject: string
  authMethod: AuthMethod
  /** The API key's id for `api_key`, else null. */
  keyId: string | null
  /** Roles the credential carries (OIDC claim, or the key's roles); may include unconfigured ones. */
  roles: readonly string[]
  /** True for the bootstrap admin token and for OIDC tokens with one of `auth.adminRoles`. */
  isAdmin: boolean
  /** A key's own narrowing: model names/globs and lower limits; null = no narrowing. */
  keyModels: readonly string[] | null
  keyLimits: Limits | null
}

/** What a principal may do, after roles (and a key's narrowing) are merged. */
export interface Entitlements {
  /** The configured roles that apply (after `defaultRole`). */
  roles: readonly string[]
  /** The first applicable role, used as the bounded `role` metric label. */
  primaryRole: string
  limits: Limits
  /** True when `model` (a public name) may be used. */
  allowsModel(model: string): boolean
}

/** Turns an `Authorization` header into a Principal, or throws InvalidApiKey (with a reason). */
export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Principal>
  /** Stops background work (JWKS refresh, pub/sub). */
  close(): Promise<void>
}
