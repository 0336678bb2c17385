import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createAuthenticator, hashCredential, newApiKey, sameHash, type Authenticator } from '../../src/auth/index.js'
import { createEmbeddedKeyStore, type KeyStore } from '../../src/store/index.js'
import type { Config } from '../../src/config/index.js'
import { ADMIN_TOKEN, captureLog, eventually, refused, testConfig } from './fixtures.js'

const newKey = (roles: string[] = ['analyst'], extra: Partial<Parameters<KeyStore['create']>[0]> = {}) => {
  const { key, hash } = newApiKey()
  return { key, input: { name: 'test', subject: null, roles, models: null, limits: null, expiresAt: null, hash, ...extra } }
}

describe('API keys with the embedded store', () => {
  let config: Config
  let store: KeyStore
  let auth: Authenticator
  const logged = captureLog()
  const keysSeen: string[] = []

  before(() => {
    config = testConfig()
    store = createEmbeddedKeyStore({ dataDir: config.store.dataDir, log: logged.log, flushIntervalMs: 50 })
    auth = createAuthenticator({ config, keyStore: store, log: logged.log })
  })
  after(async () => {
    await auth.close()
    await store.close()
    for (const key of keysSeen) for (const line of logged.lines) assert.ok(!line.includes(key))
  })

  const bearer = (key: string) => {
    keysSeen.push(key)
    return auth.authenticate(`Bearer ${key}`)
  }

  it('issues ghk_ keys of 32 random bytes, different every time', () => {
    const a = newApiKey()
    const b = newApiKey()
    assert.match(a.key, /^ghk_[A-Za-z0-9_-]{43}$/)
    assert.equal(Buffer.from(a.key.slice(4), 'base64url').length, 32)
    assert.notEqual(a.key, b.key)
    assert.notEqual(a.hash, b.hash)
    assert.ok(!a.hash.includes(a.key.slice(4)))
  })

  it('verifies a key into a principal with its subject, id, roles and narrowing', async () => {
    const { key, input } = newKey(['analyst'], { models: ['llama-*'], limits: { requestsPerMinute: 5 } })
    const record = await store.create(input)
    const p = await bearer(key)
    assert.equal(p.authMethod, 'api_key')
    assert.equal(p.keyId, record.id)
    assert.equal(p.subject, `key:${record.id}`)
    assert.deepEqual(p.roles, ['analyst'])
    assert.deepEqual(p.keyModels, ['llama-*'])
    assert.deepEqual(p.keyLimits, { requestsPerMinute: 5 })
    assert.equal(p.isAdmin, false)
  })

  it('refuses unknown, malformed, revoked and expired keys with their reasons', async () => {
    assert.equal((await refused(bearer(newApiKey().key))).reason, 'unknown_key')
    assert.equal((await refused(bearer('ghk_tooshort'))).reason, 'malformed')

    const revoked = newKey()
    const r = await store.create(revoked.input)
    await bearer(revoked.key)
    await store.revoke(r.id)
    const err = await refused(bearer(revoked.key))
    assert.equal(err.reason, 'revoked')
    assert.ok(!err.message.includes(revoked.key))

    const expired = newKey(['analyst'], { expiresAt: new Date(Date.now() - 1000).toISOString() })
    await store.create(expired.input)
    assert.equal((await refused(bearer(expired.key))).reason, 'expired')
  })

  it('rotation retires the old secret and keeps the id', async () => {
    const { key, input } = newKey()
    const record = await store.create(input)
    const next = newApiKey()
    const outcome = await store.rotate(record.id, next.hash)
    assert.ok(outcome.ok)
    assert.equal((await refused(bearer(key))).reason, 'unknown_key')
    assert.equal((await bearer(next.key)).keyId, record.id)
    await store.revoke(record.id)
    assert.deepEqual(await store.rotate(record.id, newApiKey().hash), { ok: false, reason: 'revoked' })
    assert.deepEqual(await store.rotate('key_AAAAAAAAAAAAAAAA', newApiKey().hash), { ok: false, reason: 'not_found' })
  })

  it('parses the Authorization header and recognises the admin token in constant time', async () => {
    assert.equal((await refused(auth.authenticate(undefined))).reason, 'missing')
    assert.equal((await refused(auth.authenticate(''))).reason, 'missing')
    assert.equal((await refused(auth.authenticate(`Basic ${ADMIN_TOKEN}`))).reason, 'malformed')
    assert.equal((await refused(auth.authenticate('Bearer two words'))).reason, 'malformed')
    const admin = await auth.authenticate(`Bearer ${ADMIN_TOKEN}`)
    assert.deepEqual([admin.authMethod, admin.subject, admin.isAdmin], ['admin_token', 'admin', true])
    assert.equal((await auth.authenticate(`bearer ${ADMIN_TOKEN}`)).isAdmin, true)
    const wrong = await refused(auth.authenticate(`Bearer ${ADMIN_TOKEN}x`))
    assert.equal(wrong.reason, 'malformed')
    assert.ok(!wrong.message.includes(ADMIN_TOKEN))
  })

  it('sameHash: equal only for the same hex text, whichever character differs', () => {
    const h = hashCredential('ghk_example')
    assert.equal(sameHash(h, hashCredential('ghk_example')), true)
    for (const i of [0, 31, 63]) {
      const other = h.slice(0, i) + (h[i] === 'a' ? 'b' : 'a') + h.slice(i + 1)
      assert.equal(sameHash(h, other), false, `differs at ${i}`)
    }
    assert.equal(sameHash(h, h.slice(0, 63)), false)
    assert.equal(sameHash('', ''), true)
  })

  it('tracks lastUsedAt in memory and writes it in batches', async () => {
    const { key, input } = newKey()
    const record = await store.create(input)
    assert.equal(record.lastUsedAt, null)
    await bearer(key)
    assert.ok((await store.get(record.id))?.lastUsedAt, 'lastUsedAt visible before the flush')
    const onDisk = () => {
      const doc = JSON.parse(readFileSync(join(config.store.dataDir, 'keys.json'), 'utf8')) as { keys: { id: string; lastUsedAt: string | null }[] }
      return doc.keys.find((k) => k.id === record.id)?.lastUsedAt ?? null
    }
    assert.ok(await eventually(async () => onDisk() !== null, 5000), 'lastUsedAt never reached the file')
  })

  it('persists keys (hashes only, mode 0600) across a new store on the same dataDir', async () => {
    const kept = newKey(['batch'])
    const keptRecord = await store.create(kept.input)
    const gone = newKey()
    const goneRecord = await store.create(gone.input)
    await store.revoke(goneRecord.id)

    const file = join(config.store.dataDir, 'keys.json')
    const text = readFileSync(file, 'utf8')
    assert.ok(!text.includes(kept.key) && !text.includes(kept.key.slice(4)), 'a secret was written to disk')
    assert.ok(text.includes(kept.input.hash))
    assert.equal(statSync(file).mode & 0o777, 0o600)

    const reopened = createEmbeddedKeyStore({ dataDir: config.store.dataDir, log: logged.log })
    const auth2 = createAuthenticator({ config, keyStore: reopened, log: logged.log })
    try {
      assert.equal((await auth2.authenticate(`Bearer ${kept.key}`)).keyId, keptRecord.id)
      assert.equal((await refused(auth2.authenticate(`Bearer ${gone.key}`))).reason, 'revoked')
      assert.equal((await reopened.list()).length, (await store.list()).length)
    } finally {
      await auth2.close()
      await reopened.close()
    }
  })

  it('refuses every key when auth.apiKeys is false', async () => {
    const off = testConfig({ auth: { apiKeys: false, adminToken: ADMIN_TOKEN } })
    const offStore = createEmbeddedKeyStore({ dataDir: off.store.dataDir, log: logged.log })
    const offAuth = createAuthenticator({ config: off, keyStore: offStore, log: logged.log })
    try {
      const { key, input } = newKey()
      await offStore.create(input)
      assert.equal((await refused(offAuth.authenticate(`Bearer ${key}`))).reason, 'api_keys_disabled')
    } finally {
      await offAuth.close()
      await offStore.close()
    }
  })

  it('refuses a JWT when no issuer is configured', async () => {
    const jwt = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"iss":"x"}').toString('base64url')}.c2ln`
    assert.equal((await refused(auth.authenticate(`Bearer ${jwt}`))).reason, 'unknown_issuer')
  })
})
