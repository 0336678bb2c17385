// The ollama kind: Ollama's own endpoints, no /health or /metrics, and its OpenAI layer's
// framing (fp_ollama, role on every delta, whole tool calls, short numeric ids).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions'
import type { Response as ApiResponse } from 'openai/resources/responses/responses'
import { startSim, type SimHandle } from '../helpers/processes.js'
import { chunksOf, getJson, postJson, stats, streamPost, type ErrorBody } from './helpers.js'

interface Tags {
  models: { name: string; model: string; modified_at: string; size: number; digest: string; details: { format: string } }[]
}

describe('sim ollama', () => {
  let sim: SimHandle
  before(async () => {
    sim = await startSim('ollama', ['--model', 'llama3.2,qwen2.5:7b', '--tokens', '5'])
  })
  after(() => sim.stop())

  test('GET / and /api/version answer like Ollama', async () => {
    const root = await fetch(`${sim.url}/`)
    assert.equal(root.status, 200)
    assert.match(root.headers.get('content-type') ?? '', /^text\/plain/)
    assert.equal(await root.text(), 'Ollama is running')
    const v = await getJson<{ version: string }>(`${sim.url}/api/version`)
    assert.match(v.body.version, /^0\.\d+\.\d+$/)
  })

  test('/api/tags lists the models with tags, digests and details', async () => {
    const r = await getJson<Tags>(`${sim.url}/api/tags`)
    assert.deepEqual(r.body.models.map((m) => m.name), ['llama3.2:latest', 'qwen2.5:7b'])
    for (const m of r.body.models) {
      assert.equal(m.model, m.name)
      assert.match(m.digest, /^[0-9a-f]{64}$/)
      assert.ok(m.size > 0)
      assert.ok(!Number.isNaN(Date.parse(m.modified_at)))
      assert.equal(m.details.format, 'gguf')
    }
  })

  test('no /health and no /metrics, like the real server', async () => {
    for (const path of ['/health', '/metrics']) {
      const r = await fetch(`${sim.url}${path}`)
      assert.equal(r.status, 404, path)
      assert.equal(await r.text(), '404 page not found')
    }
  })

  test('/v1/models in Ollama shape (owned_by library)', async () => {
    const r = await getJson<{ object: string; data: { id: string; owned_by: string }[] }>(`${sim.url}/v1/models`)
    assert.deepEqual(r.body.data.map((m) => [m.id, m.owned_by]), [['llama3.2:latest', 'library'], ['qwen2.5:7b', 'library']])
  })

  test('chat: Ollama ids and fingerprint; a bare name matches :latest; unknown model 404', async () => {
    const r = await postJson<ChatCompletion>(`${sim.url}/v1/chat/completions`, { model: 'llama3.2', messages: [{ role: 'user', content: 'hey you' }] })
    assert.equal(r.status, 200)
    assert.match(r.body.id, /^chatcmpl-\d{1,3}$/)
    assert.equal(r.body.system_fingerprint, 'fp_ollama')
    assert.equal(r.body.model, 'llama3.2')
    assert.deepEqual([r.body.usage?.prompt_tokens, r.body.usage?.completion_tokens], [2, 5])
    const missing = await postJson<ErrorBody>(`${sim.url}/v1/chat/completions`, { model: 'mistral', messages: [{ role: 'user', content: 'x' }] })
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.type, 'not_found_error')
    assert.equal(missing.body.error.code, null)
  })

  test('chat stream: every delta carries the role, finish chunk, usage chunk on include_usage, [DONE]', async () => {
    const r = await streamPost(`${sim.url}/v1/chat/completions`, {
      model: 'qwen2.5:7b', messages: [{ role: 'user', content: 'hey' }], stream: true, stream_options: { include_usage: true },
    })
    const { chunks, done } = chunksOf<ChatCompletionChunk>(r.events)
    assert.ok(done)
    const withChoice = chunks.filter((c) => c.choices.length > 0)
    assert.ok(withChoice.every((c) => c.choices[0].delta.role === 'assistant'))
    assert.equal(withChoice.filter((c) => c.choices[0].delta.content).length, 5)
    assert.equal(withChoice[withChoice.length - 1].choices[0].finish_reason, 'stop')
    assert.equal(chunks[chunks.length - 1].usage?.completion_tokens, 5)
    const noUsage = await streamPost(`${sim.url}/v1/chat/completions`, { model: 'qwen2.5:7b', messages: [{ role: 'user', content: 'hey' }], stream: true })
    assert.ok(chunksOf<ChatCompletionChunk>(noUsage.events).chunks.every((c) => !c.usage))
  })

  test('streamed tool calls arrive whole in one chunk', async () => {
    const r = await streamPost(`${sim.url}/v1/chat/completions`, {
      model: 'llama3.2',
      messages: [{ role: 'user', content: 'call a tool' }],
      tools: [{ type: 'function', function: { name: 'ping', parameters: { type: 'object', properties: { host: { type: 'string' } } } } }],
      stream: true,
    })
    const { chunks } = chunksOf<ChatCompletionChunk>(r.events)
    const withCalls = chunks.filter((c) => c.choices[0]?.delta.tool_calls)
    assert.equal(withCalls.length, 1)
    const call = withCalls[0].choices[0].delta.tool_calls?.[0]
    assert.match(call?.id ?? '', /^call_/)
    assert.deepEqual(JSON.parse(call?.function?.arguments ?? ''), { host: 'sim' })
    assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'tool_calls')
  })

  test('/v1/responses exists (Ollama >= 0.13.3) and reports usage', async () => {
    const r = await postJson<ApiResponse>(`${sim.url}/v1/responses`, { model: 'llama3.2', input: 'hello' })
    assert.equal(r.status, 200)
    assert.match(r.body.id, /^resp_\d+$/)
    assert.equal(r.body.usage?.output_tokens, 5)
  })

  test('the stats name the kind', async () => {
    assert.equal((await stats(sim.url)).kind, 'ollama')
  })
})
