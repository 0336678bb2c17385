import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { tmpdir } from 'node:os'
import type { Redis } from 'ioredis'
import { silentLogger } from '../../src/log/index.js'
import { createRedisClient } from '../../src/store/index.js'
import { RedisQuotaLimiter, createQuotaLimiter, type QuotaLimiter } from '../../src/quota/index.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { admissionCases } from './admission-cases.js'
import { awayFromMinuteEdge, eventually, reserveMany, sleep, uniqueSubject } from './quota-helpers.js'

// Two limiters on two connections to one real redis-server: two gateway processes, as far
// as Redis can tell. Admission must be exact across them.

let redis: RedisHandle
const clients: Redis[] = []
let a: QuotaLimiter
let b: QuotaLimiter
const PREFIX = 'ght:'

function limiterOn(client: Redis, leaseTtlMs?: number): QuotaLimiter {
  const config = { store: { redis: redis.url, dataDir: tmpdir(), keyPrefix: PREFIX } }
  return createQuotaLimiter({ config, redis: client, log: silentLogger, leaseTtlMs })
}

function newClient(): Redis {
  const c = createRedisClient(redis.url, silentLogger, 'quota-test')
  clients.push(c)
  return c
}

before(async () => {
  redis = await startRedis()
  a = limiterOn(newClient())
  b = limiterOn(newClient())
  assert.ok(await eventually(() => a.isReady() && b.isReady(), 5000))
})

after(async () => {
  await a?.close()
  await b?.close()
  for (const c of clients) c.disconnect()
  await redis?.stop()
})

admissionCases(() => ({ one: a, all: [a, b] }))

test('createQuotaLimiter picks the Redis limiter when given a client', () => {
  assert.ok(a instanceof RedisQuotaLimiter)
})

test("one subject's keys share a hash tag; a subject without limits leaves no quota keys", async () => {
  const subject = uniqueSubject('keys')
  const r = await a.reserve({ requestId: 'k', subject, limits: { requestsPerMinute: 5, maxConcurrent: 2 }, reservedTokens: 3 })
  const admin = newClient()
  assert.ok(await eventually(() => admin.status === 'ready', 5000))
  assert.deepEqual((await admin.keys(`${PREFIX}q:*${subject}*`)).sort(), [`${PREFIX}q:{${subject}}:c`, `${PREFIX}q:{${subject}}:w`])
  await a.settle(r, { model: 'm', promptTokens: 1, completionTokens: 1 })
  assert.equal(await admin.zcard(`${PREFIX}q:{${subject}}:c`), 0, 'settle released the lease')

  const free = uniqueSubject('free')
  const f = await a.reserve({ requestId: 'f', subject: free, limits: {}, reservedTokens: 3 })
  await a.settle(f, { model: 'm', promptTokens: 1, completionTokens: 1 })
  assert.deepEqual(await admin.keys(`${PREFIX}q:*${free}*`), [])
  assert.equal((await a.queryUsage({ subject: free })).length, 1)
})

test('a live limiter keeps its slot past the lease TTL; a dead one loses it by itself', async () => {
  const ttl = 300
  const liveClient = newClient()
  const deadClient = newClient()
  const live = limiterOn(liveClient, ttl)
  const dead = limiterOn(deadClient, ttl)
  const other = limiterOn(newClient(), ttl)
  try {
    assert.ok(await eventually(() => live.isReady() && dead.isReady() && other.isReady(), 5000))
    const limits = { maxConcurrent: 1 }
    const s1 = uniqueSubject('lease-live')
    const held = await live.reserve({ requestId: 'l', subject: s1, limits, reservedTokens: 1 })
    await sleep(ttl * 4) // renewed meanwhile
    assert.equal((await reserveMany([other], 1, s1, limits, 1)).admitted.length, 0)
    await live.settle(held, { model: 'm', promptTokens: 1, completionTokens: 0 })
    assert.equal((await reserveMany([other], 1, s1, limits, 1)).admitted.length, 1)

    // Two slots: one held by the live process (its renewals keep the lease set alive), one by
    // a process that dies. Only the dead one's lease may lapse.
    const s2 = uniqueSubject('lease-dead')
    const two = { maxConcurrent: 2 }
    await live.reserve({ requestId: 'l2', subject: s2, limits: two, reservedTokens: 1 })
    await dead.reserve({ requestId: 'd', subject: s2, limits: two, reservedTokens: 1 })
    // The process "dies": no settle, no more renewals, its connection gone.
    await dead.close()
    deadClient.disconnect()
    assert.equal((await reserveMany([other], 1, s2, two, 1)).admitted.length, 0)
    const freed = await eventually(async () => (await reserveMany([other], 1, s2, two, 1)).admitted.length === 1, ttl * 10)
    assert.ok(freed, 'the dead limiter still holds the slot')
    await sleep(ttl * 2)
    assert.equal((await reserveMany([other], 1, s2, two, 1)).admitted.length, 0, 'the live lease lapsed too')
  } finally {
    await live.close()
    await other.close()
  }
})

test('scripts flushed from Redis are loaded again (NOSCRIPT fallback)', async () => {
  const subject = uniqueSubject('noscript')
  const limits = { requestsPerMinute: 1000, maxConcurrent: 5 }
  const r1 = await a.reserve({ requestId: '1', subject, limits, reservedTokens: 1 })
  await a.settle(r1, { model: 'm', promptTokens: 1, completionTokens: 0 })
  const admin = newClient()
  assert.ok(await eventually(() => admin.status === 'ready', 5000))
  await admin.script('FLUSH')
  const r2 = await a.reserve({ requestId: '2', subject, limits, reservedTokens: 1 })
  assert.equal(r2.headers['x-ratelimit-remaining-requests'], '998')
  await a.settle(r2, { model: 'm', promptTokens: 1, completionTokens: 0 })
  assert.equal(await admin.zcard(`${PREFIX}q:{${subject}}:c`), 0, 'settle script ran after the flush')
  assert.equal((await a.queryUsage({ subject }))[0].requests, 2)
})

test('settle across a window boundary: refunds to an ended minute dropped, overruns charged to the current one', async () => {
  // Redis's clock cannot be moved, so the reservations claim a window that has ended.
  await awayFromMinuteEdge()
  const subject = uniqueSubject('boundary')
  const limits = { requestsPerMinute: 100, tokensPerMinute: 1000, tokensPerDay: 10_000 }
  const peek = async () => {
    const h = await b.peekHeaders(subject, limits)
    return [h['x-ratelimit-remaining-tokens'], h['x-ratelimit-remaining-tokens-day'], h['x-ratelimit-remaining-requests']]
  }
  const r1 = await a.reserve({ requestId: '1', subject, limits, reservedTokens: 100 })
  const minute = r1.minuteWindow ?? 0
  await a.settle({ ...r1, minuteWindow: minute - 1 }, { model: 'm', promptTokens: 10, completionTokens: 20 })
  assert.deepEqual(await peek(), ['900', '9970', '99'])
  const r2 = await a.reserve({ requestId: '2', subject, limits, reservedTokens: 100 })
  await a.settle({ ...r2, minuteWindow: minute - 1 }, { model: 'm', promptTokens: 100, completionTokens: 50 })
  assert.deepEqual(await peek(), ['750', '9820', '98'])

  // Nobody used the subject since its minute ended: the overrun opens the current minute.
  const admin = newClient()
  assert.ok(await eventually(() => admin.status === 'ready', 5000))
  await admin.hset(`${PREFIX}q:{${subject}}:w`, 'm', minute - 5)
  await a.settle({ ...r2, minuteWindow: minute - 5, reservedTokens: 0 }, { model: 'm', promptTokens: 40, completionTokens: 0 })
  assert.deepEqual(await peek(), ['960', '9780', '100'])
  assert.ok((await admin.pttl(`${PREFIX}q:{${subject}}:w`)) > 0)
})
