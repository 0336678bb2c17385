// Tool calls (single, named, parallel; JSON and streamed the way vLLM streams them) and
// JSON output modes.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions'
import { startSim, type SimHandle } from '../helpers/processes.js'
import { chunksOf, postJson, streamPost } from './helpers.js'

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } },
]

const ask = (text: string): { role: string; content: string }[] => [{ role: 'user', content: text }]

describe('sim vllm: tool calls', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--tokens', '20'])
  })
  after(() => sim.stop())

  test('"call a tool" answers with a call of the first function and finish_reason tool_calls', async () => {
    const r = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: ask('Please call a tool.'), tools: TOOLS })
    const choice = r.body.choices[0]
    assert.equal(choice.finish_reason, 'tool_calls')
    const calls = choice.message.tool_calls ?? []
    assert.equal(calls.length, 1)
    const call = calls[0]
    assert.equal(call.type, 'function')
    if (call.type !== 'function') return
    assert.equal(call.function.name, 'get_weather')
    assert.match(call.id, /^chatcmpl-tool-/)
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'sim', unit: 'celsius' })
    assert.ok((r.body.usage?.completion_tokens ?? 0) > 0)
  })

  test('tool_choice naming a function calls that one; "none" and no trigger give text', async () => {
    const named = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, {
      model: 'sim-model', messages: ask('hi'), tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_time' } },
    })
    const call = named.body.choices[0].message.tool_calls?.[0]
    assert.equal(call?.type === 'function' ? call.function.name : undefined, 'get_time')
    const none = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: ask('call a tool'), tools: TOOLS, tool_choice: 'none' })
    assert.equal(none.body.choices[0].finish_reason, 'stop')
    const plain = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: ask('just talk'), tools: TOOLS })
    assert.deepEqual(plain.body.choices[0].message.tool_calls, [])
    assert.equal(plain.body.choices[0].finish_reason, 'stop')
  })

  test('"call two tools" calls the first two in parallel unless parallel_tool_calls is false', async () => {
    const both = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: ask('Call two tools now'), tools: TOOLS })
    const names = (both.body.choices[0].message.tool_calls ?? []).map((c) => (c.type === 'function' ? c.function.name : ''))
    assert.deepEqual(names, ['get_weather', 'get_time'])
    const one = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, {
      model: 'sim-model', messages: ask('Call two tools now'), tools: TOOLS, parallel_tool_calls: false,
    })
    assert.equal(one.body.choices[0].message.tool_calls?.length, 1)
  })

  test('streamed tool calls: a header delta per call (id, type, name, empty arguments), then argument pieces', async () => {
    const r = await streamPost(`${sim.url}/v1/chat/completions`, {
      model: 'sim-model', messages: ask('call two tools'), tools: TOOLS, stream: true, stream_options: { include_usage: true },
    })
    const { chunks, done } = chunksOf<ChatCompletionChunk>(r.events)
    assert.ok(done)
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    const args = new Map<number, string>()
    for (const index of [0, 1]) {
      const mine = deltas.filter((d) => d.index === index)
      assert.ok(mine.length >= 2, `call ${index} has a header and argument pieces`)
      const [headDelta, ...rest] = mine
      assert.equal(headDelta.type, 'function')
      assert.match(headDelta.id ?? '', /^chatcmpl-tool-/)
      assert.equal(headDelta.function?.arguments, '')
      assert.ok(rest.every((d) => d.id === undefined && d.function?.name === undefined))
      args.set(index, rest.map((d) => d.function?.arguments ?? '').join(''))
    }
    assert.deepEqual(JSON.parse(args.get(0) ?? ''), { city: 'sim', unit: 'celsius' })
    assert.deepEqual(JSON.parse(args.get(1) ?? ''), { zone: 'sim' })
    assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason === 'tool_calls').length, 1)
    const pieces = deltas.filter((d) => d.id === undefined).length
    assert.equal(chunks[chunks.length - 1].usage?.completion_tokens, pieces, 'usage counts the argument pieces')
  })

  test('response_format json_schema / json_object: the content is valid JSON, usage still exact', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' }, ok: { type: 'boolean' } } }
    const r = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, {
      model: 'sim-model', messages: ask('json please'), response_format: { type: 'json_schema', json_schema: { name: 'p', schema } },
    })
    assert.deepEqual(JSON.parse(r.body.choices[0].message.content ?? ''), { name: 'sim', age: 1, ok: true })
    assert.equal(r.body.usage?.completion_tokens, 20)
    const s = await streamPost(`${sim.url}/v1/chat/completions`, {
      model: 'sim-model', messages: ask('json please'), response_format: { type: 'json_object' }, stream: true, max_tokens: 6,
    })
    const { chunks } = chunksOf<ChatCompletionChunk>(s.events)
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
    assert.equal(typeof JSON.parse(text), 'object')
    assert.equal(chunks.filter((c) => c.choices[0]?.delta.content).length, 6)
  })
})
