import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { SseRelay } from '../../src/upstream/sse.js'
import { createModelRewriter } from '../../src/upstream/model-rewrite.js'

// The relay against a model of what it must do, over streams cut into chunks anywhere: the
// bytes a client receives, the usage noted, the content events counted. Whole-event chunks
// take the byte path, cut ones the text path; both must agree with the model.

interface Ev {
  text: string
  usage: { prompt: number; completion: number } | null
  usageOnly: boolean
  content: boolean
}

const token = fc.string({ unit: 'grapheme', maxLength: 6 })

const contentEvent = fc.record({ t: token, withNullUsage: fc.boolean() }).map(({ t, withNullUsage }): Ev => ({
  text: `data: ${JSON.stringify({ id: 'c1', model: 'm', choices: [{ index: 0, delta: { content: t } }], ...(withNullUsage ? { usage: null } : {}) })}`,
  usage: null,
  usageOnly: false,
  content: true,
}))

const usageEvent = fc
  .record({ prompt: fc.nat(5000), completion: fc.nat(5000), withChoices: fc.boolean(), spaced: fc.boolean() })
  .map(({ prompt, completion, withChoices, spaced }): Ev => {
    const choices = withChoices ? [{ index: 0, delta: {}, finish_reason: 'stop' }] : []
    const json = JSON.stringify({ id: 'c1', model: 'm', choices, usage: { prompt_tokens: prompt, completion_tokens: completion } }, null, spaced ? 1 : undefined).replace(/\n/g, '')
    return { text: `data: ${json}`, usage: { prompt, completion }, usageOnly: !withChoices, content: withChoices }
  })

const otherEvent = fc.constantFrom<Ev>(
  { text: ': keep-alive', usage: null, usageOnly: false, content: false },
  { text: 'data: [DONE]', usage: null, usageOnly: false, content: false },
)

const stream = fc.array(fc.oneof({ arbitrary: contentEvent, weight: 4 }, usageEvent, otherEvent), { minLength: 1, maxLength: 12 })

/** Cuts `bytes` at the given fractions (sorted, distinct positions). */
function cut(bytes: Buffer, fractions: number[]): Buffer[] {
  const at = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let from = 0
  for (const p of at) {
    pieces.push(bytes.subarray(from, p))
    from = p
  }
  pieces.push(bytes.subarray(from))
  return pieces
}

function relayAll(relay: SseRelay, chunks: Buffer[]): string {
  const out: Buffer[] = []
  for (const c of chunks) {
    const piece = relay.push(c)
    if (piece !== null) out.push(Buffer.from(piece))
  }
  const last = relay.finish()
  if (last !== null) out.push(Buffer.from(last))
  return Buffer.concat(out).toString('utf8')
}

test('any stream, cut anywhere: the client gets every event but dropped usage chunks, usage is noted, content counted while it is unknown', () => {
  fc.assert(
    fc.property(stream, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), fc.boolean(), (events, cuts, dropUsage) => {
      const bytes = Buffer.from(events.map((e) => `${e.text}\n\n`).join(''))
      const relay = new SseRelay(null, dropUsage, 'chat')
      const got = relayAll(relay, cut(bytes, cuts))
      const kept = events.filter((e) => !(dropUsage && e.usageOnly))
      assert.equal(got, kept.map((e) => `${e.text}\n\n`).join(''))
      const lastUsage = events.filter((e) => e.usage !== null).at(-1)?.usage ?? null
      assert.deepEqual(relay.usage, lastUsage && { promptTokens: lastUsage.prompt, completionTokens: lastUsage.completion })
      // The estimate matters (and is kept) only while no usage has come.
      if (lastUsage === null) assert.equal(relay.contentEvents, events.filter((e) => e.content).length)
    }),
    { numRuns: 400 },
  )
})

test('a whole reply in one chunk passes as the same bytes when nothing is dropped', () => {
  const text =
    'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n' +
    'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n' +
    'data: [DONE]\n\n'
  const chunk = Buffer.from(text)
  const relay = new SseRelay(null, false, 'chat')
  assert.equal(relay.push(chunk), chunk)
  assert.deepEqual(relay.usage, { promptTokens: 3, completionTokens: 1 })
  assert.equal(relay.complete, true)
  const noUsage = new SseRelay(null, true, 'chat')
  const contentOnly = Buffer.from(text.split('\n\n')[0] + '\n\n')
  assert.equal(noUsage.push(contentOnly), contentOnly)
  assert.equal(noUsage.contentEvents, 1)
  assert.equal(noUsage.complete, false)
})

test('CRLF events and a model rewrite are handled too (text path)', () => {
  const text =
    'data: {"model":"internal","choices":[{"delta":{"content":"Hi"}}]}\r\n\r\n' +
    'data: {"model":"internal","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\r\n\r\n' +
    'data: [DONE]\r\n\r\n'
  const relay = new SseRelay(createModelRewriter('internal', 'public'), true, 'chat')
  const got = relayAll(relay, [Buffer.from(text)])
  assert.equal(got, 'data: {"model":"public","choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n')
  assert.deepEqual(relay.usage, { promptTokens: 3, completionTokens: 1 })
  assert.equal(relay.contentEvents, 1)
})
