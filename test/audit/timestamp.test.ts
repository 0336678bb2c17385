import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isoTimestamp } from '../../src/audit/timestamp.js'

test('isoTimestamp is Date#toISOString for any millisecond, in any order (the cached second is replaced)', () => {
  const now = Date.now()
  const near = fc.integer({ min: now - 5000, max: now + 5000 })
  const any = fc.integer({ min: -8.64e15, max: 8.64e15 })
  fc.assert(
    fc.property(fc.array(fc.oneof(near, any), { minLength: 1, maxLength: 20 }), (times) => {
      for (const ms of times) assert.equal(isoTimestamp(ms), new Date(ms).toISOString())
    }),
    { numRuns: 500 },
  )
  for (const ms of [0, 999, 1000, 1001, -1, -999, -1000, -1001, 253402300799999, 253402300800000]) {
    assert.equal(isoTimestamp(ms), new Date(ms).toISOString(), String(ms))
  }
})
