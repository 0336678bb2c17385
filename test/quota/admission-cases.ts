import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { QuotaLimiter } from '../../src/quota/index.js'
import { awayFromMinuteEdge, parseReset, reserveMany, uniqueSubject } from './quota-helpers.js'

/**
 * The cases both limiters must pass. `all` are limiters that share one store (two gateway
 * processes on one Redis; just the one limiter for the embedded store): load is spread over
 * them and admission must still be exact.
 */
export function admissionCases(limiters: () => { one: QuotaLimiter; all: QuotaLimiter[] }): void {
  test('requestsPerMinute: 50 parallel reserves against 7 admit exactly 7; the 429 names the limit', async () => {
    await awayFromMinuteEdge()
    const { all } = limiters()
    const subject = uniqueSubject('rpm')
    const out = await reserveMany(all, 50, subject, { requestsPerMinute: 7 }, 10)
    assert.equal(out.other.length, 0)
    assert.equal(out.admitted.length, 7)
    assert.equal(out.refused.length, 43)
    const err = out.refused[0]
    assert.equal(err.status, 429)
    assert.equal(err.reason, 'requestsPerMinute')
    assert.match(err.message, /^Rate limit reached for requestsPerMinute: 7 per minute; retry after \d+ s$/)
    const retry = Number(err.headers['retry-after'])
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `retry-after ${retry}`)
    assert.equal(err.headers['x-ratelimit-limit-requests'], '7')
    assert.equal(err.headers['x-ratelimit-remaining-requests'], '0')
    assert.ok(Math.abs(Math.ceil(parseReset(err.headers['x-ratelimit-reset-requests']) / 1000) - retry) <= 1)
    // Refused requests did not count: the remaining headers of the admitted ones went 6..0.
    const remaining = out.admitted.map((r) => Number(r.headers['x-ratelimit-remaining-requests'])).sort((a, b) => a - b)
    assert.deepEqual(remaining, [0, 1, 2, 3, 4, 5, 6])
  })

  test('tokensPerMinute: 50 parallel reserves of 150 against 1000 admit exactly 6', async () => {
    await awayFromMinuteEdge()
    const { all } = limiters()
    const out = await reserveMany(all, 50, uniqueSubject('tpm'), { tokensPerMinute: 1000 }, 150)
    assert.equal(out.other.length, 0)
    assert.equal(out.admitted.length, 6)
    assert.equal(out.refused[0].reason, 'tokensPerMinute')
    assert.match(out.refused[0].message, /tokensPerMinute: 1000 per minute, 900 used, this request reserves 150/)
    assert.equal(out.refused[0].headers['x-ratelimit-remaining-tokens'], '100')
  })

  test('tokensPerDay: 20 parallel reserves of 300 against 1000 admit exactly 3; retry-after is the day end', async () => {
    await awayFromMinuteEdge()
    const { all } = limiters()
    const out = await reserveMany(all, 20, uniqueSubject('tpd'), { tokensPerDay: 1000 }, 300)
    assert.equal(out.other.length, 0)
    assert.equal(out.admitted.length, 3)
    const err = out.refused[0]
    assert.equal(err.reason, 'tokensPerDay')
    const dayLeft = Math.ceil((86_400_000 - (Date.now() % 86_400_000)) / 1000)
    assert.ok(Math.abs(Number(err.headers['retry-after']) - dayLeft) <= 2, `${err.headers['retry-after']} vs ${dayLeft}`)
    assert.equal(err.headers['x-ratelimit-limit-tokens'], '1000')
    assert.equal(err.headers['x-ratelimit-remaining-tokens'], '100')
  })

  test('maxConcurrent: exactly L in flight; a settle frees exactly one slot', async () => {
    const { one, all } = limiters()
    const subject = uniqueSubject('conc')
    const limits = { maxConcurrent: 3 }
    const first = await reserveMany(all, 20, subject, limits, 1)
    assert.equal(first.other.length, 0)
    assert.equal(first.admitted.length, 3)
    assert.equal(first.refused[0].reason, 'maxConcurrent')
    assert.match(first.refused[0].message, /maxConcurrent: 3 requests in flight/)
    await one.settle(first.admitted[0], { model: 'm', promptTokens: 1, completionTokens: 0 })
    const second = await reserveMany(all, 10, subject, limits, 1)
    assert.equal(second.admitted.length, 1)
    for (const r of [...first.admitted.slice(1), ...second.admitted]) {
      await one.settle(r, { model: 'm', promptTokens: 1, completionTokens: 0 })
    }
    const third = await reserveMany(all, 10, subject, limits, 1)
    assert.equal(third.admitted.length, 3)
    for (const r of third.admitted) await one.settle(r, { model: 'm', promptTokens: 1, completionTokens: 0 })
  })

  test('maxConcurrent 1: a request right after the previous one settled (not yet written) is admitted', async () => {
    // A client calling one request after another: the release of the first must reach the
    // store before the next reserve, even though settle() was not awaited.
    const { one } = limiters()
    const subject = uniqueSubject('back-to-back')
    const limits = { maxConcurrent: 1 }
    let previous = await one.reserve({ requestId: 'b2b-0', subject, limits, reservedTokens: 1 })
    const settled: Promise<void>[] = []
    for (let i = 1; i <= 20; i++) {
      settled.push(one.settle(previous, { model: 'm', promptTokens: 1, completionTokens: 0 }))
      previous = await one.reserve({ requestId: `b2b-${i}`, subject, limits, reservedTokens: 1 })
    }
    await Promise.all([...settled, one.settle(previous, { model: 'm', promptTokens: 1, completionTokens: 0 })])
  })

  test('settle corrects the reservation to the real usage, both ways', async () => {
    await awayFromMinuteEdge()
    const { one, all } = limiters()
    const subject = uniqueSubject('settle')
    const limits = { tokensPerMinute: 1000, tokensPerDay: 10_000 }
    const a = await one.reserve({ requestId: 'a', subject, limits, reservedTokens: 100 })
    assert.equal(a.headers['x-ratelimit-remaining-tokens'], '900')
    await one.settle(a, { model: 'm', promptTokens: 10, completionTokens: 20 })
    let h = await all[all.length - 1].peekHeaders(subject, limits)
    assert.equal(h['x-ratelimit-remaining-tokens'], '970')
    assert.equal(h['x-ratelimit-remaining-tokens-day'], '9970')
    // Usage beyond the estimate is charged too: a reservation is a floor of nothing.
    const b = await one.reserve({ requestId: 'b', subject, limits, reservedTokens: 100 })
    await one.settle(b, { model: 'm', promptTokens: 50, completionTokens: 100 })
    h = await one.peekHeaders(subject, limits)
    assert.equal(h['x-ratelimit-remaining-tokens'], '820')
    assert.equal(h['x-ratelimit-remaining-tokens-day'], '9820')
  })

  test('headers: every limit that applies, OpenAI formats; none for a subject without limits', async () => {
    await awayFromMinuteEdge()
    const { one } = limiters()
    const subject = uniqueSubject('hdr')
    const limits = { requestsPerMinute: 60, tokensPerMinute: 1000, tokensPerDay: 5000, maxConcurrent: 2 }
    const r = await one.reserve({ requestId: 'h', subject, limits, reservedTokens: 100 })
    const h = r.headers
    assert.deepEqual(Object.keys(h).sort(), [
      'x-ratelimit-limit-requests',
      'x-ratelimit-limit-tokens',
      'x-ratelimit-limit-tokens-day',
      'x-ratelimit-remaining-requests',
      'x-ratelimit-remaining-tokens',
      'x-ratelimit-remaining-tokens-day',
      'x-ratelimit-reset-requests',
      'x-ratelimit-reset-tokens',
      'x-ratelimit-reset-tokens-day',
    ])
    assert.equal(h['x-ratelimit-limit-requests'], '60')
    assert.equal(h['x-ratelimit-remaining-requests'], '59')
    assert.equal(h['x-ratelimit-limit-tokens'], '1000')
    assert.equal(h['x-ratelimit-remaining-tokens'], '900')
    assert.equal(h['x-ratelimit-limit-tokens-day'], '5000')
    assert.equal(h['x-ratelimit-remaining-tokens-day'], '4900')
    const minuteLeft = 60_000 - (Date.now() % 60_000)
    assert.ok(Math.abs(parseReset(h['x-ratelimit-reset-requests']) - minuteLeft) <= 1500)
    assert.equal(h['x-ratelimit-reset-tokens'], h['x-ratelimit-reset-requests'])
    assert.ok(parseReset(h['x-ratelimit-reset-tokens-day']) >= parseReset(h['x-ratelimit-reset-tokens']))
    await one.settle(r, { model: 'm', promptTokens: 100, completionTokens: 0 })

    // Only a day limit: it is the one reported as x-ratelimit-limit-tokens.
    const d = await one.reserve({ requestId: 'd', subject: uniqueSubject('hdr'), limits: { tokensPerDay: 700 }, reservedTokens: 200 })
    assert.equal(d.headers['x-ratelimit-limit-tokens'], '700')
    assert.equal(d.headers['x-ratelimit-remaining-tokens'], '500')
    assert.equal(d.headers['x-ratelimit-limit-tokens-day'], undefined)
    assert.equal(d.headers['x-ratelimit-limit-requests'], undefined)

    // The day limit binds before the minute one: remaining and reset follow it.
    const b = await one.reserve({
      requestId: 'b',
      subject: uniqueSubject('hdr'),
      limits: { tokensPerMinute: 1000, tokensPerDay: 600 },
      reservedTokens: 500,
    })
    assert.equal(b.headers['x-ratelimit-limit-tokens'], '1000')
    assert.equal(b.headers['x-ratelimit-remaining-tokens'], '100')
    assert.equal(b.headers['x-ratelimit-reset-tokens'], b.headers['x-ratelimit-reset-tokens-day'])

    const free = await one.reserve({ requestId: 'f', subject: uniqueSubject('free'), limits: {}, reservedTokens: 100 })
    assert.deepEqual({ ...free.headers }, {})
    assert.deepEqual(await one.peekHeaders(free.subject, {}), {})
  })

  test('a request larger than the limit itself gets a 429 that says so', async () => {
    const { one } = limiters()
    await assert.rejects(
      one.reserve({ requestId: 'x', subject: uniqueSubject('big'), limits: { tokensPerMinute: 1000 }, reservedTokens: 2000 }),
      (err: Error & { status?: number }) =>
        err.status === 429 && /tokensPerMinute: 1000 per minute, but this request alone reserves 2000/.test(err.message),
    )
  })

  test("a usage report includes this limiter's settlements still being gathered", async () => {
    const { one } = limiters()
    const subject = uniqueSubject('fresh-usage')
    const r = await one.reserve({ requestId: 'fresh', subject, limits: {}, reservedTokens: 10 })
    const settled = one.settle(r, { model: 'm', promptTokens: 4, completionTokens: 6 })
    const rows = await one.queryUsage({ subject })
    assert.deepEqual(
      rows.map((u) => [u.requests, u.promptTokens, u.completionTokens]),
      [[1, 4, 6]],
    )
    await settled
  })

  test('usage rows are exact per subject, model and day, with odd names intact', async () => {
    const { one, all } = limiters()
    const alice = uniqueSubject('usage "a{l}ice"')
    const bob = uniqueSubject('usage-bob')
    const settle = async (i: number, subject: string, model: string, p: number, c: number) => {
      const l = all[i % all.length]
      const r = await l.reserve({ requestId: `u${i}`, subject, limits: { requestsPerMinute: 1000 }, reservedTokens: 50 })
      await l.settle(r, { model, promptTokens: p, completionTokens: c })
    }
    await Promise.all([
      settle(0, alice, 'm1', 10, 1),
      settle(1, alice, 'm1', 20, 2),
      settle(2, alice, 'm1', 30, 3),
      settle(3, alice, 'm2/x', 5, 5),
      settle(4, bob, 'm1', 7, 0),
    ])
    // A subject without limits skips the store on reserve, but its usage is recorded.
    const free = await one.reserve({ requestId: 'f', subject: bob, limits: {}, reservedTokens: 9 })
    await one.settle(free, { model: 'm1', promptTokens: 1, completionTokens: 1 })
    const day = new Date().toISOString().slice(0, 10)
    const rows = await one.queryUsage({ subject: alice })
    assert.deepEqual(rows, [
      { subject: alice, model: 'm1', day, requests: 3, promptTokens: 60, completionTokens: 6 },
      { subject: alice, model: 'm2/x', day, requests: 1, promptTokens: 5, completionTokens: 5 },
    ])
    assert.deepEqual(await all[all.length - 1].queryUsage({ subject: bob, model: 'm1', from: day, to: day }), [
      { subject: bob, model: 'm1', day, requests: 2, promptTokens: 8, completionTokens: 1 },
    ])
    const m2 = await one.queryUsage({ model: 'm2/x' })
    assert.ok(m2.some((r) => r.subject === alice) && m2.every((r) => r.model === 'm2/x'))
    assert.deepEqual(await one.queryUsage({ subject: alice, to: '2000-01-01' }), [])
    assert.deepEqual(await one.queryUsage({ subject: alice, from: '2999-01-01' }), [])
  })
}
