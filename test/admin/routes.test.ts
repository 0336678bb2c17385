import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN_TOKEN, REPLICAS, adminHarness, type Harness } from './harness.js'
import { startIdp, type Idp } from '../auth/idp.js'

interface KeyJson {
  id: string
  key?: string
  name: string
  subject: string
  roles: string[]
  models: string[] | null
  limits: Record<string, number> | null
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}
interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: string }
}

describe('the admin API', () => {
  let idp: Idp
  let h: Harness
  let opsToken: string
  let analystToken: string
  const secrets: string[] = [ADMIN_TOKEN]

  before(async () => {
    idp = await startIdp()
    h = adminHarness([idp.issuer])
    opsToken = await idp.token('ops')
    analystToken = await idp.token('analyst')
    secrets.push(opsToken, analystToken)
  })
  after(async () => {
    await h.close()
    await idp.stop()
    const audit = JSON.stringify(h.events)
    for (const s of secrets) assert.ok(!audit.includes(s), 'a credential reached the audit log')
  })

  const call = async (method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string } = {}) => {
    const token = opts.token === undefined ? ADMIN_TOKEN : opts.token
    const headers: Record<string, string> = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] = 'application/json'
    const res = await h.app.request(path, {
      method,
      headers,
      body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    })
    return { status: res.status, json: (await res.json()) as unknown, requestId: res.headers.get('x-request-id') }
  }
  const create = async (body: unknown, token?: string) => {
    const res = await call('POST', '/admin/keys', { body, token })
    return { status: res.status, key: res.json as KeyJson, error: res.json as ErrorJson }
  }
  const lastEvent = () => h.events[h.events.length - 1]

  it('refuses callers without a credential (401) and non-admins (403), and audits both', async () => {
    const before = h.events.length
    const none = await call('GET', '/admin/keys', { token: null })
    assert.equal(none.status, 401)
    assert.equal((none.json as ErrorJson).error.code, 'invalid_api_key')
    assert.deepEqual([lastEvent().action, lastEvent().status, lastEvent().reason, lastEvent().authMethod], ['keys.list', 401, 'missing', 'none'])

    const analyst = await call('POST', '/admin/keys', { token: analystToken, body: { name: 'x', roles: ['analyst'] } })
    assert.equal(analyst.status, 403)
    assert.equal((analyst.json as ErrorJson).error.code, 'permission_denied')
    assert.deepEqual([lastEvent().action, lastEvent().status, lastEvent().subject], ['keys.create', 403, 'analyst'])

    const { key } = await create({ name: 'not an admin', roles: ['analyst'] })
    secrets.push(key.key!)
    assert.equal((await call('GET', '/admin/keys', { token: key.key })).status, 403, 'API keys never administer')
    assert.equal(h.events.length, before + 4, 'one audit event per request')
  })

  it('creates a key (admin token): 201, the key shown once, defaults filled, audited with its id', async () => {
    const res = await create({ name: 'ci', roles: ['analyst', 'batch'], models: ['llama-3*'], limits: { requestsPerMinute: 5 } })
    assert.equal(res.status, 201)
    const k = res.key
    secrets.push(k.key!)
    assert.match(k.key!, /^ghk_[A-Za-z0-9_-]{43}$/)
    assert.match(k.id, /^key_/)
    assert.equal(k.subject, `key:${k.id}`)
    assert.deepEqual(k.roles, ['analyst', 'batch'])
    assert.deepEqual(k.models, ['llama-3*'])
    assert.deepEqual(k.limits, { requestsPerMinute: 5 })
    assert.equal(k.expiresAt, null)
    assert.ok(!Number.isNaN(Date.parse(k.createdAt)))
    assert.deepEqual([lastEvent().action, lastEvent().target, lastEvent().status, lastEvent().authMethod], ['keys.create', k.id, 201, 'admin_token'])
    const p = await h.auth.authenticate(`Bearer ${k.key}`)
    assert.equal(p.keyId, k.id)
  })

  it('lets an OIDC token with an admin role manage keys', async () => {
    const res = await create({ name: 'by-oidc', subject: 'team-a', roles: ['batch'], expiresAt: '2999-01-01T00:00:00Z' }, opsToken)
    assert.equal(res.status, 201)
    secrets.push(res.key.key!)
    assert.equal(res.key.subject, 'team-a')
    assert.equal(res.key.expiresAt, '2999-01-01T00:00:00.000Z')
    assert.deepEqual([lastEvent().subject, lastEvent().authMethod], ['ops', 'oidc'])
  })

  const invalid: [string, unknown, string | null][] = [
    ['an unknown field', { name: 'x', roles: ['analyst'], admin: true }, 'admin'],
    ['an unknown role', { name: 'x', roles: ['analyst', 'root'] }, 'roles'],
    ['no roles', { name: 'x', roles: [] }, 'roles'],
    ['no name', { roles: ['analyst'] }, 'name'],
    ['an impossible date', { name: 'x', roles: ['analyst'], expiresAt: '2030-02-30' }, 'expiresAt'],
    ['a date that is not ISO', { name: 'x', roles: ['analyst'], expiresAt: 'next tuesday' }, 'expiresAt'],
    ['a date in the past', { name: 'x', roles: ['analyst'], expiresAt: '2001-01-01T00:00:00Z' }, 'expiresAt'],
    ['a limit above the roles', { name: 'x', roles: ['analyst'], limits: { tokensPerMinute: 50000 } }, 'limits.tokensPerMinute'],
    ['an unknown limit', { name: 'x', roles: ['analyst'], limits: { tokensPerYear: 5 } }, 'limits.tokensPerYear'],
    ['a non-integer limit', { name: 'x', roles: ['analyst'], limits: { maxConcurrent: 1.5 } }, 'limits.maxConcurrent'],
    ['a subject with braces', { name: 'x', roles: ['analyst'], subject: 'a{b}' }, 'subject'],
    ['an array body', [], null],
  ]
  for (const [name, body, param] of invalid) {
    it(`answers 400 invalid_request_error for ${name}`, async () => {
      const res = await create(body)
      assert.equal(res.status, 400)
      assert.equal(res.error.error.code, 'invalid_request_error')
      assert.equal(res.error.error.param, param)
      assert.equal(lastEvent().status, 400)
    })
  }

  it('answers 400 for a body that is not JSON, and never echoes a pasted credential as a field name', async () => {
    assert.equal((await call('POST', '/admin/keys', { raw: '{"name":' })).status, 400)
    const pasted = `ghk_${'A'.repeat(43)}`
    const res = await create({ name: 'x', roles: ['analyst'], [pasted]: 1 })
    assert.equal(res.status, 400)
    assert.ok(!JSON.stringify(res.error).includes(pasted))
  })

  it('accepts limits below the roles, and any limit the roles leave unlimited', async () => {
    const res = await create({ name: 'low', roles: ['batch'], limits: { requestsPerMinute: 10, tokensPerDay: 99 } })
    assert.equal(res.status, 201)
    secrets.push(res.key.key!)
    assert.deepEqual(res.key.limits, { requestsPerMinute: 10, tokensPerDay: 99 })
  })

  it('lists and gets keys without secrets or hashes', async () => {
    const list = await call('GET', '/admin/keys')
    assert.equal(list.status, 200)
    const data = (list.json as { data: (KeyJson & { hash?: string })[] }).data
    assert.ok(data.length >= 3)
    for (const k of data) {
      assert.equal(k.key, undefined)
      assert.equal(k.hash, undefined)
      assert.ok('lastUsedAt' in k && 'revokedAt' in k)
    }
    const one = await call('GET', `/admin/keys/${data[0].id}`)
    assert.equal((one.json as KeyJson).id, data[0].id)
    assert.deepEqual([lastEvent().action, lastEvent().target], ['keys.get', data[0].id])
  })

  it('answers 404 for unknown and malformed ids, without putting path input in the audit', async () => {
    for (const path of ['key_AAAAAAAAAAAAAAAA', 'key_..%2F..%2Fetc', '..%2Fkeys', 'key_%00AAAAAAAAAAAAAA', `ghk_${'B'.repeat(43)}`, 'x'.repeat(300)]) {
      const res = await call('GET', `/admin/keys/${path}`)
      assert.equal(res.status, 404, path)
      assert.equal((res.json as ErrorJson).error.code, 'not_found')
      assert.ok(lastEvent().target === null || lastEvent().target === 'key_AAAAAAAAAAAAAAAA')
    }
    assert.equal((await call('DELETE', '/admin/keys/nope')).status, 404)
    assert.equal((await call('POST', '/admin/keys/nope/rotate')).status, 404)
  })

  it('revokes a key: refused at once, shown with revokedAt, idempotent', async () => {
    const { key } = await create({ name: 'doomed', roles: ['analyst'] })
    secrets.push(key.key!)
    const res = await call('DELETE', `/admin/keys/${key.id}`)
    assert.equal(res.status, 200)
    const revokedAt = (res.json as KeyJson).revokedAt
    assert.ok(revokedAt)
    assert.deepEqual([lastEvent().action, lastEvent().target, lastEvent().status], ['keys.revoke', key.id, 200])
    await assert.rejects(h.auth.authenticate(`Bearer ${key.key}`), { reason: 'revoked' })
    assert.equal(((await call('DELETE', `/admin/keys/${key.id}`)).json as KeyJson).revokedAt, revokedAt)
    assert.equal(((await call('GET', `/admin/keys/${key.id}`)).json as KeyJson).revokedAt, revokedAt)
  })

  it('rotates a key: a new secret, the old one refused; a revoked key cannot be rotated', async () => {
    const { key } = await create({ name: 'rolling', roles: ['analyst'] })
    const res = await call('POST', `/admin/keys/${key.id}/rotate`)
    assert.equal(res.status, 200)
    const rotated = res.json as KeyJson
    secrets.push(key.key!, rotated.key!)
    assert.equal(rotated.id, key.id)
    assert.notEqual(rotated.key, key.key)
    assert.equal((await h.auth.authenticate(`Bearer ${rotated.key}`)).keyId, key.id)
    await assert.rejects(h.auth.authenticate(`Bearer ${key.key}`), { reason: 'unknown_key' })
    await call('DELETE', `/admin/keys/${key.id}`)
    const again = await call('POST', `/admin/keys/${key.id}/rotate`)
    assert.equal(again.status, 400)
  })

  it('serves usage with a validated filter', async () => {
    const res = await call('GET', '/admin/usage?subject=u&from=2025-01-01&to=2025-01-31T12:00:00Z')
    assert.equal(res.status, 200)
    assert.equal((res.json as { data: unknown[] }).data.length, 1)
    assert.deepEqual(h.usageCalls.at(-1), { subject: 'u', from: '2025-01-01', to: '2025-01-31' })
    const calls = h.usageCalls.length
    for (const q of ['from=yesterday', 'to=2025-13-01', 'from=2025-02-01&to=2025-01-01', 'user=u']) {
      assert.equal((await call('GET', `/admin/usage?${q}`)).status, 400, q)
    }
    assert.equal(h.usageCalls.length, calls, 'invalid filters must not reach the store')
    assert.equal((await call('GET', '/admin/usage', { token: analystToken })).status, 403)
  })

  it('lists upstream replicas, and carries the request id to the response and the audit event', async () => {
    const res = await call('GET', '/admin/upstreams')
    assert.deepEqual((res.json as { data: unknown }).data, REPLICAS)
    assert.equal(lastEvent().action, 'upstreams.read')
    assert.match(res.requestId ?? '', /^req-\d+$/)
    assert.equal(lastEvent().requestId, res.requestId)
  })

  it('asks for a credential before saying an admin path does not exist', async () => {
    assert.equal((await call('GET', '/admin/nothing-here', { token: null })).status, 401)
    assert.equal((await call('GET', '/admin/nothing-here')).status, 404)
  })
})
