import { test } from 'node:test'
import assert from 'node:assert/strict'
import { usageFrom, usageInReply } from '../../src/upstream/usage.js'

/** Text a model could write: quotes, backslashes, braces, and the usage member's own look. */
const TRICKY = [
  'plain',
  '"usage": {"prompt_tokens": 0, "completion_tokens": 0}',
  '"usage":{"prompt_tokens":1}}}',
  'ends with a backslash \\',
  '\\"usage\\":{',
  '{{{',
  '}}}',
  'ünïcødé ✓ "quoted"',
  '',
]

function randomInt(n: number): number {
  return Math.floor(Math.random() * n)
}

/** A reply like vLLM's, Ollama's or the Responses API's, with text around the usage member. */
function randomReply(): { reply: Record<string, unknown>; text: string } {
  const content = () => TRICKY[randomInt(TRICKY.length)] + TRICKY[randomInt(TRICKY.length)]
  const usage =
    randomInt(3) === 0
      ? { input_tokens: randomInt(5000), output_tokens: randomInt(5000), total_tokens: 1 }
      : {
          prompt_tokens: randomInt(5000),
          completion_tokens: randomInt(5000),
          total_tokens: randomInt(9000),
          prompt_tokens_details: randomInt(2) ? { cached_tokens: randomInt(100) } : null,
        }
  const before = { id: `cmpl-${content()}`, choices: [{ message: { content: content(), tool_calls: [{ arguments: content() }] } }] }
  const after = { system_fingerprint: content(), kv_transfer_params: null }
  const reply = randomInt(2) ? { ...before, usage, ...after } : { ...before, ...after, usage }
  // Compact (pydantic, Go) or with Python's default separators, or indented.
  const style = randomInt(3)
  const text =
    style === 0
      ? JSON.stringify(reply)
      : style === 1
        ? JSON.stringify(reply, null, 2)
        : JSON.stringify(reply).replace(/":(?=[^"]*"?)/g, '": ').replace(/,"/g, ', "')
  return { reply, text }
}

test('the usage read from its member alone equals the usage of the whole parsed reply', () => {
  for (let i = 0; i < 2000; i++) {
    const { text } = randomReply()
    const parsed = JSON.parse(text) as unknown
    assert.deepEqual(usageInReply(Buffer.from(text)), usageFrom(parsed), text)
  }
})

test('a reply without a usage object is left to the full parse', () => {
  const none = [
    '{"id":"x","choices":[]}',
    '{"id":"x","usage":null}',
    '{"id":"x","usage":7}',
    '{"id":"x","content":"\\"usage\\":{\\"prompt_tokens\\":5}"}',
    '{"id":"x","usage":{"prompt_tokens":5',
    '{"id":"x","usage":{"prompt_tokens":5,}}',
    '<html>502 Bad Gateway</html>',
    '"usage"',
    '"usage" "usage"',
    '["usage",{"usage":1}]',
    '',
  ]
  for (const text of none) assert.equal(usageInReply(Buffer.from(text)), undefined, text)
})

test('the last usage member counts, and text in strings is never taken for one', () => {
  const text = '{"a":{"usage":{"prompt_tokens":1,"completion_tokens":1}},"note":"\\"usage\\": {\\"prompt_tokens\\": 0}","usage" : {"prompt_tokens":12,"completion_tokens":34,"note":"}{\\"}"},"kind":"usage"}'
  assert.deepEqual(usageInReply(Buffer.from(text)), { promptTokens: 12, completionTokens: 34 })
  assert.deepEqual(usageFrom(JSON.parse(text)), { promptTokens: 12, completionTokens: 34 }, 'the test meant a valid reply')
})
