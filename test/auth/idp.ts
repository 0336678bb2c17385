import type { Server } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose'
import Provider, { type AccessTokenLike } from 'oidc-provider'
import { freePort } from '../helpers/ports.js'

/** A signing key pair with its kid, usable both by the provider and by forgeries. */
export interface SigningKey {
  kid: string
  privateKey: CryptoKey
  publicJwk: JWK
  privateJwk: JWK
}

export async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }
  return { kid, privateKey, publicJwk, privateJwk }
}

/** A running oidc-provider on loopback issuing client-credentials JWT access tokens. */
export interface Idp {
  issuer: string
  port: number
  key: SigningKey
  /** An access token for `clientId`, fetched over HTTP from the token endpoint. */
  token(clientId: string): Promise<string>
  /** How many times the JWKS was fetched from this process. */
  jwksHits(): number
  stop(): Promise<void>
}

export const AUDIENCE = 'gatehouse'
/** Client id → the roles its tokens carry (in `realm_access.roles`). */
export const CLIENTS: Record<string, string[]> = {
  analyst: ['analyst'],
  ops: ['gatehouse-admin', 'analyst'],
  nobody: ['unconfigured-role'],
}
const SECRET = 'test-client-secret-0123456789'

/** Starts oidc-provider (v9) on `port` (a free one by default) signing with `key`. */
export async function startIdp(opts: { port?: number; key?: SigningKey } = {}): Promise<Idp> {
  const port = opts.port ?? (await freePort())
  const key = opts.key ?? (await newSigningKey('k1'))
  const issuer = `http://127.0.0.1:${port}`
  const provider = new Provider(issuer, {
    clients: Object.keys(CLIENTS).map((id) => ({
      client_id: id,
      client_secret: SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api',
    })),
    jwks: { keys: [key.privateJwk] },
    scopes: ['openid', 'api'],
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:gatehouse',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          audience: AUDIENCE,
          scope: 'api',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: AccessTokenLike) => ({
      realm_access: { roles: CLIENTS[token.clientId ?? ''] ?? [] },
    }),
  })
  let hits = 0
  provider.use(async (ctx, next) => {
    if (ctx.path === '/jwks') hits++
    await next()
  })
  const server: Server = await new Promise((resolve) => {
    const s = provider.listen(port, '127.0.0.1', () => resolve(s))
  })
  return {
    issuer,
    port,
    key,
    async token(clientId) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: 'urn:gatehouse' }),
      })
      const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string }
      if (!json.access_token) throw new Error(`token endpoint: ${res.status} ${json.error} ${json.error_description}`)
      return json.access_token
    },
    jwksHits: () => hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** A JWT signed with `key` (a forgery unless the key is the issuer's and the claims are right). */
export function signToken(
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string; typ?: string },
  claims: JWTPayload,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key)
}
