import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { tmpdir } from 'node:os'
import type { Redis } from 'ioredis'
import { silentLogger } from '../../src/log/index.js'
import { createRedisClient } from '../../src/store/index.js'
import { createQuotaLimiter, type QuotaLimiter, type Reservation } from '../../src/quota/index.js'
import type { Limits } from '../../src/config/index.js'
import { QuotaExceeded } from '../../src/errors/index.js'
import { MAX_BLOCK } from '../../src/quota/credit.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { awayFromMinuteEdge, eventually, sleep, uniqueSubject } from './quota-helpers.js'

// Admission credits (src/quota/credit.ts, QUOTA_BATCH_LUA): a busy subject's requests are
// admitted from blocks reserved in Redis in one call. Against a real redis-server, with two
// limiters on two connections (two gateway processes as far as Redis can tell): fewer
// script calls, the same counts in Redis once credits are back, and admission still exact
// across the two when the limit is reached while credit is out.

let redis: RedisHandle
let admin: Redis
const clients: Redis[] = []
let a: QuotaLimiter
let b: QuotaLimiter
const PREFIX = 'ghc:'

function limiterOn(leaseTtlMs?: number): QuotaLimiter {
  const client = createRedisClient(redis.url, silentLogger, 'credit-test')
  clients.push(client)
  const config = { store: { redis: redis.url, dataDir: tmpdir(), keyPrefix: PREFIX } }
  return createQuotaLimiter({ config, redis: client, log: silentLogger, leaseTtlMs })
}

async function scriptCalls(): Promise<number> {
  const stats = await admin.info('commandstats')
  let calls = 0
  for (const m of stats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(m[2])
  return calls
}

/** `turns` event-loop turns of `perTurn` parallel reserves each, alternating limiters; settled or held. */
async function burst(subject: string, limits: Limits, turns: number, perTurn: number, settle: boolean, only?: QuotaLimiter) {
  const admitted: Reservation[] = []
  const settled: Promise<void>[] = []
  let refused = 0
  for (let t = 0; t < turns; t++) {
    const q = only ?? (t % 2 === 0 ? a : b)
    const results = await Promise.allSettled(
      Array.from({ length: perTurn }, (_, i) => q.reserve({ requestId: `r${t}-${i}`, subject, limits, reservedTokens: 100 })),
    )
    const now: Reservation[] = []
    for (const r of results) {
      if (r.status === 'fulfilled') now.push(r.value)
      else if (r.reason instanceof QuotaExceeded) refused++
      else throw r.reason
    }
    // Settled as a gateway does, without waiting for the usage counters to be written.
    if (settle) for (const r of now) settled.push(q.settle(r, { model: 'm', promptTokens: 20, completionTokens: 40 }))
    admitted.push(...now)
  }
  await Promise.all(settled)
  return { admitted, refused }
}

const windows = (subject: string) => admin.hgetall(`${PREFIX}q:{${subject}}:w`)
/** Leases counted in Redis: the requests' own plus every live credit's block (`{lease}*{n}` members). */
async function leases(subject: string): Promise<number> {
  const now = Date.now()
  const own = await admin.zcount(`${PREFIX}q:{${subject}}:c`, `(${now}`, '+inf')
  const blocks = await admin.zrangebyscore(`${PREFIX}q:{${subject}}:b`, `(${now}`, '+inf')
  return own + blocks.reduce((sum, m) => sum + Number(m.slice(m.lastIndexOf('*') + 1)), 0)
}

before(async () => {
  redis = await startRedis()
  admin = createRedisClient(redis.url, silentLogger, 'credit-admin')
  a = limiterOn()
  b = limiterOn()
  assert.ok(await eventually(() => a.isReady() && b.isReady() && admin.status === 'ready', 5000))
})

after(async () => {
  await a?.close()
  await b?.close()
  for (const c of clients) c.disconnect()
  admin?.disconnect()
  await redis?.stop()
})

test('a busy subject far from its limits is admitted from credit: fewer script calls, exact counts once credit is back', async () => {
  await awayFromMinuteEdge()
  const subject = uniqueSubject('busy')
  const limits = { requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000, maxConcurrent: 100_000 }
  await admin.config('RESETSTAT')
  const out = await burst(subject, limits, 40, 8, true)
  assert.equal(out.admitted.length, 320)
  assert.equal(out.refused, 0)
  const calls = await scriptCalls()
  assert.ok(out.admitted.some((r) => r.credit !== undefined), 'some requests came from credit')
  // Without credit every turn needs its call (its eight reserves share it): 40 at least.
  // With it: the grants (blocks of 8, 16, 32, 64, ... per limiter), returns, and the first turns.
  assert.ok(calls <= 25, `${calls} script calls for 40 turns`)
  // Unused credit goes back within its lifetime: then Redis counts exactly what was admitted
  // and settled, and holds no lease.
  assert.ok(
    await eventually(async () => (await windows(subject)).r === '320' && (await leases(subject)) === 0, 3000),
    `windows ${JSON.stringify(await windows(subject))}, leases ${await leases(subject)}`,
  )
  assert.equal((await windows(subject)).tm, String(320 * 60))
  // Headers of credit-admitted requests count what was admitted (this limiter's unused credit
  // excluded; the other's, at most one block, included).
  const remaining = out.admitted.filter((r) => r.credit).map((r) => Number(r.headers['x-ratelimit-remaining-requests']))
  assert.ok(remaining.every((n) => n < 1_000_000 && n >= 1_000_000 - 320 - MAX_BLOCK), `remaining ${Math.min(...remaining)}`)
})

test('requestsPerMinute reached while both limiters hold credit: exactly L admitted across them', async () => {
  await awayFromMinuteEdge(8000)
  const subject = uniqueSubject('edge')
  // Credit is granted while a block is at most 1/9 of what is left, so it is out when the limit nears.
  const out = await burst(subject, { requestsPerMinute: 600 }, 50, 20, false)
  assert.ok(out.admitted.some((r) => r.credit !== undefined), 'credit was used')
  assert.equal(out.admitted.length, 600)
  assert.equal(out.refused, 1000 - 600)
  assert.ok(await eventually(async () => (await windows(subject)).r === '600', 3000), JSON.stringify(await windows(subject)))
})

test("the limit reached while another limiter holds unused credit: the refusals wait for it and exactly L are admitted", async () => {
  await awayFromMinuteEdge(8000)
  const subject = uniqueSubject('held')
  const limits = { requestsPerMinute: 1000 }
  // A is busy for two turns: it takes a credit and leaves most of it unused.
  const first = await burst(subject, limits, 2, 3, false, a)
  assert.ok(first.admitted.some((r) => r.credit !== undefined), 'A holds credit')
  // B takes the rest in bursts while A's credit is still out.
  const rest = await burst(subject, limits, 25, 50, false, b)
  assert.equal(first.admitted.length + rest.admitted.length, 1000)
  assert.equal(rest.refused, 1250 - (1000 - first.admitted.length))
  assert.ok(await eventually(async () => (await windows(subject)).r === '1000', 3000), JSON.stringify(await windows(subject)))
})

test('a request too big for the limit on its own is refused at once, even with credit out', async () => {
  await awayFromMinuteEdge(8000)
  const subject = uniqueSubject('big')
  const limits = { requestsPerMinute: 100_000, tokensPerMinute: 1_000_000 }
  const first = await burst(subject, limits, 2, 4, false, a)
  assert.ok(first.admitted.some((r) => r.credit !== undefined), 'A holds credit')
  await admin.config('RESETSTAT')
  await assert.rejects(b.reserve({ requestId: 'big', subject, limits, reservedTokens: 2_000_000 }), (err: unknown) => {
    assert.ok(err instanceof QuotaExceeded)
    assert.match(err.message, /alone reserves 2000000/)
    return true
  })
  assert.equal(await scriptCalls(), 1, 'asked once, not again after waiting for credit')
})

test('maxConcurrent reached while credit is out: exactly L in flight across both limiters, and settles free them', async () => {
  await awayFromMinuteEdge(8000)
  const subject = uniqueSubject('conc')
  const limits = { maxConcurrent: 200 }
  const out = await burst(subject, limits, 30, 10, false)
  assert.ok(out.admitted.some((r) => r.credit !== undefined), 'credit was used')
  assert.equal(out.admitted.length, 200)
  assert.equal(out.refused, 300 - 200)
  assert.ok(await eventually(async () => (await leases(subject)) === 200, 3000), `leases ${await leases(subject)}`)
  for (const r of out.admitted) await (r.credit && Math.random() < 0.5 ? a : b).settle(r, { model: 'm', promptTokens: 1, completionTokens: 1 })
  assert.ok(await eventually(async () => (await leases(subject)) === 0, 3000), `leases ${await leases(subject)}`)
})

test("a credit's leases: held past the lease TTL while their holder lives, lapsing by themselves once it is gone", async () => {
  await awayFromMinuteEdge(8000)
  const ttl = 300
  const live = limiterOn(ttl)
  const gone = limiterOn(ttl)
  assert.ok(await eventually(() => live.isReady() && gone.isReady(), 5000))
  const subject = uniqueSubject('credit-ttl')
  const limits = { maxConcurrent: 1000 }
  try {
    const held = await burst(subject, limits, 3, 8, false, live)
    assert.ok(held.admitted.some((r) => r.credit !== undefined), 'admitted from credit')
    assert.equal(held.admitted.length, 24)
    // Past several TTLs (the credit went back after 250 ms; its held leases are renewed): all still counted.
    await sleep(ttl * 4)
    assert.equal(await leases(subject), 24)
    // A second process takes credit, then stops renewing without settling (closed: its credit goes back).
    const lost = await burst(subject, limits, 3, 8, false, gone)
    assert.ok(lost.admitted.some((r) => r.credit !== undefined), 'the second process had credit too')
    await gone.close()
    assert.equal(await leases(subject), 48)
    assert.ok(await eventually(async () => (await leases(subject)) === 24, ttl * 10), `leases ${await leases(subject)}`)
    for (const r of held.admitted) await live.settle(r, { model: 'm', promptTokens: 1, completionTokens: 1 })
    assert.ok(await eventually(async () => (await leases(subject)) === 0, 3000), `leases ${await leases(subject)}`)
    // Nothing held any more: nothing renewed (a returned credit's member is not kept for renewal).
    await admin.config('RESETSTAT')
    await sleep(ttl)
    assert.equal(await scriptCalls(), 0, 'renewals after everything settled')
  } finally {
    await live.close()
  }
})

test('requests arriving while a grant is on its way draw from it instead of going to Redis alone', async () => {
  await awayFromMinuteEdge()
  const subject = uniqueSubject('waiting')
  const limits = { requestsPerMinute: 1_000_000, maxConcurrent: 10_000 }
  const first = await a.reserve({ requestId: 'w0', subject, limits, reservedTokens: 10 })
  assert.equal(first.credit, undefined, 'a first request goes alone')
  await admin.config('RESETSTAT')
  // Back to back (busy): the first of the eight asks for a block of 8, the other seven wait for it.
  const eight = await Promise.all(Array.from({ length: 8 }, (_, i) => a.reserve({ requestId: `w${i + 1}`, subject, limits, reservedTokens: 10 })))
  assert.equal(await scriptCalls(), 1)
  assert.equal(eight.filter((r) => r.credit !== undefined).length, 8, 'all eight admitted from the one credit')
  assert.equal(new Set(eight.map((r) => r.leaseId)).size, 8, 'each with its own lease')
  assert.equal((await windows(subject)).r, '9', 'the first request and the block of 8')
  for (const r of [first, ...eight]) await a.settle(r, { model: 'm', promptTokens: 1, completionTokens: 1 })
})

test('near a limit, where no credit is granted, parallel requests are not made to wait for each other', async () => {
  await awayFromMinuteEdge()
  const subject = uniqueSubject('no-grant')
  // 1,000 per minute: a block of 8 would be more than 1/9 of what is left once 930 are used.
  const limits = { requestsPerMinute: 1000 }
  await burst(subject, limits, 1, 930, true, a)
  await sleep(300) // any credit of that burst went back
  const first = await a.reserve({ requestId: 'n0', subject, limits, reservedTokens: 1 })
  assert.equal(first.credit, undefined)
  await admin.config('RESETSTAT')
  // The first of ten asks for credit and is checked alone; the nine waiting for its answer then go together.
  const ten = await Promise.all(Array.from({ length: 10 }, (_, i) => a.reserve({ requestId: `n${i + 1}`, subject, limits, reservedTokens: 1 })))
  assert.ok(ten.every((r) => r.credit === undefined), 'no credit this close to the limit')
  assert.ok((await scriptCalls()) <= 2, `script calls ${await scriptCalls()} (one per request if each waited for the one before)`)
  // Once an ask went unanswered, nobody waits: ten more in one call.
  await admin.config('RESETSTAT')
  await Promise.all(Array.from({ length: 10 }, (_, i) => a.reserve({ requestId: `m${i}`, subject, limits, reservedTokens: 1 })))
  assert.equal(await scriptCalls(), 1)
  assert.equal((await windows(subject)).r, '951', 'exact count')
})

test('a subject with one request at a time never asks for credit', async () => {
  const subject = uniqueSubject('calm')
  for (let i = 0; i < 5; i++) {
    const r = await a.reserve({ requestId: `c${i}`, subject, limits: { requestsPerMinute: 1_000_000 }, reservedTokens: 1 })
    assert.equal(r.credit, undefined)
    await a.settle(r, { model: 'm', promptTokens: 1, completionTokens: 0 })
    await sleep(60)
  }
  assert.equal((await windows(subject)).r, '5')
})
