import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '../../src/log/index.js'
import { EmbeddedQuotaLimiter, createQuotaLimiter, type QuotaLimiter } from '../../src/quota/index.js'
import { admissionCases } from './admission-cases.js'
import { eventually } from './quota-helpers.js'

const dirs: string[] = []
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-quota-embedded-'))
  dirs.push(d)
  return d
}

let shared: QuotaLimiter

before(() => {
  shared = createQuotaLimiter({ config: { store: { redis: '', dataDir: tempDir(), keyPrefix: 'gh:' } }, redis: null, log: silentLogger })
})

after(async () => {
  await shared?.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

admissionCases(() => ({ one: shared, all: [shared] }))

test('createQuotaLimiter picks the embedded limiter without Redis, and refuses a URL without a client', () => {
  assert.ok(shared instanceof EmbeddedQuotaLimiter)
  assert.throws(
    () => createQuotaLimiter({ config: { store: { redis: 'redis://x:1', dataDir: tempDir(), keyPrefix: 'gh:' } }, redis: null, log: silentLogger }),
    /no Redis client/,
  )
})

/** A limiter on a clock the test moves: 2024-05-01T10:00:45.200Z to start with. */
function clocked(opts: { leaseTtlMs?: number } = {}): { limiter: EmbeddedQuotaLimiter; clock: { now: number } } {
  const clock = { now: Date.UTC(2024, 4, 1, 10, 0, 45, 200) }
  const limiter = new EmbeddedQuotaLimiter(tempDir(), silentLogger, { ...opts, clock: () => clock.now })
  return { limiter, clock }
}

test('reset headers and retry-after tell the time to the end of the fixed window', async () => {
  const { limiter, clock } = clocked()
  try {
    const limits = { requestsPerMinute: 1, tokensPerMinute: 500, tokensPerDay: 800 }
    const r = await limiter.reserve({ requestId: '1', subject: 's', limits, reservedTokens: 100 })
    assert.equal(r.headers['x-ratelimit-reset-requests'], '15s') // 14.8 s left in the minute, rounded up
    assert.equal(r.headers['x-ratelimit-reset-tokens'], '15s')
    assert.equal(r.headers['x-ratelimit-reset-tokens-day'], '13h59m15s')
    clock.now += 14_500 // 300 ms before the minute ends
    const err = await limiter.reserve({ requestId: '2', subject: 's', limits, reservedTokens: 100 }).catch((e: unknown) => e)
    assert.ok(err instanceof Error && 'headers' in err)
    const headers = (err as { headers: Record<string, string> }).headers
    assert.equal(headers['retry-after'], '1')
    assert.equal(headers['x-ratelimit-reset-requests'], '300ms')
    clock.now += 300 // the next minute: a fresh window
    const again = await limiter.reserve({ requestId: '3', subject: 's', limits, reservedTokens: 100 })
    assert.equal(again.headers['x-ratelimit-remaining-requests'], '0')
    assert.equal(again.headers['x-ratelimit-reset-requests'], '1m0s')
    assert.equal(again.headers['x-ratelimit-remaining-tokens'], '400')
    assert.equal(again.headers['x-ratelimit-remaining-tokens-day'], '600')
  } finally {
    await limiter.close()
  }
})

test('settle across a window boundary: refunds to an ended window are dropped, overruns are charged now', async () => {
  const { limiter, clock } = clocked()
  try {
    const limits = { tokensPerMinute: 1000, tokensPerDay: 10_000 }
    const r1 = await limiter.reserve({ requestId: '1', subject: 's', limits, reservedTokens: 100 })
    clock.now += 60_000
    await limiter.settle(r1, { model: 'm', promptTokens: 10, completionTokens: 20 })
    let h = await limiter.peekHeaders('s', limits)
    assert.equal(h['x-ratelimit-remaining-tokens'], '1000', 'the new minute owes nothing to the old one')
    assert.equal(h['x-ratelimit-remaining-tokens-day'], '9970', 'the day is still current: corrected in place')

    const r2 = await limiter.reserve({ requestId: '2', subject: 's', limits, reservedTokens: 100 })
    clock.now += 60_000
    await limiter.settle(r2, { model: 'm', promptTokens: 100, completionTokens: 50 })
    h = await limiter.peekHeaders('s', limits)
    assert.equal(h['x-ratelimit-remaining-tokens'], '950', 'the 50-token overrun lands in the current minute')
    assert.equal(h['x-ratelimit-remaining-tokens-day'], '9820')
  } finally {
    await limiter.close()
  }
})

test('a lease that is not renewed expires and frees its slot', async () => {
  const { limiter, clock } = clocked({ leaseTtlMs: 60_000 })
  try {
    const limits = { maxConcurrent: 1 }
    await limiter.reserve({ requestId: '1', subject: 's', limits, reservedTokens: 1 })
    await assert.rejects(limiter.reserve({ requestId: '2', subject: 's', limits, reservedTokens: 1 }), /maxConcurrent/)
    clock.now += 59_000
    await assert.rejects(limiter.reserve({ requestId: '3', subject: 's', limits, reservedTokens: 1 }), /maxConcurrent/)
    clock.now += 1_000
    const r = await limiter.reserve({ requestId: '4', subject: 's', limits, reservedTokens: 1 })
    assert.ok(r.leaseId)
  } finally {
    await limiter.close()
  }
})

test('usage persists in dataDir: on a timer while it changes, on close, and loads in a new instance', async () => {
  const dir = tempDir()
  const file = join(dir, 'usage.json')
  const first = new EmbeddedQuotaLimiter(dir, silentLogger, { persistIntervalMs: 50 })
  const r = await first.reserve({ requestId: '1', subject: 'alice', limits: {}, reservedTokens: 10 })
  await first.settle(r, { model: 'm1', promptTokens: 4, completionTokens: 6 })
  const written = await eventually(() => {
    try {
      return readFileSync(file, 'utf8').includes('"alice"')
    } catch {
      return false
    }
  }, 3000)
  assert.ok(written, 'usage.json was not written by the timer')
  const r2 = await first.reserve({ requestId: '2', subject: 'alice', limits: { requestsPerMinute: 5 }, reservedTokens: 10 })
  await first.settle(r2, { model: 'm1', promptTokens: 1, completionTokens: 1 })
  await first.close()

  const second = new EmbeddedQuotaLimiter(dir, silentLogger)
  try {
    const day = new Date().toISOString().slice(0, 10)
    assert.deepEqual(await second.queryUsage({}), [
      { subject: 'alice', model: 'm1', day, requests: 2, promptTokens: 5, completionTokens: 7 },
    ])
  } finally {
    await second.close()
  }

  writeFileSync(file, '{"not": "usage"}')
  assert.throws(() => new EmbeddedQuotaLimiter(dir, silentLogger), /not a Gatehouse usage file/)
})
