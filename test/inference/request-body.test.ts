import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyEdits, memberSpans } from '../../src/inference/json-members.js'
import { parseInferenceBody, upstreamBody, completionBudget } from '../../src/inference/request-body.js'
import { InvalidRequest } from '../../src/errors/index.js'

const body = (o: unknown, route: Parameters<typeof parseInferenceBody>[1] = '/v1/chat/completions') =>
  parseInferenceBody(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)), route)

test('memberSpans finds exactly what JSON.parse reads, for any object and any spacing', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom(0, 1, 2), (obj, indent) => {
      const text = JSON.stringify(obj, null, indent)
      const keys = new Set(Object.keys(obj))
      const spans = memberSpans(text, keys)
      for (const key of keys) {
        const span = spans.get(key)
        if (key !== JSON.parse(JSON.stringify(key)) || /["\\\u0000-\u001f\u2028\u2029]/.test(key)) continue // escaped keys are not matched
        assert.ok(span, `no span for ${JSON.stringify(key)}`)
        assert.deepEqual(JSON.parse(text.slice(span.start, span.end)), JSON.parse(JSON.stringify(obj[key])))
      }
    }),
    { numRuns: 500, seed: 7 },
  )
})

test('applyEdits replaces and appends members and stays valid JSON', () => {
  const text = '{ "model" : "a", "n": [1, {"x": "}"}], "max_tokens": 900 }'
  const spans = memberSpans(text, new Set(['model', 'max_tokens']))
  const out = applyEdits(text, [
    { key: 'model', span: spans.get('model')!, value: '"/models/b"' },
    { key: 'max_tokens', span: spans.get('max_tokens')!, value: '64' },
    { key: 'stream_options', span: null, value: '{"include_usage":true}' },
  ])
  assert.deepEqual(JSON.parse(out), { model: '/models/b', n: [1, { x: '}' }], max_tokens: 64, stream_options: { include_usage: true } })
})

test('the upstream body keeps every byte it does not change (a 64-bit seed keeps its digits)', () => {
  const text = '{"model":"pub","seed":12345678901234567890,"messages":[{"role":"user","content":"hi \\u00e9"}],"stream":true,"max_tokens":5000}'
  const parsed = body(text)
  const out = upstreamBody(parsed, '/models/up', 100)
  assert.match(out, /"seed":12345678901234567890/)
  assert.match(out, /"content":"hi \\u00e9"/)
  const json = JSON.parse(out)
  assert.equal(json.model, '/models/up')
  assert.equal(json.max_tokens, 100)
  assert.deepEqual(json.stream_options, { include_usage: true })
})

test('caps: a missing cap is added, a lower one kept; the client stream_options are extended, not replaced', () => {
  const noCap = JSON.parse(upstreamBody(body({ model: 'm', messages: [] }), 'm', 64))
  assert.equal(noCap.max_tokens, 64)
  const lower = JSON.parse(upstreamBody(body({ model: 'm', messages: [], max_completion_tokens: 10 }), 'm', 64))
  assert.equal(lower.max_completion_tokens, 10)
  assert.equal(lower.max_tokens, undefined)
  const opts = JSON.parse(
    upstreamBody(body({ model: 'm', messages: [], stream: true, stream_options: { continuous_usage_stats: true } }), 'm', undefined),
  )
  assert.deepEqual(opts.stream_options, { continuous_usage_stats: true, include_usage: true })
  const untouched = body({ model: 'm', messages: [], stream: false })
  assert.equal(upstreamBody(untouched, 'm', undefined), untouched.text)
  const responses = JSON.parse(upstreamBody(body({ model: 'm', input: 'x', stream: true }, '/v1/responses'), 'm', 32))
  assert.equal(responses.max_output_tokens, 32)
  assert.equal(responses.stream_options, undefined)
})

test('reservation budget: the client cap clamped by the role, the role cap when absent, 0 for embeddings', () => {
  assert.equal(completionBudget(body({ model: 'm', messages: [], max_tokens: 500 }), 100), 100)
  assert.equal(completionBudget(body({ model: 'm', messages: [], max_tokens: 50 }), 100), 50)
  assert.equal(completionBudget(body({ model: 'm', messages: [] }), 100), 100)
  assert.equal(completionBudget(body({ model: 'm', input: 'x' }, '/v1/embeddings'), 100), 0)
})

test('validation names the field; __proto__ and constructor keys are plain data', () => {
  const bad: [unknown, string | null][] = [
    ['{"model":', null],
    [{ messages: [] }, 'model'],
    [{ model: '', messages: [] }, 'model'],
    [{ model: 'm' }, 'messages'],
    [{ model: 'm', messages: [], max_tokens: 1.5 }, 'max_tokens'],
    [{ model: 'm', messages: [], stream_options: [] }, 'stream_options'],
  ]
  for (const [input, param] of bad) {
    assert.throws(() => body(input), (e: unknown) => e instanceof InvalidRequest && e.param === param)
  }
  const proto = body('{"model":"m","messages":[],"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}')
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.match(upstreamBody(proto, 'up', 10), /"__proto__":\{"polluted":1\}/)
})
