import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions'
import type { Completion } from 'openai/resources/completions'
import type { CreateEmbeddingResponse } from 'openai/resources/embeddings'
import { startSim, type SimHandle } from '../helpers/processes.js'
import { chunksOf, getJson, postJson, stats, streamPost, type ErrorBody, type Recorded } from './helpers.js'

const MESSAGES = [
  { role: 'system', content: 'You are terse.' }, // 14 characters
  { role: 'user', content: 'Say hello in a few words.' }, // 25 characters
]
const PROMPT_TOKENS = Math.ceil((14 + 25) / 4)

describe('sim vllm: chat and completions', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--tokens', '12', '--model', 'sim-model,alias-model', '--id', 'replica-a'])
  })
  after(() => sim.stop())

  test('non-streaming usage follows the prompt and the configured tokens', async () => {
    const r = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: MESSAGES })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-sim-replica'), 'replica-a')
    const c = r.body
    assert.match(c.id, /^chatcmpl-[0-9a-f]{32}$/)
    assert.equal(c.object, 'chat.completion')
    assert.equal(c.model, 'sim-model')
    assert.equal(c.choices[0].finish_reason, 'stop')
    assert.deepEqual(c.usage && [c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens], [PROMPT_TOKENS, 12, PROMPT_TOKENS + 12])
    const words = (c.choices[0].message.content ?? '').trim().split(/\s+/)
    assert.equal(words.length, 12, 'one word per completion token')
  })

  test('max_tokens lowers the reply and finishes with length; images cost a fixed amount', async () => {
    const r = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, {
      model: 'alias-model',
      max_tokens: 5,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'abcdefgh' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
    })
    assert.equal(r.status, 200)
    assert.equal(r.body.model, 'alias-model')
    assert.equal(r.body.choices[0].finish_reason, 'length')
    assert.deepEqual(r.body.usage && [r.body.usage.prompt_tokens, r.body.usage.completion_tokens], [2 + 85, 5])
    const capped = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: MESSAGES, max_completion_tokens: 3 })
    assert.equal(capped.body.usage?.completion_tokens, 3)
  })

  test('streaming: role chunk, one chunk per token, finish, usage only when asked, [DONE]', async () => {
    for (const includeUsage of [true, false]) {
      const body = { model: 'sim-model', messages: MESSAGES, stream: true, max_tokens: 7, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) }
      const r = await streamPost(`${sim.url}/v1/chat/completions`, body)
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/)
      assert.ok(r.events.every((e) => e.event === undefined), 'chat streams have data lines only')
      const { chunks, done } = chunksOf<ChatCompletionChunk>(r.events)
      assert.ok(done, 'ends with data: [DONE]')
      assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' })
      const contentChunks = chunks.filter((c) => c.choices[0]?.delta.content)
      assert.equal(contentChunks.length, 7)
      const finishes = chunks.filter((c) => c.choices[0]?.finish_reason)
      assert.equal(finishes.length, 1)
      assert.equal(finishes[0].choices[0].finish_reason, 'length')
      assert.ok(new Set(chunks.map((c) => c.id)).size === 1, 'one id for the whole stream')
      const usageChunks = chunks.filter((c) => c.usage)
      if (includeUsage) {
        assert.equal(usageChunks.length, 1)
        const last = chunks[chunks.length - 1]
        assert.deepEqual(last.choices, [])
        assert.deepEqual([last.usage?.prompt_tokens, last.usage?.completion_tokens, last.usage?.total_tokens], [PROMPT_TOKENS, 7, PROMPT_TOKENS + 7])
      } else {
        assert.equal(usageChunks.length, 0)
        assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'length')
      }
    }
  })

  test('completions: text_completion, streaming without a role chunk', async () => {
    const plain = await postJson<Completion>(`${sim.url}/v1/completions`, { model: 'sim-model', prompt: 'abcdefghij', max_tokens: 4 })
    assert.equal(plain.body.object, 'text_completion')
    assert.match(plain.body.id, /^cmpl-/)
    assert.deepEqual([plain.body.usage?.prompt_tokens, plain.body.usage?.completion_tokens], [3, 4])
    const r = await streamPost(`${sim.url}/v1/completions`, { model: 'sim-model', prompt: ['ab', 'cd'], stream: true, stream_options: { include_usage: true } })
    const { chunks, done } = chunksOf<Completion>(r.events)
    assert.ok(done)
    assert.equal(chunks.filter((c) => c.choices[0]?.text).length, 12)
    assert.equal(chunks[chunks.length - 1].usage?.prompt_tokens, 2)
  })

  test('embeddings are deterministic and carry usage', async () => {
    const a = await postJson<CreateEmbeddingResponse>(`${sim.url}/v1/embeddings`, { model: 'sim-model', input: ['hello world', 'other'] })
    const b = await postJson<CreateEmbeddingResponse>(`${sim.url}/v1/embeddings`, { model: 'sim-model', input: 'hello world' })
    assert.equal(a.body.data.length, 2)
    assert.deepEqual(a.body.data[0].embedding, b.body.data[0].embedding)
    assert.notDeepEqual(a.body.data[0].embedding, a.body.data[1].embedding)
    assert.deepEqual([a.body.usage.prompt_tokens, a.body.usage.total_tokens], [3 + 2, 3 + 2])
  })

  test('vLLM error shapes: unknown model 404, malformed JSON 400, stream_options without stream 400', async () => {
    const missing = await postJson<ErrorBody>(`${sim.url}/v1/chat/completions`, { model: 'nope', messages: MESSAGES })
    assert.equal(missing.status, 404)
    assert.deepEqual(missing.body, { error: { message: 'The model `nope` does not exist.', type: 'NotFoundError', param: null, code: 404 } })
    const res = await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' })
    assert.equal(res.status, 400)
    const bad = (await res.json()) as ErrorBody
    assert.equal(bad.error.type, 'BadRequestError')
    assert.equal(bad.error.code, 400)
    const opts = await postJson<ErrorBody>(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: MESSAGES, stream_options: { include_usage: true } })
    assert.equal(opts.status, 400)
    assert.equal(opts.body.error.param, 'stream_options')
    const route = await getJson<{ detail: string }>(`${sim.url}/v1/nothing-here`)
    assert.deepEqual([route.status, route.body], [404, { detail: 'Not Found' }])
  })

  test('/v1/models lists every served name, owned by vllm', async () => {
    const r = await getJson<{ object: string; data: { id: string; owned_by: string; root: string }[] }>(`${sim.url}/v1/models`)
    assert.equal(r.body.object, 'list')
    assert.deepEqual(r.body.data.map((m) => [m.id, m.owned_by, m.root]), [['sim-model', 'vllm', 'sim-model'], ['alias-model', 'vllm', 'sim-model']])
  })

  test('/sim/requests records what arrived (headers, parsed body) and can be cleared', async () => {
    await fetch(`${sim.url}/sim/requests`, { method: 'DELETE' })
    const body = { model: 'sim-model', messages: MESSAGES, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] }
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    await postJson(`${sim.url}/v1/chat/completions`, body, { traceparent })
    await fetch(`${sim.url}/health`)
    const r = await getJson<{ data: Recorded[] }>(`${sim.url}/sim/requests`)
    assert.equal(r.body.data.length, 1, 'health probes are not recorded')
    const [rec] = r.body.data
    assert.deepEqual([rec.method, rec.path], ['POST', '/v1/chat/completions'])
    assert.equal(rec.headers.traceparent, traceparent)
    assert.deepEqual(rec.body, body)
    await fetch(`${sim.url}/sim/requests`, { method: 'DELETE' })
    assert.equal((await getJson<{ data: Recorded[] }>(`${sim.url}/sim/requests`)).body.data.length, 0)
  })

  test('/sim/stats counts requests by path', async () => {
    const before = await stats(sim.url)
    await fetch(`${sim.url}/health`)
    const s = await stats(sim.url)
    assert.equal(s.id, 'replica-a')
    assert.equal(s.kind, 'vllm')
    assert.equal(s.byPath['/health'], (before.byPath['/health'] ?? 0) + 1)
    // A health probe is counted by path but not as an API request.
    assert.equal(s.requests, before.requests)
    await fetch(`${sim.url}/v1/models`)
    assert.equal((await stats(sim.url)).requests, before.requests + 1)
  })

  test('the official OpenAI SDK reads replies, streams and errors', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const done = await client.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })
    assert.equal(done.usage?.completion_tokens, 4)
    const stream = await client.chat.completions.create({
      model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true },
    })
    let text = ''
    let usage = 0
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      usage = chunk.usage?.completion_tokens ?? usage
    }
    assert.equal(text.trim().split(/\s+/).length, 12)
    assert.equal(usage, 12)
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), OpenAI.NotFoundError)
  })
})

describe('sim vllm: --api-key', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('vllm', ['--api-key', 'replica-secret'])
  })
  after(() => sim.stop())

  test('guards /v1/* like vllm --api-key; /health stays open', async () => {
    const none = await getJson<{ error: string }>(`${sim.url}/v1/models`)
    assert.deepEqual([none.status, none.body], [401, { error: 'Unauthorized' }])
    const wrong = await postJson(`${sim.url}/v1/chat/completions`, { model: 'sim-model', messages: MESSAGES }, { authorization: 'Bearer other' })
    assert.equal(wrong.status, 401)
    const right = await getJson(`${sim.url}/v1/models`, { authorization: 'Bearer replica-secret' })
    assert.equal(right.status, 200)
    assert.equal((await fetch(`${sim.url}/health`)).status, 200)
  })
})
