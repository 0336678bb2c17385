import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import { silentLogger } from '../../src/log/index.js'
import { createRedisClient } from '../../src/store/index.js'
import { RespConnection } from '../../src/store/resp-connection.js'
import { QUOTA_BATCH_SCRIPT } from '../../src/quota/redis-commands.js'
import { MAX_OPS_PER_CALL, QuotaScriptBatcher, type ReserveArgs, type SubjectQuotaKeys } from '../../src/quota/script-batch.js'
import { S_EXTRA, S_FLAGS, S_IN_FLIGHT, S_NOW, S_REQUESTS, HIT_CONCURRENT, HIT_RPM } from '../../src/quota/windows.js'
import { freePort } from '../helpers/ports.js'
import { startRedis, type RedisHandle } from '../helpers/redis.js'
import { awayFromMinuteEdge, endpointFromUrl, eventually, uniqueSubject } from './quota-helpers.js'

// One quota script call per subject and event-loop turn, against a real redis-server: each
// operation sees the ones issued before it, and the calls really are gathered.

let redis: RedisHandle
let admin: Redis
const open: RespConnection[] = []

async function batcherOn(url: string, wait = true): Promise<QuotaScriptBatcher> {
  const wire = new RespConnection(endpointFromUrl(url), silentLogger, { name: 'batch-test', scripts: [QUOTA_BATCH_SCRIPT] })
  open.push(wire)
  if (wait) assert.ok(await eventually(() => wire.isReady(), 5000))
  return new QuotaScriptBatcher(wire, 30_000)
}

function keysOf(subject: string): SubjectQuotaKeys {
  return { windows: `ghb:q:{${subject}}:w`, leases: `ghb:q:{${subject}}:c`, creditLeases: `ghb:q:{${subject}}:b` }
}

const limits = (over: Partial<ReserveArgs>): ReserveArgs => ({
  requestsPerMinute: 0,
  tokensPerMinute: 0,
  tokensPerDay: 0,
  maxConcurrent: 0,
  tokens: 1,
  leaseId: '',
  block: 1,
  creditLifetimeMs: 0,
  ...over,
})

/** How many times Redis ran the quota script (EVALSHA and EVAL) since the last reset. */
async function scriptCalls(): Promise<number> {
  const stats = await admin.info('commandstats')
  let calls = 0
  for (const m of stats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(m[2])
  return calls
}

before(async () => {
  redis = await startRedis()
  admin = createRedisClient(redis.url, silentLogger, 'batch-test-admin')
  assert.ok(await eventually(() => admin.status === 'ready', 5000))
})

after(async () => {
  await Promise.all(open.map((c) => c.close()))
  admin?.disconnect()
  await redis?.stop()
})

test('reserves of one subject in one loop turn: one script call, each checked against the ones before it', async () => {
  const q = await batcherOn(redis.url)
  const keys = keysOf(uniqueSubject('turn'))
  await admin.config('RESETSTAT')
  const states = await Promise.all(Array.from({ length: 10 }, () => q.reserve(keys, limits({ requestsPerMinute: 4 }))))
  assert.equal(await scriptCalls(), 1)
  assert.deepEqual(
    states.map((s) => [s[S_FLAGS], s[S_REQUESTS]]),
    [[0, 1], [0, 2], [0, 3], [0, 4], ...Array.from({ length: 6 }, () => [HIT_RPM, 4])],
  )
  assert.equal(await admin.hget(keys.windows, 'r'), '4', 'refused requests count for nothing')
  const untilDayEnds = 86_400_000 - (states[0][S_NOW] % 86_400_000) + 60_000
  const ttl = await admin.pttl(keys.windows)
  assert.ok(ttl > 0 && ttl <= untilDayEnds, `the windows expire a minute after the UTC day ends (${ttl})`)
  assert.ok(states.every((s) => s[S_NOW] === states[0][S_NOW]), "one call, one reading of Redis's clock")
})

test('a settlement issued before a reserve of the same turn is applied first; one issued after is not', async () => {
  const q = await batcherOn(redis.url)
  for (const [order, expectFlags] of [
    ['settle first', 0],
    ['reserve first', HIT_CONCURRENT],
  ] as const) {
    const keys = keysOf(uniqueSubject('order'))
    const first = await q.reserve(keys, limits({ maxConcurrent: 1, leaseId: 'lease-a' }))
    assert.equal(first[S_FLAGS], 0)
    const release = (): Promise<boolean> => q.settle(keys, [Math.floor(first[S_NOW] / 60_000), Math.floor(first[S_NOW] / 86_400_000), 0, 'lease-a'])
    const next = (): Promise<readonly number[]> => q.reserve(keys, limits({ maxConcurrent: 1, leaseId: 'lease-b' }))
    const [state, applied] =
      order === 'settle first' ? await Promise.all([release(), next()]).then(([a, s]) => [s, a] as const) : await Promise.all([next(), release()])
    assert.equal(applied, true, order)
    assert.equal(state[S_FLAGS], expectFlags, order)
    assert.equal(state[S_IN_FLIGHT], 1, order)
    assert.deepEqual(await admin.zrange(keys.leases, 0, -1), expectFlags === 0 ? ['lease-b'] : [], order)
  }
})

test('each subject gets its own call; a subject past MAX_OPS_PER_CALL gets more, still in order', async () => {
  const q = await batcherOn(redis.url)
  const one = keysOf(uniqueSubject('many'))
  const two = keysOf(uniqueSubject('other'))
  const n = MAX_OPS_PER_CALL + 44
  await admin.config('RESETSTAT')
  const [many, other] = await Promise.all([
    Promise.all(Array.from({ length: n }, () => q.reserve(one, limits({ requestsPerMinute: 10_000 })))),
    Promise.all(Array.from({ length: 3 }, () => q.reserve(two, limits({ requestsPerMinute: 10_000 })))),
  ])
  assert.equal(await scriptCalls(), 3)
  assert.deepEqual(
    many.map((s) => s[S_REQUESTS]),
    Array.from({ length: n }, (_, i) => i + 1),
  )
  assert.deepEqual(
    other.map((s) => s[S_REQUESTS]),
    [1, 2, 3],
  )
})

test('leases: expired ones are purged before counting, released ones free their slot, each admitted one is added once', async () => {
  const q = await batcherOn(redis.url)
  const keys = keysOf(uniqueSubject('leases'))
  // A lease left by a dead gateway process, already expired.
  await admin.zadd(keys.leases, 1, 'dead')
  const states = await Promise.all(['a', 'b', 'c'].map((id) => q.reserve(keys, limits({ maxConcurrent: 2, leaseId: id }))))
  assert.deepEqual(
    states.map((s) => [s[S_FLAGS], s[S_IN_FLIGHT]]),
    [[0, 1], [0, 2], [HIT_CONCURRENT, 2]],
  )
  assert.deepEqual((await admin.zrange(keys.leases, 0, -1)).sort(), ['a', 'b'])
  // One call: a refused reserve counts the leases, a release frees one, the next fits.
  const [refused, released, admitted] = await Promise.all([
    q.reserve(keys, limits({ maxConcurrent: 2, leaseId: 'e' })),
    q.settle(keys, [0, 0, 0, 'a']),
    q.reserve(keys, limits({ maxConcurrent: 2, leaseId: 'f' })),
  ])
  assert.equal(refused[S_FLAGS], HIT_CONCURRENT)
  assert.equal(released, true)
  assert.deepEqual([admitted[S_FLAGS], admitted[S_IN_FLIGHT]], [0, 2])
  assert.deepEqual((await admin.zrange(keys.leases, 0, -1)).sort(), ['b', 'f'])
  const ttl = await admin.pttl(keys.leases)
  assert.ok(ttl > 0 && ttl <= 30_000, `lease set expires with the lease TTL (${ttl})`)
})

test('a run of settlements releases its leases with one ZREM; only leases really held free a slot', async () => {
  const q = await batcherOn(redis.url)
  const keys = keysOf(uniqueSubject('runs'))
  const held = await Promise.all(['a', 'b', 'c'].map((id) => q.reserve(keys, limits({ maxConcurrent: 4, leaseId: id }))))
  assert.deepEqual(held.map((s) => s[S_FLAGS]), [0, 0, 0])
  const settle = (lease: string): Promise<boolean> => q.settle(keys, [0, 0, 0, lease])
  const reserve = (lease: string): Promise<readonly number[]> => q.reserve(keys, limits({ maxConcurrent: 4, leaseId: lease }))
  await admin.config('RESETSTAT')
  // One turn: d fills the last slot; 'ghost' (never held, or already purged) and a are
  // released together; e takes a's slot; f finds none; b and c end the call as one run.
  const [d, , , e, f] = await Promise.all([reserve('d'), settle('ghost'), settle('a'), reserve('e'), reserve('f'), settle('b'), settle('c')])
  assert.deepEqual([d[S_FLAGS], d[S_IN_FLIGHT]], [0, 4])
  assert.deepEqual([e[S_FLAGS], e[S_IN_FLIGHT]], [0, 4], "the ghost's release freed nothing")
  assert.deepEqual([f[S_FLAGS], f[S_IN_FLIGHT]], [HIT_CONCURRENT, 4])
  assert.equal(await scriptCalls(), 1)
  const stats = await admin.info('commandstats')
  assert.equal(/^cmdstat_zrem:calls=(\d+)/m.exec(stats)?.[1], '2', 'one ZREM per run of settlements')
  assert.deepEqual((await admin.zrange(keys.leases, 0, -1)).sort(), ['d', 'e'])
})

test("a credit's leases: one member for the block, counted as the block; on return the held ones become leases of their own", async () => {
  const q = await batcherOn(redis.url)
  const keys = keysOf(uniqueSubject('credit-leases'))
  const credit = (lease: string) => limits({ maxConcurrent: 1000, leaseId: lease, block: 64, creditLifetimeMs: 250 })
  // A credit must end inside its minute: none is granted in a minute's last moments.
  await awayFromMinuteEdge(1000)
  const granted = await q.reserve(keys, credit('g'))
  assert.equal(granted[S_EXTRA], 64, 'granted')
  assert.equal(granted[S_IN_FLIGHT], 64)
  assert.deepEqual(await admin.zrange(keys.creditLeases, 0, -1), ['g*64'], 'one member, whatever the block')
  assert.equal(await admin.zcard(keys.leases), 0)
  const alone = await q.reserve(keys, limits({ maxConcurrent: 1000, leaseId: 'solo' }))
  assert.equal(alone[S_IN_FLIGHT], 65, 'a later count includes the block')
  // The credit goes back with two of its leases still held by requests in flight.
  const m = Math.floor(granted[S_NOW] / 60_000)
  const d = Math.floor(granted[S_NOW] / 86_400_000)
  const ret = (member: string, held: string[]) => q.apply(keys, ['x', m, d, 60, 6000, member, held.length, ...held])
  const [, afterReturn] = await Promise.all([ret('g*64', ['g.1', 'g.2']), q.reserve(keys, limits({ maxConcurrent: 1000, leaseId: 'next' }))])
  assert.equal(afterReturn[S_IN_FLIGHT], 4, 'solo, g.1, g.2 and next')
  assert.deepEqual(await admin.zrange(keys.creditLeases, 0, -1), [])
  assert.deepEqual((await admin.zrange(keys.leases, 0, -1)).sort(), ['g.1', 'g.2', 'next', 'solo'])
  // A return whose member had already expired (its holder too slow) adds nothing back.
  await admin.zadd(keys.creditLeases, 1, 'late*8')
  assert.equal(await ret('late*8', ['late.1']), true)
  assert.deepEqual((await admin.zrange(keys.leases, 0, -1)).sort(), ['g.1', 'g.2', 'next', 'solo'])
  const peek = await q.reserve(keys, limits({ maxConcurrent: 1000, leaseId: 'last' }))
  assert.equal(peek[S_IN_FLIGHT], 5, 'an expired block counts for nothing')
})

test('no answer: reserves are refused and settlements reported unapplied', async () => {
  const q = await batcherOn(`redis://127.0.0.1:${await freePort()}`, false)
  const keys = keysOf(uniqueSubject('down'))
  const [reserve, settle] = await Promise.allSettled([q.reserve(keys, limits({ requestsPerMinute: 1 })), q.settle(keys, [0, 0, 5, ''])])
  assert.equal(reserve.status, 'rejected')
  assert.deepEqual(settle, { status: 'fulfilled', value: false })
})
