import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey } from './helpers.js'
import { directClient, gatewayClient, received, requestId, withId } from './surface-helpers.js'

// Tool calling through the gateway (issue 11, item 2): tool definitions, tool_choice and
// parallel_tool_calls reach the replica untouched, tool calls come back intact (streamed
// deltas in order), and the follow-up turn with the assistant's tool_calls and the tool
// results passes through as sent. Also the Responses API's function-call round trip.

const VLLM_MODEL = '/models/qwen2.5-7b-instruct'

const config = (vllm: string, ollama: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  dev: { models: ["*"] }
models:
  qwen: { upstream: vllm, upstreamModel: ${VLLM_MODEL} }
  llama3.2: { upstream: ollama }
upstreams:
  vllm: { kind: vllm, targets: ["${vllm}"] }
  ollama: { kind: ollama, targets: ["${ollama}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

const tools: OpenAI.Chat.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
      strict: true,
    },
  },
  {
    type: 'function',
    function: { name: 'get_time', parameters: { type: 'object', properties: { timezone: { type: 'string' }, offset: { type: 'integer' } } } },
  },
]

type Chunk = OpenAI.Chat.ChatCompletionChunk

async function chunksOf(stream: AsyncIterable<Chunk>): Promise<Chunk[]> {
  const out: Chunk[] = []
  for await (const c of stream) out.push(c)
  return out
}

/** The choices of every chunk, with tool call ids replaced by their order of appearance. */
function normalisedChoices(chunks: Chunk[]): unknown[] {
  const ids = new Map<string, string>()
  return chunks.map((c) =>
    JSON.parse(JSON.stringify(c.choices), (k, v: unknown) => {
      if (k !== 'id' || typeof v !== 'string') return v
      if (!ids.has(v)) ids.set(v, `call-${ids.size}`)
      return ids.get(v)
    }),
  )
}

/** Reassembles streamed tool calls the way clients do: by index, arguments concatenated. */
function assembleToolCalls(chunks: Chunk[]): { order: number[]; calls: OpenAI.Chat.ChatCompletionMessageFunctionToolCall[] } {
  const order: number[] = []
  const calls: OpenAI.Chat.ChatCompletionMessageFunctionToolCall[] = []
  for (const c of chunks) {
    for (const d of c.choices[0]?.delta?.tool_calls ?? []) {
      order.push(d.index)
      if (d.id) {
        assert.equal(calls[d.index], undefined, `a second opening delta for tool call ${d.index}`)
        assert.equal(d.type, 'function')
        calls[d.index] = { id: d.id, type: 'function', function: { name: d.function?.name ?? '', arguments: '' } }
      }
      assert.ok(calls[d.index], `arguments for tool call ${d.index} before its opening delta`)
      calls[d.index].function.arguments += d.function?.arguments ?? ''
    }
  }
  return { order, calls }
}

describe('tool calling through the gateway', () => {
  let vllm: SimHandle
  let ollama: SimHandle
  let gw: GatewayHandle
  let client: OpenAI

  before(async () => {
    vllm = await startSim('vllm', ['--model', VLLM_MODEL, '--tokens', '12', '--itl-ms', '1'])
    ollama = await startSim('ollama', ['--model', 'llama3.2', '--tokens', '6'])
    ;({ gw } = await gatewayWithKey(config(vllm.url, ollama.url), ['dev']))
    client = await gatewayClient(gw, ['dev'])
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
    await ollama?.stop()
  })

  it('non-streaming round trip: the tool call comes back, the tool result goes up, untouched', async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You can look up the weather.' },
      { role: 'user', content: 'What is the weather in Lisbon?' },
    ]
    const first = { model: 'qwen', messages, tools, tool_choice: { type: 'function' as const, function: { name: 'get_weather' } }, parallel_tool_calls: false }
    const id1 = requestId('tools-1')
    const res = await client.chat.completions.create(first, withId(id1))
    assert.equal(res.model, 'qwen')
    assert.equal(res.choices[0].finish_reason, 'tool_calls')
    const calls = res.choices[0].message.tool_calls ?? []
    assert.equal(calls.length, 1)
    const call = calls[0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall
    assert.equal(call.type, 'function')
    assert.equal(call.function.name, 'get_weather')
    assert.deepEqual(Object.keys(JSON.parse(call.function.arguments) as object).sort(), ['city', 'unit'])
    assert.deepEqual((await received(vllm.url, id1)).body, { ...first, model: VLLM_MODEL })

    // The SDK's own assistant message goes back as is (with vLLM's extra null fields).
    const followUp = {
      model: 'qwen',
      tools,
      messages: [
        ...messages,
        res.choices[0].message,
        { role: 'tool' as const, tool_call_id: call.id, content: JSON.stringify({ temperature: 21, unit: 'celsius' }) },
      ],
    }
    const id2 = requestId('tools-2')
    const answer = await client.chat.completions.create(followUp, withId(id2))
    assert.equal(answer.choices[0].finish_reason, 'stop')
    assert.ok((answer.choices[0].message.content ?? '').length > 0)
    const seen = (await received(vllm.url, id2)).body
    assert.deepEqual(seen, JSON.parse(JSON.stringify({ ...followUp, model: VLLM_MODEL })))
  })

  it('streaming: parallel tool_calls deltas arrive intact and in order, and the follow-up streams too', async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather and time in Oslo: call two tools.' }]
    const params = { model: 'qwen', messages, tools, tool_choice: 'auto' as const, parallel_tool_calls: true, stream: true as const }
    const id1 = requestId('tools-stream-1')
    const chunks = await chunksOf(await client.chat.completions.create(params, withId(id1)))
    for (const c of chunks) assert.equal(c.model, 'qwen')
    assert.equal(chunks[chunks.length - 1].choices[0]?.finish_reason, 'tool_calls')
    assert.ok(chunks.every((c) => !c.usage), 'usage chunk reached a client that did not ask')

    const { order, calls } = assembleToolCalls(chunks)
    assert.deepEqual(calls.map((c) => c.function.name), ['get_weather', 'get_time'])
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'tool call deltas out of order')
    assert.ok(order.length > 4, 'the arguments were not streamed in pieces')
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'sim', unit: 'celsius' })
    assert.deepEqual(JSON.parse(calls[1].function.arguments), { timezone: 'sim', offset: 1 })

    // Chunk for chunk what the replica streams when asked directly (tool call ids aside).
    const direct = await chunksOf(await directClient(vllm.url).chat.completions.create({ ...params, model: VLLM_MODEL }))
    assert.deepEqual(normalisedChoices(chunks), normalisedChoices(direct))

    const seen = (await received(vllm.url, id1)).body
    assert.deepEqual(seen, { ...params, model: VLLM_MODEL, stream_options: { include_usage: true } })

    const followUp = {
      ...params,
      tool_choice: 'none' as const,
      messages: [
        ...messages,
        { role: 'assistant' as const, content: null, tool_calls: calls },
        { role: 'tool' as const, tool_call_id: calls[0].id, content: '{"temperature":4}' },
        { role: 'tool' as const, tool_call_id: calls[1].id, content: '{"time":"12:00"}' },
      ],
    }
    const id2 = requestId('tools-stream-2')
    const answer = await chunksOf(await client.chat.completions.create(followUp, withId(id2)))
    assert.ok(answer.map((c) => c.choices[0]?.delta?.content ?? '').join('').length > 0)
    assert.equal(answer[answer.length - 1].choices[0]?.finish_reason, 'stop')
    assert.deepEqual((await received(vllm.url, id2)).body, { ...followUp, model: VLLM_MODEL, stream_options: { include_usage: true } })
  })

  it('Ollama: whole tool calls in one streamed chunk pass through intact', async () => {
    const params = { model: 'llama3.2', messages: [{ role: 'user' as const, content: 'call two tools' }], tools, stream: true as const }
    const chunks = await chunksOf(await client.chat.completions.create(params))
    const { calls } = assembleToolCalls(chunks)
    assert.deepEqual(calls.map((c) => c.function.name), ['get_weather', 'get_time'])
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'sim', unit: 'celsius' })
    assert.match(calls[0].id, /^call_/)
    assert.equal(chunks[chunks.length - 1].choices[0]?.finish_reason, 'tool_calls')
  })

  it('Responses API: a streamed function call, then its output sent back, both untouched', async () => {
    const fnTools: OpenAI.Responses.FunctionTool[] = tools.map((t) => {
      const f = (t as OpenAI.Chat.ChatCompletionFunctionTool).function
      return { type: 'function', name: f.name, description: f.description ?? null, parameters: f.parameters ?? null, strict: f.strict ?? false }
    })
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'Weather in Lima?' }]
    const params = { model: 'qwen', input, tools: fnTools, tool_choice: 'required' as const, stream: true as const }
    const id1 = requestId('resp-tools-1')
    const events: OpenAI.Responses.ResponseStreamEvent[] = []
    for await (const e of await client.responses.create(params, withId(id1))) events.push(e)
    for (const e of events) if ('response' in e) assert.equal(e.response.model, 'qwen')
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta')
    const done = events.find((e) => e.type === 'response.function_call_arguments.done')
    assert.ok(deltas.length > 1)
    assert.equal(deltas.map((d) => d.delta).join(''), done?.arguments)
    const completed = events[events.length - 1]
    assert.equal(completed.type, 'response.completed')
    const item = completed.response.output[0]
    assert.equal(item.type, 'function_call')
    assert.equal(item.name, 'get_weather')
    assert.equal(item.arguments, done?.arguments)
    assert.deepEqual((await received(vllm.url, id1)).body, { ...params, model: VLLM_MODEL })

    const followUp = {
      model: 'qwen',
      tools: fnTools,
      input: [
        ...input,
        { type: 'function_call' as const, call_id: item.call_id, name: item.name, arguments: item.arguments },
        { type: 'function_call_output' as const, call_id: item.call_id, output: '{"temperature":19}' },
      ],
    }
    const id2 = requestId('resp-tools-2')
    const answer = await client.responses.create(followUp, withId(id2))
    assert.equal(answer.model, 'qwen')
    assert.ok(answer.output_text.length > 0)
    assert.deepEqual((await received(vllm.url, id2)).body, { ...followUp, model: VLLM_MODEL })
  })
})
