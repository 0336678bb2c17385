import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt, exportSPKI, importJWK, type JWTPayload } from 'jose'
import { createAuthenticator, resolveEntitlements, type Authenticator } from '../../src/auth/index.js'
import { createEmbeddedKeyStore, type KeyStore } from '../../src/store/index.js'
import type { Config } from '../../src/config/index.js'
import { ADMIN_TOKEN, captureLog, refused, testConfig } from './fixtures.js'
import { AUDIENCE, newSigningKey, signToken, startIdp, type Idp, type SigningKey } from './idp.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

function oidcConfig(issuers: string[], extra: Record<string, unknown> = {}): Config {
  return testConfig({
    auth: {
      oidc: issuers.map((issuer) => ({ issuer, audience: AUDIENCE, rolesClaim: 'realm_access.roles' })),
      adminRoles: ['gatehouse-admin'],
      adminToken: ADMIN_TOKEN,
    },
    ...extra,
  })
}

describe('OIDC access tokens from a real provider', () => {
  let idpA: Idp
  let idpB: Idp
  let keyB: SigningKey
  let config: Config
  let store: KeyStore
  let auth: Authenticator
  const logged = captureLog()
  const seenTokens: string[] = []
  const bearer = (token: string) => {
    seenTokens.push(token)
    return auth.authenticate(`Bearer ${token}`)
  }

  before(async () => {
    // Both issuers sign with kid "k1": a token moved between them must fail on the key itself.
    idpA = await startIdp({ key: await newSigningKey('k1') })
    keyB = await newSigningKey('k1')
    idpB = await startIdp({ key: keyB })
    config = oidcConfig([idpA.issuer, idpB.issuer])
    store = createEmbeddedKeyStore({ dataDir: mkdtempSync(join(tmpdir(), 'gh-oidc-')), log: logged.log })
    auth = createAuthenticator({ config, keyStore: store, log: logged.log })
  })

  after(async () => {
    await auth.close()
    await store.close()
    await idpA.stop()
    await idpB.stop()
    for (const token of seenTokens) {
      for (const line of logged.lines) assert.ok(!line.includes(token), 'a token reached the log')
    }
  })

  const base = (): JWTPayload => ({
    iss: idpA.issuer,
    aud: AUDIENCE,
    sub: 'forger',
    realm_access: { roles: ['gatehouse-admin'] },
    iat: now(),
    exp: now() + 300,
  })
  const signA = (claims: JWTPayload, header: Record<string, string> = {}) =>
    signToken(idpA.key.privateKey, { alg: 'RS256', kid: 'k1', typ: 'at+jwt', ...header }, claims)

  it('accepts a client-credentials token fetched from the token endpoint, with its roles', async () => {
    const token = await idpA.token('analyst')
    const principal = await bearer(token)
    assert.equal(principal.authMethod, 'oidc')
    assert.equal(principal.subject, 'analyst')
    assert.deepEqual(principal.roles, ['analyst'])
    assert.equal(principal.isAdmin, false)
    const ent = resolveEntitlements(config, principal)
    assert.deepEqual(ent.roles, ['analyst'])
    assert.equal(ent.allowsModel('llama-3.1-8b'), true)
    assert.equal(ent.allowsModel('qwen2.5'), false)
  })

  it('makes a token with an admin role an admin, from either issuer', async () => {
    assert.equal((await bearer(await idpA.token('ops'))).isAdmin, true)
    const fromB = await bearer(await idpB.token('ops'))
    assert.equal(fromB.isAdmin, true)
    assert.equal(fromB.subject, 'ops')
  })

  it('caches a verified token: the second check returns the same principal', async () => {
    const token = await idpA.token('analyst')
    const first = await bearer(token)
    assert.equal(await bearer(token), first)
  })

  it('accepts typ JWT, no typ, and roles as a space-separated string', async () => {
    const typed = await bearer(await signA({ ...base(), sub: 'typ-jwt' }, { typ: 'JWT' }))
    assert.equal(typed.subject, 'typ-jwt')
    const untyped = await signToken(idpA.key.privateKey, { alg: 'RS256', kid: 'k1' }, { ...base(), sub: 'no-typ' })
    assert.equal((await bearer(untyped)).subject, 'no-typ')
    const spaced = await bearer(await signA({ ...base(), realm_access: { roles: 'analyst batch' } }))
    assert.deepEqual(spaced.roles, ['analyst', 'batch'])
  })

  const forgeries: [string, () => Promise<string>, string[]][] = [
    ['expired', () => signA({ ...base(), iat: now() - 600, exp: now() - 120 }), ['expired']],
    ['nbf in the future', () => signA({ ...base(), nbf: now() + 300 }), ['bad_claims']],
    ['wrong iss', () => signA({ ...base(), iss: 'http://127.0.0.1:9/evil' }), ['unknown_issuer']],
    ['wrong aud', () => signA({ ...base(), aud: 'some-other-api' }), ['bad_claims']],
    ['no exp', () => signA({ ...base(), exp: undefined }), ['bad_claims']],
    ['no subject', () => signA({ ...base(), sub: undefined }), ['bad_claims']],
    ['an id token typ', () => signA(base(), { typ: 'id+jwt' }), ['bad_claims']],
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(base())}.`, ['bad_signature', 'malformed']],
    [
      'HS256 signed with the issuer public key',
      async () => {
        const pem = await exportSPKI((await importJWK(idpA.key.publicJwk, 'RS256', { extractable: true })) as CryptoKey)
        return signToken(new TextEncoder().encode(pem), { alg: 'HS256', kid: 'k1', typ: 'at+jwt' }, base())
      },
      ['bad_signature'],
    ],
    [
      'an unknown kid',
      async () => signToken((await newSigningKey('attacker')).privateKey, { alg: 'RS256', kid: 'attacker', typ: 'at+jwt' }, base()),
      ['unknown_kid'],
    ],
    [
      'a tampered payload',
      async () => {
        const [h, , s] = (await idpA.token('analyst')).split('.')
        const claims = decodeJwt(await idpA.token('analyst'))
        return `${h}.${b64({ ...claims, realm_access: { roles: ['gatehouse-admin'] } })}.${s}`
      },
      ['bad_signature'],
    ],
    [
      'a stripped signature',
      async () => {
        const [h, p] = (await idpA.token('analyst')).split('.')
        return `${h}.${p}.`
      },
      ['bad_signature', 'malformed'],
    ],
    [
      "one trusted issuer's key with another trusted issuer's iss",
      () => signA({ ...base(), iss: idpB.issuer }),
      ['bad_signature'],
    ],
    ['not a JWT at all', async () => 'eyJhbGciOi.not-base64!.x', ['malformed']],
  ]

  for (const [name, make, reasons] of forgeries) {
    it(`refuses ${name} with InvalidApiKey and never echoes the token`, async () => {
      const token = await make()
      const err = await refused(bearer(token))
      assert.ok(reasons.includes(err.reason ?? ''), `reason ${err.reason}, expected one of ${reasons.join(', ')}`)
      assert.equal(err.status, 401)
      for (const part of token.split('.').filter((p) => p.length > 8)) assert.ok(!err.message.includes(part))
    })
  }

  it("accepts the other issuer's own token signed with its own k1 (the key, not the kid, decides)", async () => {
    const token = await signToken(keyB.privateKey, { alg: 'RS256', kid: 'k1', typ: 'at+jwt' }, { ...base(), iss: idpB.issuer, sub: 'b-user' })
    assert.equal((await bearer(token)).subject, 'b-user')
  })
})

describe('OIDC key rotation at the provider', () => {
  it('refetches the JWKS for a new kid, at most once per cooldown', async () => {
    const first = await startIdp({ key: await newSigningKey('old') })
    const config = oidcConfig([first.issuer])
    const { log } = captureLog()
    const store = createEmbeddedKeyStore({ dataDir: config.store.dataDir, log })
    // Two gateways: one with the SPEC's 30 s cooldown, one with a short one to see the refetch.
    const strict = createAuthenticator({ config, keyStore: store, log })
    const quick = createAuthenticator({ config, keyStore: store, log, oidc: { jwksCooldownMs: 200 } })
    let second: Idp | null = null
    try {
      const oldToken = await first.token('analyst')
      assert.equal((await strict.authenticate(`Bearer ${oldToken}`)).subject, 'analyst')
      assert.equal((await quick.authenticate(`Bearer ${oldToken}`)).subject, 'analyst')
      await first.stop()
      second = await startIdp({ port: first.port, key: await newSigningKey('new') })
      const newToken = await second.token('analyst')
      assert.equal(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url').toString()).kid, 'new')

      const err = await refused(strict.authenticate(`Bearer ${newToken}`))
      assert.equal(err.reason, 'unknown_kid')
      assert.equal(second.jwksHits(), 0, 'a refetch happened inside the 30 s cooldown')

      await new Promise((r) => setTimeout(r, 250))
      assert.equal((await quick.authenticate(`Bearer ${newToken}`)).subject, 'analyst')
      assert.equal(second.jwksHits(), 1)
    } finally {
      await strict.close()
      await quick.close()
      await store.close()
      await (second ?? first).stop()
    }
  })
})

describe('an issuer that is down when the gateway starts', () => {
  it('refuses its tokens with issuer_unavailable, then accepts them once it answers', async () => {
    const { freePort } = await import('../helpers/ports.js')
    const port = await freePort()
    const key = await newSigningKey('k1')
    const issuer = `http://127.0.0.1:${port}`
    const config = oidcConfig([issuer])
    const logged = captureLog()
    const store = createEmbeddedKeyStore({ dataDir: config.store.dataDir, log: logged.log })
    const auth = createAuthenticator({ config, keyStore: store, log: logged.log })
    let idp: Idp | null = null
    try {
      const token = await signToken(key.privateKey, { alg: 'RS256', kid: 'k1', typ: 'at+jwt' }, {
        iss: issuer, aud: AUDIENCE, sub: 'early-bird', exp: now() + 300, iat: now(),
      })
      const err = await refused(auth.authenticate(`Bearer ${token}`))
      assert.equal(err.reason, 'issuer_unavailable')
      assert.ok(logged.lines.some((l) => l.includes('oidc discovery failed') && l.includes('ECONNREFUSED')), 'the log says why')

      idp = await startIdp({ port, key })
      let accepted = false
      const deadline = Date.now() + 15_000
      while (!accepted && Date.now() < deadline) {
        accepted = await auth.authenticate(`Bearer ${token}`).then((p) => p.subject === 'early-bird', () => false)
        if (!accepted) await new Promise((r) => setTimeout(r, 100))
      }
      assert.ok(accepted, 'the token was not accepted after the issuer came up')
      for (const line of logged.lines) assert.ok(!line.includes(token))
    } finally {
      await auth.close()
      await store.close()
      await idp?.stop()
    }
  })
})
