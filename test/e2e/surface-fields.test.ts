import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey } from './helpers.js'
import { gatewayClient, received, requestId, withId } from './surface-helpers.js'

// Structured output and the fields the gateway does not interpret (issue 11, item 4): a
// JSON-schema `response_format` (chat) and `text.format` (Responses) round trip, and legacy
// and vendor fields (`functions`, logprobs, `seed`, vLLM's `guided_*`, anything the SDK sends
// as extra body params) reach the replica exactly as sent. The only differences allowed are
// the gateway's own: the model name, a clamped cap, and `stream_options` on chat streams.

const UPSTREAM = 'meta-llama/Llama-3.1-8B-Instruct'
const CAP = 64

const config = (vllm: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  dev: { models: ["*"] }
  capped: { models: ["*"], maxTokensPerRequest: ${CAP} }
models:
  llama: { upstream: vllm, upstreamModel: ${UPSTREAM} }
upstreams:
  vllm: { kind: vllm, targets: ["${vllm}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

const weatherSchema = {
  type: 'object',
  properties: {
    city: { type: 'string' },
    temperature: { type: 'number' },
    conditions: { type: 'string', enum: ['sunny', 'cloudy', 'rain'] },
    windy: { type: 'boolean' },
  },
  required: ['city', 'temperature', 'conditions', 'windy'],
  additionalProperties: false,
}
const weatherValue = { city: 'sim', temperature: 1, conditions: 'sunny', windy: true }

/** Params with fields the SDK's types do not know: in openai-node, extra body params ride along as is. */
function withExtra<T extends object>(params: T, extra: Record<string, unknown>): T {
  return { ...params, ...extra } as T
}

describe('structured output and pass-through fields', () => {
  let vllm: SimHandle
  let gw: GatewayHandle
  let dev: OpenAI
  let capped: OpenAI

  before(async () => {
    vllm = await startSim('vllm', ['--model', UPSTREAM, '--tokens', '40'])
    ;({ gw } = await gatewayWithKey(config(vllm.url), ['dev']))
    dev = await gatewayClient(gw, ['dev'])
    capped = await gatewayClient(gw, ['capped'])
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
  })

  it('chat: a JSON-schema response_format round trip, plain and streaming', async () => {
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'weather', schema: weatherSchema, strict: true } }
    const params = { model: 'llama', messages: [{ role: 'user' as const, content: 'Weather in Rome as JSON' }], response_format }
    const id = requestId('schema')
    const res = await dev.chat.completions.create(params, withId(id))
    assert.equal(res.model, 'llama')
    assert.deepEqual(JSON.parse(res.choices[0].message.content ?? ''), weatherValue)
    assert.deepEqual((await received(vllm.url, id)).body, { ...params, model: UPSTREAM })

    const streamId = requestId('schema-stream')
    let content = ''
    for await (const c of await dev.chat.completions.create({ ...params, stream: true }, withId(streamId))) {
      content += c.choices[0]?.delta?.content ?? ''
    }
    assert.deepEqual(JSON.parse(content), weatherValue)
    assert.deepEqual((await received(vllm.url, streamId)).body?.response_format, response_format)
  })

  it('Responses: a JSON-schema text.format round trip', async () => {
    const text = { format: { type: 'json_schema' as const, name: 'weather', schema: weatherSchema, strict: true } }
    const params = { model: 'llama', input: 'Weather in Rome as JSON', text }
    const id = requestId('schema-responses')
    const res = await dev.responses.create(params, withId(id))
    assert.equal(res.model, 'llama')
    assert.deepEqual(JSON.parse(res.output_text), weatherValue)
    assert.deepEqual((await received(vllm.url, id)).body, { ...params, model: UPSTREAM })
  })

  it('chat: legacy, sampling and vLLM fields reach the replica exactly as sent', async () => {
    const params = withExtra(
      {
        model: 'llama',
        messages: [
          { role: 'system' as const, content: 'Be terse.', name: 'policy' },
          { role: 'user' as const, content: 'Pick a colour' },
        ],
        functions: [{ name: 'pick', description: 'legacy function calling', parameters: { type: 'object', properties: { c: { type: 'string' } } } }],
        function_call: 'auto' as const,
        logprobs: true,
        top_logprobs: 3,
        seed: 1234567,
        temperature: 0.7,
        top_p: 0.9,
        presence_penalty: 0.25,
        frequency_penalty: -0.5,
        logit_bias: { '50256': -100, '13': 2.5 },
        stop: ['\n\n', 'END'],
        n: 1,
        user: 'user-42',
        metadata: { team: 'search' },
        response_format: { type: 'json_object' as const },
      },
      {
        guided_json: weatherSchema,
        guided_choice: ['red', 'green', 'blue'],
        guided_decoding_backend: 'xgrammar',
        top_k: 20,
        min_p: 0.05,
        repetition_penalty: 1.1,
        min_tokens: 2,
        skip_special_tokens: false,
        chat_template_kwargs: { enable_thinking: false },
        priority: -1,
        x_custom: { nested: [1, 'two', { three: null, four: [true, 2.5e-7] }], empty: {}, unicode: 'żółw 🐢 \u2028' },
      },
    )
    const id = requestId('fields-chat')
    const res = await dev.chat.completions.create(params, withId(id))
    assert.equal(res.model, 'llama')
    assert.deepEqual((await received(vllm.url, id)).body, { ...params, model: UPSTREAM })
  })

  it('chat stream with a cap: only the model, the clamped max_tokens and include_usage differ', async () => {
    const params = withExtra(
      {
        model: 'llama',
        messages: [{ role: 'user' as const, content: 'Count slowly' }],
        max_tokens: 500,
        seed: 7,
        logprobs: true,
        top_logprobs: 1,
        stream: true as const,
        stream_options: { include_usage: false },
      },
      { guided_regex: '[0-9]+', ignore_eos: true, skip_special_tokens: true },
    )
    const id = requestId('fields-stream')
    let chunks = 0
    for await (const c of await capped.chat.completions.create(params, withId(id))) {
      chunks++
      assert.equal(c.usage ?? null, null, 'usage chunk reached a client that did not ask')
    }
    assert.ok(chunks > 1)
    const seen = (await received(vllm.url, id)).body
    assert.deepEqual(seen, { ...params, model: UPSTREAM, max_tokens: CAP, stream_options: { include_usage: true } })
  })

  it('completions, Responses and embeddings: extra fields pass through too', async () => {
    const completion = withExtra(
      { model: 'llama', prompt: ['Once upon', 'a time'], max_tokens: 4, logprobs: 2, echo: false, suffix: null, best_of: 1, seed: 3 },
      { guided_regex: '[a-z ]+', prompt_logprobs: 1, truncate_prompt_tokens: 512 },
    )
    const id1 = requestId('fields-completions')
    await dev.completions.create(completion, withId(id1))
    assert.deepEqual((await received(vllm.url, id1)).body, { ...completion, model: UPSTREAM })

    const responses = withExtra(
      {
        model: 'llama',
        instructions: 'Be brief.',
        input: [{ role: 'user' as const, content: [{ type: 'input_text' as const, text: 'Hi' }] }],
        reasoning: { effort: 'low' as const },
        text: { format: { type: 'text' as const }, verbosity: 'low' as const },
        metadata: { trace: 'abc' },
        store: false,
        truncation: 'auto' as const,
        top_logprobs: 2,
        include: ['message.output_text.logprobs' as const],
        parallel_tool_calls: false,
        user: 'user-42',
      },
      { top_k: 5, cache_salt: 'tenant-7', request_id: 'mine' },
    )
    const id2 = requestId('fields-responses')
    await capped.responses.create(responses, withId(id2))
    assert.deepEqual((await received(vllm.url, id2)).body, { ...responses, model: UPSTREAM, max_output_tokens: CAP })

    const embeddings = withExtra(
      { model: 'llama', input: ['alpha', 'beta'], dimensions: 8, encoding_format: 'float' as const, user: 'user-42' },
      { truncate_prompt_tokens: 128, additional_data: { source: 'docs' } },
    )
    const id3 = requestId('fields-embeddings')
    const e = await dev.embeddings.create(embeddings, withId(id3))
    assert.equal(e.model, 'llama')
    assert.deepEqual((await received(vllm.url, id3)).body, { ...embeddings, model: UPSTREAM })
  })
})
