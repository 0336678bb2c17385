import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose'
import type { OidcIssuerConfig } from '../config/index.js'
import { InvalidApiKey } from '../errors/index.js'
import type { Logger } from '../log/index.js'
import { claimAt, parseRoles } from './claims.js'
import { Lru } from './lru.js'
import { IssuerKeys, defaultIssuerOptions, type IssuerOptions } from './oidc-issuer.js'
import type { Principal } from './types.js'

/** Only asymmetric algorithms: with HS* a public JWKS key would become a shared secret. */
export const ACCEPTED_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const

const ACCEPTED_TYPES = new Set(['jwt', 'at+jwt'])

export interface OidcOptions extends IssuerOptions {
  /** Seconds of clock skew tolerated on `exp` and `nbf`. */
  clockToleranceSec: number
  /** Verified tokens kept in memory (least recently used dropped first). */
  cacheSize: number
}

export interface OidcDeps {
  issuers: readonly OidcIssuerConfig[]
  adminRoles: readonly string[]
  log: Logger
}

/** Verifies JWT access tokens of the configured issuers into Principals. */
export interface OidcVerifier {
  /** `tokenHash` keys the cache of verified tokens (the token itself is never kept). */
  verify(token: string, tokenHash: string): Promise<Principal>
  /** Whether any issuer is configured (otherwise a JWT cannot be accepted at all). */
  readonly enabled: boolean
  close(): void
}

interface CachedToken {
  principal: Principal
  expiresAtMs: number
}

function refuse(reason: string, message: string): InvalidApiKey {
  return new InvalidApiKey(message, { reason })
}

/** Maps jose's stable error codes to our reason codes; the message never echoes the token. */
function mapJoseError(err: unknown): InvalidApiKey {
  if (err instanceof InvalidApiKey) return err
  const code = (err as { code?: unknown }).code
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return refuse('expired', 'the token has expired')
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: unknown }).claim
      return refuse('bad_claims', `the token's ${typeof claim === 'string' ? `"${claim}" ` : ''}claim is not acceptable`)
    }
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refuse('unknown_kid', "the token's signing key is not known to its issuer")
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refuse('bad_signature', 'the token signature is not valid')
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refuse('malformed', 'the token is malformed')
    default:
      // JWKS endpoint down, timing out or answering garbage.
      return refuse('issuer_unavailable', 'the token issuer is not available; try again later')
  }
}

/**
 * Creates the verifier and starts discovery of every issuer in the background. The issuer is
 * chosen by the token's unverified `iss`, then everything is verified with that issuer's own
 * keys and expected `iss`/`aud`, so one trusted issuer cannot mint tokens for another.
 */
export function createOidcVerifier(deps: OidcDeps, options: Partial<OidcOptions> = {}): OidcVerifier {
  const opts: OidcOptions = { ...defaultIssuerOptions, clockToleranceSec: 30, cacheSize: 10_000, ...options }
  const issuers = new Map<string, IssuerKeys>()
  for (const cfg of deps.issuers) {
    const keys = new IssuerKeys(cfg, deps.log, opts)
    issuers.set(cfg.issuer, keys)
    keys.start()
  }
  const adminRoles = new Set(deps.adminRoles)
  const cache = new Lru<string, CachedToken>(opts.cacheSize)
  const lastWarnedAt = new Map<string, number>()

  // A JWKS that stops answering refuses every token of its issuer: say so, once a minute.
  function warnUnavailable(issuer: string, err: unknown): void {
    const now = Date.now()
    if (now - (lastWarnedAt.get(issuer) ?? 0) < 60_000) return
    lastWarnedAt.set(issuer, now)
    const code = (err as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code
    deps.log.warn('oidc jwks unavailable; its tokens are refused', { issuer, reason: typeof code === 'string' ? code : 'error' })
  }

  function toPrincipal(cfg: OidcIssuerConfig, payload: JWTPayload): Principal {
    const subject = claimAt(payload, cfg.subjectClaim)
    if (typeof subject !== 'string' || subject.length === 0) {
      throw refuse('bad_claims', `the token has no "${cfg.subjectClaim}" claim`)
    }
    const roles = Object.freeze(parseRoles(claimAt(payload, cfg.rolesClaim)))
    return Object.freeze({
      subject,
      authMethod: 'oidc',
      keyId: null,
      roles,
      isAdmin: roles.some((r) => adminRoles.has(r)),
      keyModels: null,
      keyLimits: null,
    })
  }

  async function verifyUncached(token: string): Promise<CachedToken> {
    let iss: unknown
    let typ: unknown
    try {
      iss = decodeJwt(token).iss
      typ = decodeProtectedHeader(token).typ
    } catch {
      throw refuse('malformed', 'the token is malformed')
    }
    const issuer = typeof iss === 'string' ? issuers.get(iss) : undefined
    if (!issuer) throw refuse('unknown_issuer', 'the token issuer is not trusted')
    if (typ !== undefined && (typeof typ !== 'string' || !ACCEPTED_TYPES.has(typ.toLowerCase().replace(/^application\//, '')))) {
      throw refuse('bad_claims', 'the token type is not an access token')
    }
    const getKey = await issuer.keys()
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, getKey, {
        issuer: issuer.config.issuer,
        audience: issuer.config.audience,
        algorithms: [...ACCEPTED_ALGORITHMS],
        clockTolerance: opts.clockToleranceSec,
        requiredClaims: ['exp'],
      }))
    } catch (err) {
      const refusal = mapJoseError(err)
      if (refusal.reason === 'issuer_unavailable') warnUnavailable(issuer.config.issuer, err)
      throw refusal
    }
    return { principal: toPrincipal(issuer.config, payload), expiresAtMs: (payload.exp ?? 0) * 1000 }
  }

  return {
    enabled: issuers.size > 0,
    async verify(token, tokenHash) {
      const hit = cache.get(tokenHash)
      if (hit) {
        if (hit.expiresAtMs > Date.now()) return hit.principal
        cache.delete(tokenHash)
      }
      const verified = await verifyUncached(token)
      // Kept only until `exp` (without the clock tolerance): a cached answer never outlives the token.
      if (verified.expiresAtMs > Date.now()) cache.set(tokenHash, verified)
      return verified.principal
    },
    close() {
      for (const keys of issuers.values()) keys.close()
      cache.clear()
    },
  }
}
