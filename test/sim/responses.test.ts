// The Responses API on the vLLM kind: response object, and the SSE event sequence with
// sequence numbers, ending in response.completed with usage.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import type { Response as ApiResponse, ResponseStreamEvent } from 'openai/resources/responses/responses'
import { startSim, type SimHandle } from '../helpers/processes.js'
import { postJson, streamPost } from './helpers.js'

const INPUT = 'Write one line about queues.' // 28 characters

describe('sim vllm: /v1/responses', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--tokens', '9'])
  })
  after(() => sim.stop())

  test('non-streaming: a response object with an output_text message and usage', async () => {
    const r = await postJson<ApiResponse>(`${sim.url}/v1/responses`, { model: 'sim-model', input: INPUT, instructions: 'Be brief.' })
    assert.equal(r.status, 200)
    const resp = r.body
    assert.equal(resp.object, 'response')
    assert.equal(resp.status, 'completed')
    assert.match(resp.id, /^resp_/)
    const [item] = resp.output
    assert.equal(item.type, 'message')
    if (item.type !== 'message') return
    assert.equal(item.content[0].type, 'output_text')
    if (item.content[0].type !== 'output_text') return
    assert.equal(item.content[0].text.trim().split(/\s+/).length, 9)
    const input = Math.ceil((28 + 'Be brief.'.length) / 4)
    assert.deepEqual([resp.usage?.input_tokens, resp.usage?.output_tokens, resp.usage?.total_tokens], [input, 9, input + 9])
  })

  test('max_output_tokens cuts the reply: status incomplete', async () => {
    const r = await postJson<ApiResponse>(`${sim.url}/v1/responses`, { model: 'sim-model', input: INPUT, max_output_tokens: 4 })
    assert.equal(r.body.status, 'incomplete')
    assert.equal(r.body.incomplete_details?.reason, 'max_output_tokens')
    assert.equal(r.body.usage?.output_tokens, 4)
  })

  test('streaming: created, in_progress, item and part added, deltas, done events, completed with usage', async () => {
    const r = await streamPost(`${sim.url}/v1/responses`, { model: 'sim-model', input: [{ role: 'user', content: INPUT }], stream: true })
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/)
    assert.doesNotMatch(r.text, /\[DONE\]/)
    const events = r.events.map((e) => ({ name: e.event, data: JSON.parse(e.data) as ResponseStreamEvent }))
    for (const [i, e] of events.entries()) {
      assert.equal(e.name, e.data.type, 'the event line names the data type')
      assert.equal(e.data.sequence_number, i)
    }
    const types = events.map((e) => e.data.type)
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'])
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed'])
    const deltas = events.flatMap((e) => (e.data.type === 'response.output_text.delta' ? [e.data.delta] : []))
    assert.equal(deltas.length, 9)
    const last = events[events.length - 1].data
    assert.equal(last.type, 'response.completed')
    if (last.type !== 'response.completed') return
    assert.equal(last.response.usage?.output_tokens, 9)
    assert.equal(last.response.usage?.input_tokens, 7)
    const doneText = events.find((e) => e.data.type === 'response.output_text.done')?.data
    assert.equal(doneText?.type === 'response.output_text.done' ? doneText.text : undefined, deltas.join(''))
  })

  test('the official SDK streams it to a final response', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const stream = client.responses.stream({ model: 'sim-model', input: INPUT })
    let text = ''
    stream.on('response.output_text.delta', (e) => (text += e.delta))
    const final = await stream.finalResponse()
    assert.equal(final.output_text, text)
    assert.equal(final.usage?.output_tokens, 9)
  })

  test('function tools: a function_call output item', async () => {
    const r = await postJson<ApiResponse>(`${sim.url}/v1/responses`, {
      model: 'sim-model',
      input: 'call a tool',
      tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }],
    })
    const [item] = r.body.output
    assert.equal(item.type, 'function_call')
    if (item.type !== 'function_call') return
    assert.equal(item.name, 'lookup')
    assert.deepEqual(JSON.parse(item.arguments), { q: 'sim' })
  })
})
