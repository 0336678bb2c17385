import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { startGateway, startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { AUDIENCE, signToken, startIdp, type Idp } from '../auth/idp.js'
import { simRequests, waitUntil } from './helpers.js'

// A company login end to end: a real OpenID provider issues client-credentials access
// tokens; the gateway process verifies them, maps their roles, and never forwards them.

const config = (issuer: string, sim: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth:
  oidc:
    - issuer: ${issuer}
      audience: ${AUDIENCE}
      rolesClaim: realm_access.roles
  adminRoles: [gatehouse-admin]
roles:
  analyst: { models: ["m"], requestsPerMinute: 100 }
models:
  m: { upstream: sim }
  other: { upstream: sim }
upstreams:
  sim: { kind: vllm, targets: ["${sim}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

describe('OIDC access tokens through the gateway process', () => {
  let idp: Idp
  let sim: SimHandle
  let gw: GatewayHandle

  before(async () => {
    idp = await startIdp()
    sim = await startSim('vllm', ['--model', 'm,other'])
    gw = await startGateway(config(idp.issuer, sim.url), { REDIS_URL: '' })
  })
  after(async () => {
    await gw?.stop()
    await sim?.stop()
    await idp?.stop()
  })

  it('a token with a configured role is served; its roles decide the models; it never reaches the replica', async () => {
    const token = await idp.token('analyst')
    const client = new OpenAI({ apiKey: token, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    const res = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })
    assert.equal(res.model, 'm')
    await assert.rejects(client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }), OpenAI.NotFoundError)
    const seen = await simRequests(sim.url)
    assert.ok(seen.length > 0)
    assert.ok(!JSON.stringify(seen).includes(token.split('.')[2]), 'the token reached the replica')
    const auditPath = join(gw.dir, 'audit.jsonl')
    assert.ok(await waitUntil(async () => readFileSync(auditPath, 'utf8').includes('"authMethod":"oidc"')), 'no oidc audit line')
    const audit = readFileSync(auditPath, 'utf8')
    assert.ok(!audit.includes(token.split('.')[2]), 'the token is in the audit trail')
  })

  it('no configured role: 403; forged or foreign tokens: 401', async () => {
    const nobody = new OpenAI({ apiKey: await idp.token('nobody'), baseURL: `${gw.url}/v1`, maxRetries: 0 })
    await assert.rejects(nobody.models.list(), OpenAI.PermissionDeniedError)
    const now = Math.floor(Date.now() / 1000)
    const claims = { iss: idp.issuer, aud: AUDIENCE, sub: 'mallory', exp: now + 300, realm_access: { roles: ['analyst'] } }
    const forged = await signToken(new TextEncoder().encode('not-the-issuer-key-0123456789abcdef'), { alg: 'HS256', kid: idp.key.kid }, claims)
    const expired = await signToken(idp.key.privateKey, { alg: 'RS256', kid: idp.key.kid }, { ...claims, exp: now - 3600 })
    const wrongAud = await signToken(idp.key.privateKey, { alg: 'RS256', kid: idp.key.kid }, { ...claims, aud: 'someone-else' })
    for (const token of [forged, expired, wrongAud, 'not.a.jwt']) {
      const c = new OpenAI({ apiKey: token, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      await assert.rejects(c.models.list(), OpenAI.AuthenticationError)
    }
    const good = await signToken(idp.key.privateKey, { alg: 'RS256', kid: idp.key.kid, typ: 'at+jwt' }, claims)
    const ok = new OpenAI({ apiKey: good, baseURL: `${gw.url}/v1`, maxRetries: 0 })
    assert.deepEqual((await ok.models.list()).data.map((m) => m.id), ['m'])
  })

  it('an admin role may use the admin API; a plain role may not', async () => {
    const admin = await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${await idp.token('ops')}` } })
    assert.equal(admin.status, 200)
    const plain = await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${await idp.token('analyst')}` } })
    assert.equal(plain.status, 403)
  })
})
