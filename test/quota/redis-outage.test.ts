import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import { ServiceUnavailable } from '../../src/errors/index.js'
import { silentLogger } from '../../src/log/index.js'
import { createRedisClient } from '../../src/store/index.js'
import { RedisQuotaLimiter } from '../../src/quota/index.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { awayFromMinuteEdge, captureLogger, eventually, reserveMany, sleep, uniqueSubject } from './quota-helpers.js'

// Fail closed: while Redis is gone nothing is admitted and the limiter is not ready; once it
// is back (same port, same data) the same limiter serves again, without a restart.

let redis: RedisHandle
let client: Redis
let limiter: RedisQuotaLimiter
const log = captureLogger()
const limits = { requestsPerMinute: 1000, tokensPerMinute: 1_000_000 }

async function restartRedis(): Promise<void> {
  redis = await redis.restart()
}

before(async () => {
  redis = await startRedis()
  client = createRedisClient(redis.url, silentLogger, 'quota-outage-test')
  limiter = new RedisQuotaLimiter(client, 'gho:', log, { settleRetryDelaysMs: [300, 600, 1200, 2400] })
  assert.ok(await eventually(() => limiter.isReady(), 5000))
})

after(async () => {
  await limiter?.close()
  client?.disconnect()
  await redis?.stop()
})

test('Redis stopped: 503 store_unavailable, nothing admitted, not ready; restarted: admitted again within 5 s', async () => {
  await awayFromMinuteEdge(10_000)
  const subject = uniqueSubject('outage')
  const before = await limiter.reserve({ requestId: 'b', subject, limits, reservedTokens: 10 })
  await limiter.settle(before, { model: 'm', promptTokens: 5, completionTokens: 5 })
  assert.equal(limiter.isReady(), true)

  await redis.stop()
  const down = await reserveMany([limiter], 20, subject, limits, 10)
  assert.equal(down.admitted.length, 0)
  assert.equal(down.refused.length, 0)
  assert.equal(down.other.length, 20)
  for (const err of down.other) {
    assert.ok(err instanceof ServiceUnavailable)
    assert.equal(err.status, 503)
    assert.equal(err.reason, 'store_unavailable')
  }
  assert.ok(await eventually(() => !limiter.isReady(), 2000), 'isReady stayed true with Redis down')
  // Subjects without limits skip the round trip, not the readiness check.
  await assert.rejects(limiter.reserve({ requestId: 'f', subject, limits: {}, reservedTokens: 1 }), ServiceUnavailable)
  await assert.rejects(limiter.peekHeaders(subject, limits), ServiceUnavailable)
  await assert.rejects(limiter.queryUsage({}), ServiceUnavailable)

  await restartRedis()
  const back = await eventually(async () => {
    try {
      await limiter.reserve({ requestId: 'a', subject, limits, reservedTokens: 10 })
      return true
    } catch (err) {
      assert.ok(err instanceof ServiceUnavailable)
      return false
    }
  }, 5000, 100)
  assert.ok(back, 'not admitted within 5 s of Redis coming back')
  assert.equal(limiter.isReady(), true)
  // The script cache died with the old server; the reserve above proves it was reloaded, and
  // the append-only file kept the counters: 2 admitted this minute.
  const h = await limiter.peekHeaders(subject, limits)
  assert.equal(h['x-ratelimit-remaining-requests'], '998')
})

test('settlement survives a short outage by retrying', async () => {
  await awayFromMinuteEdge(8000)
  const subject = uniqueSubject('settle-retry')
  const r = await limiter.reserve({ requestId: 's', subject, limits, reservedTokens: 100 })
  await redis.stop()
  const settling = limiter.settle(r, { model: 'm', promptTokens: 3, completionTokens: 4 })
  await sleep(200)
  await restartRedis()
  await settling
  assert.deepEqual(
    (await limiter.queryUsage({ subject })).map((u) => [u.requests, u.promptTokens, u.completionTokens]),
    [[1, 3, 4]],
  )
  assert.equal((await limiter.peekHeaders(subject, limits))['x-ratelimit-remaining-tokens'], String(1_000_000 - 7))
  assert.equal(log.lines.filter((l) => l.level === 'error').length, 0)
})

test('a settlement that still fails after its retries is logged at error level', async () => {
  const quick = new RedisQuotaLimiter(client, 'gho:', log, { settleRetryDelaysMs: [20, 20] })
  try {
    assert.ok(await eventually(() => quick.isReady(), 5000))
    const subject = uniqueSubject('settle-lost')
    const r = await quick.reserve({ requestId: 'lost-1', subject, limits, reservedTokens: 100 })
    await redis.stop()
    await quick.settle(r, { model: 'm', promptTokens: 3, completionTokens: 4 })
    const errors = log.lines.filter((l) => l.level === 'error')
    assert.equal(errors.length, 1)
    assert.match(errors[0].msg, /quota settlement failed/)
    assert.equal(errors[0].fields?.requestId, 'lost-1')
    assert.equal(errors[0].fields?.completionTokens, 4)
  } finally {
    await quick.close()
    await restartRedis()
  }
})

test('a usage counter Redis refuses is retried alone, then logged; the counters beside it are written', async () => {
  const own = captureLogger()
  const refusing = new RedisQuotaLimiter(client, 'ghw:', own, { settleRetryDelaysMs: [20, 20] })
  try {
    assert.ok(await eventually(() => refusing.isReady(), 5000))
    const day = new Date().toISOString().slice(0, 10)
    // Today's usage hash is a string now: every HINCRBY on it gets WRONGTYPE; the days set is fine.
    await client.set(`ghw:u:${day}`, 'not a hash')
    const subject = uniqueSubject('usage-refused')
    const r = await refusing.reserve({ requestId: 'refused-1', subject, limits, reservedTokens: 100 })
    await refusing.settle(r, { model: 'm', promptTokens: 3, completionTokens: 4 })
    const errors = own.lines.filter((l) => l.level === 'error')
    assert.equal(errors.length, 1, JSON.stringify(errors))
    assert.equal(errors[0].fields?.requestId, 'refused-1')
    assert.match(String(errors[0].fields?.error), /WRONGTYPE/)
    assert.deepEqual(await client.smembers('ghw:u:days'), [day])
  } finally {
    await refusing.close()
    await client.del(`ghw:u:${new Date().toISOString().slice(0, 10)}`, 'ghw:u:days')
  }
})

test('close waits for a settlement still being retried, so it is applied or logged before shutdown ends', async () => {
  const closing = new RedisQuotaLimiter(client, 'gho:', log, { settleRetryDelaysMs: [50, 50, 50] })
  assert.ok(await eventually(() => closing.isReady(), 5000))
  const subject = uniqueSubject('settle-close')
  const r = await closing.reserve({ requestId: 'at-close', subject, limits, reservedTokens: 100 })
  // Its windows key no longer a hash: every attempt of the settlement gets WRONGTYPE, while
  // the usage counters (other keys) are written at once.
  await client.set(`gho:q:{${subject}}:w`, 'not a hash')
  const errorsBefore = log.lines.filter((l) => l.level === 'error').length
  void closing.settle(r, { model: 'm', promptTokens: 1, completionTokens: 2 })
  await closing.close()
  const errors = log.lines.filter((l) => l.level === 'error').slice(errorsBefore)
  assert.deepEqual(
    errors.map((l) => l.fields?.requestId),
    ['at-close'],
    'the settlement had used up its retries and was logged by the time close() returned',
  )
})
