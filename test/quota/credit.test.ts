import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AdmissionCredit, CREDIT_LIFETIME_MS, MAX_BLOCK, MIN_BLOCK, nextBlock } from '../../src/quota/credit.js'

// The local side of an admission credit: what it admits, what it reports, what goes back.

const limits = { requestsPerMinute: 1000, maxConcurrent: 50 }
// Redis granted a block of 4 at t=120,000 ms (minute 2): 10 requests and 400 tokens counted with it.
const granted = [0, 120_000, 10, 400, 400, 4, 4]

function credit(sentAt = 0): AdmissionCredit {
  return new AdmissionCredit(limits, 4, 400, granted, sentAt, 'l', 'l*4')
}

test('admits while it has requests and tokens left, under the same limits, before it ends', () => {
  const c = credit(1000)
  assert.ok(c.fits(limits, 100, 1000, true))
  assert.ok(c.fits({ ...limits }, 100, 1000, true), 'limits compared by value')
  assert.ok(!c.fits({ ...limits, requestsPerMinute: 999 }, 100, 1000, true))
  assert.ok(!c.fits(limits, 401, 1000, true), 'more tokens than it holds')
  assert.ok(!c.fits(limits, 1, 1000 + CREDIT_LIFETIME_MS, true), 'ended')
  c.usedRequests = 4
  assert.ok(!c.fits(limits, 1, 1000, true), 'no request left')
  c.usedRequests = 1
  assert.ok(c.fits(limits, 1, 1000, false), 'no lease needed')
  c.returned = true
  assert.ok(!c.fits(limits, 1, 1000, false), 'returned')
})

test('reports the windows with only what it admitted counted, and returns the rest', () => {
  const c = credit()
  c.usedRequests = 1
  c.usedTokens = 70
  assert.equal(c.takeLease(), 'l.1')
  assert.deepEqual(c.stateNow(30), [0, 120_030, 7, 70, 70, 1, 0])
  assert.equal(c.minuteWindow, 2)
  assert.equal(c.dayWindow, 0)
  assert.deepEqual(c.takeReturn(), { minuteWindow: 2, dayWindow: 0, unusedRequests: 3, unusedTokens: 330, leasesMember: 'l*4', heldLeases: ['l.1'] })
  assert.deepEqual(c.takeReturn().heldLeases, [], 'the held leases left with the return')
  c.usedTokens = 450
  assert.equal(c.takeReturn().unusedTokens, -50, 'an overrun goes back as a negative refund (charged)')
})

test('lease ids: one per request in flight, given back ones reused, only held ones leave with the return', () => {
  const c = credit()
  const [a, b, d] = [c.takeLease(), c.takeLease(), c.takeLease()]
  assert.deepEqual([a, b, d], ['l.1', 'l.2', 'l.3'])
  c.usedRequests = 3
  assert.deepEqual(c.stateNow(0)[5], 3, 'in flight: the three held (Redis counts the block of 4)')
  c.putLease(b)
  c.putLease(b)
  assert.equal(c.stateNow(0)[5], 2, 'a lease given back twice frees one slot')
  assert.equal(c.takeLease(), 'l.2', 'reused')
  assert.equal(c.takeLease(), 'l.4', 'given back twice, reused once: the next one is new')
  c.putLease('l.4')
  c.putLease(a)
  assert.deepEqual([...c.takeReturn().heldLeases].sort(), ['l.2', 'l.3'])
})

test('the block doubles when used up and halves when it mostly idled, within bounds', () => {
  const c = credit()
  c.usedRequests = 4
  assert.equal(nextBlock(8, c), 16)
  assert.equal(nextBlock(MAX_BLOCK, c), MAX_BLOCK)
  c.usedRequests = 0
  assert.equal(nextBlock(16, c), 8)
  assert.equal(nextBlock(MIN_BLOCK, c), MIN_BLOCK)
  c.usedRequests = 2
  assert.equal(nextBlock(16, c), 16)
})
