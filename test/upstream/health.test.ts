import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HealthTracker } from '../../src/upstream/health.js'

const ok = { status: 200, error: null } as const
const refused = { status: null, error: 'ECONNREFUSED' } as const
const timedOut = { status: null, error: 'timeout' } as const
const outcome = (status: number | null, error: string | null = null) => ({ status, error, durationMs: 5 })

test('a replica starts healthy, and a failing first check ejects it at once', () => {
  const h = new HealthTracker()
  assert.equal(h.healthy, true)
  assert.equal(h.nextCheckAt, 0)
  assert.equal(h.onCheck({ status: 503, error: null }, 0), 'ejected')
  assert.equal(h.healthy, false)
  assert.equal(h.lastError, 'health:status_503')
})

test('one connection error ejects; 5xx eject only after three in a row', () => {
  const a = new HealthTracker()
  assert.equal(a.onOutcome(outcome(null, 'ECONNREFUSED'), 0), 'ejected')
  assert.equal(a.lastError, 'ECONNREFUSED')
  assert.notEqual(a.lastErrorAt, null)

  const b = new HealthTracker()
  assert.equal(b.onOutcome(outcome(500), 0), null)
  assert.equal(b.onOutcome(outcome(502), 0), null)
  assert.equal(b.onOutcome(outcome(200), 0), null) // a success resets the streak
  assert.equal(b.onOutcome(outcome(503), 0), null)
  assert.equal(b.onOutcome(outcome(null, 'first_byte_timeout'), 0), null)
  assert.equal(b.onOutcome(outcome(500), 0), 'ejected')
})

test('caller aborts are neutral and 4xx count as the replica answering', () => {
  const h = new HealthTracker()
  h.onOutcome(outcome(500), 0)
  h.onOutcome(outcome(500), 0)
  assert.equal(h.onOutcome(outcome(null, 'client_gone'), 0), null)
  assert.equal(h.failures, 2)
  assert.equal(h.onOutcome(outcome(400), 0), null)
  assert.equal(h.failures, 0)
  assert.equal(h.healthy, true)
})

test('re-checks of an ejected replica back off 1, 2, 4, 8, 10, 10 s; an answer re-admits it', () => {
  const h = new HealthTracker()
  let now = 1000
  h.onOutcome(outcome(null, 'UND_ERR_SOCKET'), now)
  const delays: number[] = []
  for (let i = 0; i < 6; i++) {
    delays.push(h.nextCheckAt - now)
    now = h.nextCheckAt
    assert.equal(h.onCheck(refused, now), null)
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 10000, 10000])
  now = h.nextCheckAt
  assert.equal(h.onCheck(ok, now), 'admitted')
  assert.equal(h.healthy, true)
  assert.equal(h.nextCheckAt, now + 2000)
})

test('a replica ejected again soon after re-admission resumes the backoff (flapping)', () => {
  const h = new HealthTracker()
  h.onOutcome(outcome(null, 'ECONNREFUSED'), 0)
  h.onCheck(refused, 1000) // step 1
  h.onCheck(ok, 3000)
  h.onOutcome(outcome(null, 'ECONNREFUSED'), 4000)
  assert.equal(h.nextCheckAt - 4000, 4000)
  // After a long healthy stretch the backoff starts over.
  h.onCheck(ok, 8000)
  h.onOutcome(outcome(null, 'ECONNREFUSED'), 100_000)
  assert.equal(h.nextCheckAt - 100_000, 1000)
})

test('a confirmed replica survives one slow check but not two, nor a refused connection', () => {
  const h = new HealthTracker()
  h.onCheck(ok, 0)
  assert.equal(h.onCheck(timedOut, 2000), null)
  assert.equal(h.healthy, true)
  assert.equal(h.nextCheckAt, 3000)
  assert.equal(h.onCheck(timedOut, 3000), 'ejected')

  const g = new HealthTracker()
  g.onCheck(ok, 0)
  assert.equal(g.onCheck(refused, 2000), 'ejected')
})

test('kind openai accepts any answer below 500 (servers without /health)', () => {
  const h = new HealthTracker()
  assert.equal(h.onCheck({ status: 404, error: null }, 0, true), null)
  assert.equal(h.healthy, true)
  const v = new HealthTracker()
  assert.equal(v.onCheck({ status: 404, error: null }, 0, false), 'ejected')
})
