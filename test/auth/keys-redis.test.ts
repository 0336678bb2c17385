import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createAuthenticator, newApiKey, type Authenticator } from '../../src/auth/index.js'
import { createRedisClient, createRedisKeyStore, type KeyStore, type NewApiKey } from '../../src/store/index.js'
import { ServiceUnavailable } from '../../src/errors/index.js'
import type { Config } from '../../src/config/index.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { captureLog, eventually, refused, testConfig } from './fixtures.js'

interface Replica {
  redis: Redis
  store: KeyStore
  auth: Authenticator
}

const input = (extra: Partial<NewApiKey> = {}) => {
  const { key, hash } = newApiKey()
  const value: NewApiKey = { name: 'r', subject: null, roles: ['analyst'], models: null, limits: null, expiresAt: null, hash, ...extra }
  return { key, input: value }
}

async function ready(client: Redis): Promise<void> {
  if (client.status !== 'ready') await once(client, 'ready')
}

describe('API keys in a real Redis shared by two gateways', () => {
  let server: RedisHandle
  let url: string
  let config: Config
  let prefix: string
  let observer: Redis
  const replicas: Replica[] = []
  const logged = captureLog()

  async function replica(opts: { cacheTtlMs?: number } = {}): Promise<Replica> {
    const redis = createRedisClient(url, logged.log, 'test-cmd')
    const subscriber = createRedisClient(url, logged.log, `test-sub-${prefix}`)
    await ready(redis)
    const store = createRedisKeyStore({ redis, subscriber, prefix, log: logged.log, flushIntervalMs: 50, ...opts })
    const auth = createAuthenticator({ config, keyStore: store, log: logged.log })
    const r = { redis, store, auth }
    replicas.push(r)
    return r
  }

  const subscribers = async () => ((await observer.pubsub('NUMSUB', `${prefix}keys:invalidate`)) as [string, number])[1]
  const gets = async () => Number(/cmdstat_get:calls=(\d+)/.exec(await observer.info('commandstats'))?.[1] ?? 0)

  let a: Replica
  let b: Replica

  before(async () => {
    server = process.env.REDIS_URL ? (null as unknown as RedisHandle) : await startRedis()
    url = process.env.REDIS_URL || server.url
    prefix = `t${randomUUID().slice(0, 8)}:`
    config = testConfig({ store: { redis: url, keyPrefix: prefix } })
    observer = createRedisClient(url, logged.log, 'test-observer')
    await ready(observer)
    a = await replica()
    b = await replica()
    assert.ok(await eventually(async () => (await subscribers()) === 2, 5000), 'the stores did not subscribe')
  })

  after(async () => {
    for (const r of replicas) {
      await r.auth.close()
      await r.store.close().catch(() => undefined)
      r.redis.disconnect()
    }
    observer.disconnect()
    await server?.stop()
  })

  it('a key created on one replica works on the other, from its cache without a round trip', async () => {
    const { key, input: k } = input()
    const record = await a.store.create(k)
    assert.equal((await b.auth.authenticate(`Bearer ${key}`)).keyId, record.id)
    const before = await gets()
    for (let i = 0; i < 5; i++) assert.equal((await b.auth.authenticate(`Bearer ${key}`)).keyId, record.id)
    assert.equal(await gets(), before, 'a cached key cost a Redis GET')
  })

  it('a revocation on one replica is refused by the other within 1 s', async () => {
    const { key, input: k } = input()
    const record = await a.store.create(k)
    await b.auth.authenticate(`Bearer ${key}`)
    await a.store.revoke(record.id)
    const refusedInTime = await eventually(
      () => b.auth.authenticate(`Bearer ${key}`).then(() => false, (err: { reason?: string }) => err.reason === 'revoked'),
      1000,
    )
    assert.ok(refusedInTime, 'replica B still accepted the revoked key after 1 s')
  })

  it('a rotation on one replica retires the old secret on the other within 1 s', async () => {
    const { key, input: k } = input()
    const record = await a.store.create(k)
    await b.auth.authenticate(`Bearer ${key}`)
    const next = newApiKey()
    const outcome = await a.store.rotate(record.id, next.hash)
    assert.ok(outcome.ok)
    const retired = await eventually(
      () => b.auth.authenticate(`Bearer ${key}`).then(() => false, (err: { reason?: string }) => err.reason === 'unknown_key'),
      1000,
    )
    assert.ok(retired, 'replica B still accepted the old secret after 1 s')
    assert.equal((await b.auth.authenticate(`Bearer ${next.key}`)).keyId, record.id)
    assert.deepEqual(await a.store.rotate('key_AAAAAAAAAAAAAAAA', newApiKey().hash), { ok: false, reason: 'not_found' })
  })

  it('honours expiresAt and keeps lastUsedAt without a write per request', async () => {
    const expired = input({ expiresAt: new Date(Date.now() - 1000).toISOString() })
    await a.store.create(expired.input)
    assert.equal((await refused(b.auth.authenticate(`Bearer ${expired.key}`))).reason, 'expired')

    const used = input()
    const record = await a.store.create(used.input)
    await b.auth.authenticate(`Bearer ${used.key}`)
    const flushed = await eventually(async () => (await a.store.get(record.id))?.lastUsedAt != null, 5000)
    assert.ok(flushed, "B's lastUsedAt never reached Redis")
    const listed = (await a.store.list()).find((r) => r.id === record.id)
    assert.ok(listed?.lastUsedAt)
    assert.equal(listed?.hash, used.input.hash)
  })

  it('re-reads a cached key after cacheTtlMs even if the invalidation message is lost', async () => {
    const short = await replica({ cacheTtlMs: 200 })
    assert.ok(await eventually(async () => (await subscribers()) === 3, 5000))
    const { key, input: k } = input()
    const record = await a.store.create(k)
    await short.auth.authenticate(`Bearer ${key}`)
    await b.auth.authenticate(`Bearer ${key}`)
    // Revoke behind the stores' backs: no message is published.
    await observer.hset(`${prefix}key:${record.id}`, 'revokedAt', new Date().toISOString())
    assert.equal((await b.auth.authenticate(`Bearer ${key}`)).keyId, record.id, 'B (30 s cache) should still trust its cache')
    const noticed = await eventually(
      () => short.auth.authenticate(`Bearer ${key}`).then(() => false, (err: { reason?: string }) => err.reason === 'revoked'),
      5000,
    )
    assert.ok(noticed, 'the safety-net expiry did not re-read the key')
  })

  it('empties the cache when the pub/sub connection drops and comes back', async () => {
    const { key, input: k } = input()
    const record = await a.store.create(k)
    await b.auth.authenticate(`Bearer ${key}`)
    await observer.hset(`${prefix}key:${record.id}`, 'revokedAt', new Date().toISOString())
    // Only this test's subscribers: a shared REDIS_URL may serve other test files too.
    const list = String(await observer.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
    const ids = list.split('\n').filter((l) => l.includes(`name=test-sub-${prefix} `)).map((l) => /\bid=(\d+)/.exec(l)![1])
    assert.ok(ids.length >= 2)
    for (const id of ids) await observer.client('KILL', 'ID', id)
    const noticed = await eventually(
      () => b.auth.authenticate(`Bearer ${key}`).then(() => false, (err: { reason?: string }) => err.reason === 'revoked'),
      5000,
    )
    assert.ok(noticed, 'B kept trusting its cache across a pub/sub reconnect')
    assert.ok(await eventually(async () => (await subscribers()) >= 2, 5000), 'the subscriptions did not come back')
  })

  it('fails closed (503) for an uncached key when Redis is unreachable', { skip: Boolean(process.env.REDIS_URL) }, async () => {
    const { key, input: k } = input()
    await a.store.create(k)
    await server.stop()
    await eventually(async () => a.redis.status !== 'ready', 5000)
    await assert.rejects(b.auth.authenticate(`Bearer ${key}`), (err) => err instanceof ServiceUnavailable && err.status === 503)
  })
})
