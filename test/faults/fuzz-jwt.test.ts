import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { Agent, request } from 'undici'
import { SignJWT, exportSPKI, importJWK, type CryptoKey, type JWTPayload } from 'jose'
import { startGateway, type GatewayHandle } from '../helpers/processes.js'
import { ADMIN_TOKEN, createKey } from '../e2e/helpers.js'
import { AUDIENCE, newSigningKey, signToken, startIdp, type Idp, type SigningKey } from '../auth/idp.js'
import { anyRoute, startFakeReplica, type FakeReplica } from './fake-replica.js'
import { FUZZ_SEED } from './fuzz-corpus.js'
import { alive, faultConfig, keyList, mapLimit, openAIErrorProblem } from './harness.js'
import { needleTap, startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// Random, garbled and forged JWTs against a gateway trusting a real oidc-provider issuer.
// Forgeries (another key with the issuer's kid, alg none, HS256 keyed with the public key,
// a tampered payload, jku/x5u pointing elsewhere) are always refused (401, or 431 when too big); tokens the issuer's own key
// signed are judged on their claims. Never a 500, never a token upstream or in the logs, the
// key store unchanged, and unknown kids do not make the gateway hammer the issuer's JWKS.

const CASES = Number(process.env.JWT_FUZZ_CASES ?? 3000)
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

type Recipe =
  | { kind: 'random'; text: string }
  | { kind: 'garbled'; at: number; op: 'flip' | 'cut' | 'dot' | 'swap' | 'drop-sig' }
  | { kind: 'forged'; how: 'other-key' | 'none' | 'hs256-public' | 'tampered' | 'jku'; kid: string; admin: boolean }
  | { kind: 'claims'; claims: Record<string, unknown>; header: Record<string, unknown> }

function recipes(n: number): Recipe[] {
  const now = Math.floor(Date.now() / 1000)
  const kid = fc.constantFrom('k1', 'k2', '', '../../jwks', 'k1\u0000', 'x'.repeat(5000), '__proto__')
  const oddValue = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.constantFrom(null, true, [], {}, 1e308, -1, 'k1', now + 300))
  // Each claim is mostly right, so that many tokens fail on one claim only (or pass).
  const mostly = (good: unknown, ...bad: unknown[]) => fc.oneof({ weight: 4, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) })
  const claim = fc.record({
    iss: mostly('ISSUER', 'ISSUER/', 'http://evil.example', '', 42),
    aud: mostly(AUDIENCE, [AUDIENCE, 'other'], 'other', [], AUDIENCE.toUpperCase()),
    exp: mostly(now + 300, now - 3600, '9999999999', 1e308, -1, undefined, now + 10 * 365 * 86400),
    nbf: mostly(undefined, now + 3600, now - 10, 'soon'),
    sub: mostly('fuzz-user', '', 'x'.repeat(10_000), undefined, 7, '../admin', '__proto__'),
    roles: mostly(['analyst'], ['gatehouse-admin'], 'analyst gatehouse-admin', [['analyst']], { 0: 'analyst' }, undefined, Array(5000).fill('analyst'), ['__proto__']),
    extra: fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'realm_access', 'scope', 'cnf'), oddValue, { maxKeys: 3 }),
  })
  const arb: fc.Arbitrary<Recipe> = fc.oneof(
    fc.record({ kind: fc.constant('random' as const), text: fc.oneof(fc.string({ maxLength: 300 }), fc.stringMatching(/^[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,200}\.[A-Za-z0-9_-]{0,80}$/)) }),
    fc.record({ kind: fc.constant('garbled' as const), at: fc.nat(), op: fc.constantFrom('flip', 'cut', 'dot', 'swap', 'drop-sig') }),
    fc.record({ kind: fc.constant('forged' as const), how: fc.constantFrom('other-key', 'none', 'hs256-public', 'tampered', 'jku'), kid, admin: fc.boolean() }),
    fc.record({
      kind: fc.constant('claims' as const),
      claims: claim.map(({ roles, extra, ...rest }) => ({ ...extra, ...rest, realm_access: { roles } })),
      header: fc.record({ typ: mostly('at+jwt', undefined, 'JWT', 'application/at+jwt', 'id_token+jwt', 'JOSE', 7), crit: mostly(undefined, ['exp'], ['x-custom']) }),
    }),
  )
  return fc.sample(arb, { seed: FUZZ_SEED + 1, numRuns: n })
}

describe(`JWT fuzz against a real oidc-provider issuer (seed ${FUZZ_SEED + 1})`, () => {
  let idp: Idp
  let forger: SigningKey
  let replica: FakeReplica
  let proxy: TcpProxy
  let gw: GatewayHandle
  let keysBefore = ''
  let realToken = ''
  let jkuHits = 0
  let jkuServer: Server
  let jkuUrl = ''
  const sent: string[] = []

  before(async () => {
    idp = await startIdp()
    forger = await newSigningKey('k1')
    jkuServer = createServer((_req, res) => (jkuHits++, res.end(JSON.stringify({ keys: [forger.publicJwk] }))))
    await new Promise<void>((r) => jkuServer.listen(0, '127.0.0.1', r))
    jkuUrl = `http://127.0.0.1:${(jkuServer.address() as AddressInfo).port}/jwks`
    replica = await startFakeReplica(anyRoute())
    proxy = await startTcpProxy(Number(new URL(replica.url).port), (c, d, n) => tap.tap(c, d, n))
    const yaml = faultConfig({ oidc: idp.issuer, models: { m: 'fake' }, upstreams: { fake: { targets: [`http://127.0.0.1:${proxy.port}`] } } })
    gw = await startGateway(yaml, { GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' }, { waitReady: true })
    await createKey(gw, { name: 'jwt-fuzz-bystander', roles: ['user'] })
    keysBefore = await keyList(gw)
    realToken = await idp.token('analyst')
  })
  after(async () => {
    await gw?.stop()
    await proxy?.close()
    await replica?.close()
    await idp?.stop()
    await new Promise<void>((r) => (jkuServer ? jkuServer.close(() => r()) : r()))
  })
  let tap = needleTap([])

  /** Turns a recipe into a token, and says whether the issuer's own key signed it. */
  async function materialize(r: Recipe): Promise<{ token: string; genuine: boolean }> {
    const issuer = idp.issuer
    const base = (): JWTPayload => ({ iss: issuer, aud: AUDIENCE, sub: 'forger', exp: Math.floor(Date.now() / 1000) + 300, realm_access: { roles: ['gatehouse-admin', 'analyst'] } })
    if (r.kind === 'random') return { token: r.text, genuine: false }
    if (r.kind === 'garbled') {
      const [h, p, s] = realToken.split('.')
      const i = r.at % realToken.length
      const c = realToken[i] === 'A' ? 'B' : 'A'
      const token =
        r.op === 'flip' ? realToken.slice(0, i) + c + realToken.slice(i + 1)
        : r.op === 'cut' ? realToken.slice(0, i)
        : r.op === 'dot' ? `${realToken.slice(0, i)}.${realToken.slice(i)}`
        : r.op === 'swap' ? `${p}.${h}.${s}`
        : `${h}.${p}.`
      // A flip in a segment's padding bits decodes to the same bytes: still the real token.
      const bytes = (t: string) => t.split('.').map((seg) => Buffer.from(seg, 'base64url').toString('hex')).join('.')
      return { token, genuine: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) && bytes(token) === bytes(realToken) }
    }
    if (r.kind === 'forged') {
      const claims = r.admin ? base() : { ...base(), realm_access: { roles: ['analyst'] } }
      switch (r.how) {
        case 'other-key':
          return { token: await signToken(forger.privateKey, { alg: 'RS256', kid: r.kid, typ: 'at+jwt' }, claims), genuine: false }
        case 'none':
          return { token: `${b64({ alg: 'none', typ: 'at+jwt', kid: r.kid })}.${b64(claims)}.`, genuine: false }
        case 'hs256-public': {
          const pem = await exportSPKI((await importJWK(idp.key.publicJwk, 'RS256')) as CryptoKey)
          return { token: await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' }).sign(Buffer.from(pem)), genuine: false }
        }
        case 'tampered': {
          const [h, , s] = realToken.split('.')
          return { token: `${h}.${b64({ ...claims, sub: 'analyst' })}.${s}`, genuine: false }
        }
        case 'jku':
          return { token: await signToken(forger.privateKey, { alg: 'RS256', kid: 'k9', typ: 'at+jwt', jku: jkuUrl, x5u: jkuUrl } as never, claims), genuine: false }
      }
    }
    // fromEntries defines `__proto__` as an own claim (an assignment would set the prototype).
    const claims = Object.fromEntries(
      Object.entries(r.claims).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v === 'ISSUER' ? issuer : v === 'ISSUER/' ? `${issuer}/` : v]),
    )
    const header = { alg: 'RS256', kid: 'k1', ...Object.fromEntries(Object.entries(r.header).filter(([, v]) => v !== undefined)) }
    try {
      return { token: await new SignJWT(claims as JWTPayload).setProtectedHeader(header).sign(idp.key.privateKey), genuine: true }
    } catch {
      // jose will not sign it (e.g. an unknown `crit`): send it unsigned instead.
      return { token: `${b64(header)}.${b64(claims)}.`, genuine: false }
    }
  }

  it('a token fetched from the issuer is accepted (the fuzz below is judged against a working setup)', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${realToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    })
    assert.equal(res.status, 200, await res.text())
  })

  it(`${CASES} tokens on /v1 and /admin: forgeries always 401, never a 500, OpenAI-shaped errors`, async (t) => {
    const cases = await Promise.all(recipes(CASES).map(materialize))
    tap = needleTap([realToken, ...new Set(cases.filter((c) => c.genuine).map((c) => c.token))].filter((t) => t.length > 20))
    const jwksBefore = idp.jwksHits()
    const agent = new Agent({ connections: 16 })
    const failures: string[] = []
    const statuses = new Map<number, number>()
    try {
      await mapLimit(cases, 16, async ({ token, genuine }, i) => {
        sent.push(token)
        const admin = i % 3 === 0
        const res = await request(`${gw.url}${admin ? '/admin/keys' : '/v1/chat/completions'}`, {
          method: admin ? 'GET' : 'POST',
          headers: { authorization: `Bearer ${token.replace(/[^\t\x20-\x7e]/g, '?')}`, 'content-type': 'application/json' },
          body: admin ? undefined : JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
          dispatcher: agent,
        })
        const body = await res.body.text()
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        if (res.statusCode >= 500) failures.push(`#${i} status ${res.statusCode}: ${body.slice(0, 120)}`)
        // 431: a token too large for the header limit is refused before anyone reads it.
        else if (!genuine && res.statusCode !== 401 && res.statusCode !== 431) failures.push(`#${i} a token not signed by the issuer got ${res.statusCode}`)
        else if (res.statusCode >= 400 && openAIErrorProblem(JSON.parse(body))) failures.push(`#${i} error not OpenAI-shaped: ${body.slice(0, 120)}`)
      })
    } finally {
      await agent.close()
    }
    const seen = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ')
    t.diagnostic(`statuses ${seen}; ${cases.filter((c) => c.genuine).length} signed by the issuer's key; JWKS fetches ${idp.jwksHits() - jwksBefore}`)
    assert.ok(alive(gw), 'the gateway process exited')
    assert.deepEqual(failures.slice(0, 15), [], `${failures.length} of ${CASES} broke the contract (statuses ${seen})`)
    assert.ok((statuses.get(200) ?? 0) > 0, `no genuine token was accepted: the issuer is not wired up (statuses ${seen})`)
    assert.equal(jkuHits, 0, 'the gateway fetched a key URL named by a token')
    // Unknown kids refetch the JWKS at most once per 30 s per issuer.
    assert.ok(idp.jwksHits() - jwksBefore <= 3, `the JWKS was fetched ${idp.jwksHits() - jwksBefore} times`)
  })

  it('afterwards: healthy, the key store unchanged, no token upstream, in the audit trail or in the log', async () => {
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200)
    assert.equal(await keyList(gw), keysBefore)
    assert.ok(tap.bytes() > 0, 'nothing was sent upstream')
    assert.deepEqual(tap.found(), [], 'a token reached the replica')
    const jwt = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}/
    assert.doesNotMatch(readFileSync(join(gw.dir, 'audit.jsonl'), 'utf8'), jwt, 'a token is in the audit trail')
    assert.doesNotMatch(gw.output(), jwt, 'a token is in the gateway log')
    assert.ok(sent.length >= CASES)
  })
})
