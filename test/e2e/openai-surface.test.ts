import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey } from './helpers.js'
import { auditLine, directClient, gatewayClient, received, requestId, settledUsage, withId } from './surface-helpers.js'

// The Responses API (SPEC section 3, the `POST /v1/responses` row) through the official SDK
// against real simulator processes: names rewritten both ways, every streamed event relayed,
// usage from the response (or its `response.completed` event) settled against the quotas,
// `max_output_tokens` clamped, and the audit line. Ollama serves the API too (since 0.13.3).

const VLLM_MODEL = 'Qwen/Qwen2.5-7B-Instruct'
const CAP = 48

const config = (modelsAndUpstreams: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  metered: { models: ["*"], tokensPerDay: 1000000, maxTokensPerRequest: ${CAP} }
${modelsAndUpstreams}
audit: { sink: file, path: $DIR/audit.jsonl }
`

const servingModels = (vllm: string, ollama: string) => `models:
  qwen: { upstream: vllm, upstreamModel: ${VLLM_MODEL} }
  llama3.2: { upstream: ollama }
  gemma: { upstream: ollama, upstreamModel: "gemma3:4b" }
upstreams:
  vllm: { kind: vllm, targets: ["${vllm}"] }
  ollama: { kind: ollama, targets: ["${ollama}"] }`

type StreamEvent = OpenAI.Responses.ResponseStreamEvent

/** Reads a Responses stream to the end. */
async function collect(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = []
  for await (const e of stream) events.push(e)
  return events
}

/** The checks every relayed Responses stream must pass; returns the completed response. */
function checkStream(events: StreamEvent[], publicModel: string, upstreamModel: string): OpenAI.Responses.Response {
  assert.ok(events.length > 4, `only ${events.length} events`)
  assert.equal(events[0].type, 'response.created')
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
    'events lost, duplicated or reordered',
  )
  let carriers = 0
  for (const e of events) {
    if ('response' in e) {
      carriers++
      assert.equal(e.response.model, publicModel, `${e.type} carries ${e.response.model}`)
    }
    assert.ok(!JSON.stringify(e).includes(upstreamModel), `${e.type} leaks the replica's model name`)
  }
  assert.ok(carriers >= 3, 'created, in_progress and completed all carry the response')
  const last = events[events.length - 1]
  assert.equal(last.type, 'response.completed')
  const completed = (last as OpenAI.Responses.ResponseCompletedEvent).response
  const deltas = events.filter((e): e is OpenAI.Responses.ResponseTextDeltaEvent => e.type === 'response.output_text.delta')
  const done = events.find((e): e is OpenAI.Responses.ResponseTextDoneEvent => e.type === 'response.output_text.done')
  assert.ok(deltas.length > 1)
  assert.equal(deltas.map((d) => d.delta).join(''), done?.text)
  assert.equal(completed.output_text ?? outputText(completed), done?.text)
  return completed
}

function outputText(r: OpenAI.Responses.Response): string {
  let text = ''
  for (const item of r.output) if (item.type === 'message') for (const c of item.content) if (c.type === 'output_text') text += c.text
  return text
}

describe('Responses API through the gateway', () => {
  let vllm: SimHandle
  let ollama: SimHandle
  let gw: GatewayHandle

  before(async () => {
    vllm = await startSim('vllm', ['--model', VLLM_MODEL, '--tokens', '20', '--itl-ms', '1'])
    ollama = await startSim('ollama', ['--model', 'llama3.2,gemma3:4b', '--tokens', '9', '--itl-ms', '1'])
    ;({ gw } = await gatewayWithKey(config(servingModels(vllm.url, ollama.url)), ['metered']))
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
    await ollama?.stop()
  })

  it('responses.create: public name out, replica name up, usage settled against the quota, audited', async () => {
    const client = await gatewayClient(gw, ['metered'], 'resp-plain')
    const id = requestId('resp-plain')
    const sent = { model: 'qwen', instructions: 'Answer briefly.', input: 'Say hello', temperature: 0.2, max_output_tokens: 500 }
    const { data: res, response } = await client.responses.create(sent, withId(id)).withResponse()
    assert.equal(response.headers.get('x-request-id'), id)
    assert.equal(res.object, 'response')
    assert.equal(res.model, 'qwen')
    assert.equal(res.status, 'completed')
    assert.equal(res.output_text, outputText(res))
    assert.ok(res.output_text.length > 0)
    assert.equal(res.usage?.output_tokens, 20)
    assert.equal(res.max_output_tokens, CAP, 'the replica saw the clamped cap')

    const seen = await received(vllm.url, id)
    assert.equal(seen.path, '/v1/responses')
    assert.deepEqual(seen.body, { ...sent, model: VLLM_MODEL, max_output_tokens: CAP })

    const usage = await settledUsage(gw, 'resp-plain', {
      requests: 1,
      promptTokens: res.usage!.input_tokens,
      completionTokens: res.usage!.output_tokens,
    })
    assert.deepEqual(usage, { requests: 1, promptTokens: res.usage!.input_tokens, completionTokens: 20 })

    const audit = await auditLine(gw, id)
    assert.equal(audit.type, 'request')
    assert.equal(audit.route, '/v1/responses')
    assert.equal(audit.model, 'qwen')
    assert.equal(audit.upstream, 'vllm')
    assert.equal(audit.status, 200)
    assert.equal(audit.usageSource, 'upstream')
    assert.equal(audit.promptTokens, res.usage!.input_tokens)
    assert.equal(audit.completionTokens, 20)
  })

  it('max_output_tokens: clamped by maxTokensPerRequest, set to it when absent, kept when lower', async () => {
    const client = await gatewayClient(gw, ['metered'])
    const absent = requestId('resp-cap-absent')
    await client.responses.create({ model: 'qwen', input: 'hi' }, withId(absent))
    assert.equal((await received(vllm.url, absent)).body?.max_output_tokens, CAP)

    const lower = requestId('resp-cap-lower')
    const res = await client.responses.create({ model: 'qwen', input: 'hi', max_output_tokens: 7 }, withId(lower))
    assert.equal((await received(vllm.url, lower)).body?.max_output_tokens, 7)
    assert.equal(res.usage?.output_tokens, 7)
    assert.equal(res.status, 'incomplete')
    assert.equal(res.incomplete_details?.reason, 'max_output_tokens')
  })

  it('streaming: every event relayed in order, each carrying the public name; usage from response.completed', async () => {
    const client = await gatewayClient(gw, ['metered'], 'resp-stream')
    const id = requestId('resp-stream')
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'Stream a greeting, please' }]
    const { data: stream, response } = await client.responses
      .create({ model: 'qwen', input, stream: true, max_output_tokens: 1000 }, withId(id))
      .withResponse()
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/)
    const events = await collect(stream)
    const completed = checkStream(events, 'qwen', VLLM_MODEL)
    assert.equal(completed.usage?.output_tokens, 20)

    // The same request straight to the replica yields the same event sequence.
    const direct = await collect(await directClient(vllm.url).responses.create({ model: VLLM_MODEL, input, stream: true }))
    assert.deepEqual(
      events.map((e) => e.type),
      direct.map((e) => e.type),
    )

    const seen = await received(vllm.url, id)
    assert.deepEqual(seen.body, { model: VLLM_MODEL, input, stream: true, max_output_tokens: CAP })
    assert.ok(!('stream_options' in (seen.body ?? {})), 'chat-only stream_options sent to the Responses API')

    const want = { requests: 1, promptTokens: completed.usage!.input_tokens, completionTokens: 20 }
    assert.deepEqual(await settledUsage(gw, 'resp-stream', want), want)
    const audit = await auditLine(gw, id)
    assert.equal(audit.route, '/v1/responses')
    assert.equal(audit.model, 'qwen')
    assert.equal(audit.status, 200)
    assert.equal(audit.usageSource, 'upstream')
    assert.equal(audit.completionTokens, 20)
  })

  it('Ollama serves /v1/responses: plain and streaming pass through, renamed or not, usage settled', async () => {
    const client = await gatewayClient(gw, ['metered'], 'resp-ollama')
    const plainId = requestId('ollama-plain')
    const plain = await client.responses.create({ model: 'gemma', input: 'Hello' }, withId(plainId))
    assert.equal(plain.model, 'gemma')
    assert.equal(plain.status, 'completed')
    assert.equal(plain.usage?.output_tokens, 9)
    assert.ok(plain.output_text.length > 0)
    const seenPlain = await received(ollama.url, plainId)
    assert.equal(seenPlain.path, '/v1/responses')
    assert.deepEqual(seenPlain.body, { model: 'gemma3:4b', input: 'Hello', max_output_tokens: CAP })

    const renamedId = requestId('ollama-stream-renamed')
    const renamed = checkStream(
      await collect(await client.responses.create({ model: 'gemma', input: 'Hi', stream: true }, withId(renamedId))),
      'gemma',
      'gemma3:4b',
    )
    // Same name on both sides: nothing to rewrite, yet usage must still be read from the stream.
    const sameId = requestId('ollama-stream-same')
    const same = checkStream(
      await collect(await client.responses.create({ model: 'llama3.2', input: 'Hi', stream: true }, withId(sameId))),
      'llama3.2',
      'gemma3:4b',
    )
    assert.equal((await received(ollama.url, sameId)).body?.model, 'llama3.2')

    const want = {
      requests: 3,
      promptTokens: plain.usage!.input_tokens + renamed.usage!.input_tokens + same.usage!.input_tokens,
      completionTokens: 27,
    }
    assert.deepEqual(await settledUsage(gw, 'resp-ollama', want), want)
    assert.equal((await auditLine(gw, sameId)).usageSource, 'upstream')
    assert.equal((await auditLine(gw, renamedId)).route, '/v1/responses')
  })
})

const cutModels = (a: string, b: string) => `models:
  renamed: { upstream: a, upstreamModel: org/renamed-8b }
  same: { upstream: b }
upstreams:
  a: { kind: vllm, targets: ["${a}"] }
  b: { kind: vllm, targets: ["${b}"] }`

describe('Responses streams cut by the replica', () => {
  // Two replicas (one renamed model, one not: the relay's rewrite and pass-through paths),
  // each dropping its stream after four pieces. Two drops each stay below the ejection count.
  let renamed: SimHandle
  let same: SimHandle
  let gw: GatewayHandle
  let client: OpenAI

  before(async () => {
    const flags = ['--tokens', '12', '--itl-ms', '2', '--drop-rate', '1', '--drop-after', '4']
    renamed = await startSim('vllm', ['--model', 'org/renamed-8b', ...flags])
    same = await startSim('vllm', ['--model', 'same', ...flags])
    ;({ gw } = await gatewayWithKey(config(cutModels(renamed.url, same.url)), ['metered']))
    client = await gatewayClient(gw, ['metered'])
  })
  after(async () => {
    await gw?.stop()
    await renamed?.stop()
    await same?.stop()
  })

  /** Streams until the gateway reports the cut; returns the request id and the deltas seen. */
  async function cutStream(params: OpenAI.Responses.ResponseCreateParamsStreaming): Promise<{ id: string; deltas: number }> {
    const id = requestId(`cut-${params.model}`)
    let deltas = 0
    const err = await (async () => {
      for await (const e of await client.responses.create(params, withId(id))) if (e.type.endsWith('.delta')) deltas++
    })().then(() => null, (e: unknown) => e)
    assert.ok(err instanceof OpenAI.APIError, `the cut stream ended without an error: ${String(err)}`)
    return { id, deltas }
  }

  it('the pieces streamed so far are settled, text or function-call arguments, renamed or not', async () => {
    const tools: OpenAI.Responses.FunctionTool[] = [
      { type: 'function', name: 'lookup', strict: false, parameters: { type: 'object', properties: { query: { type: 'string' }, region: { type: 'string' }, lang: { type: 'string' } } } },
    ]
    for (const model of ['renamed', 'same']) {
      for (const extra of [{}, { tools, tool_choice: 'required' as const }]) {
        const { id, deltas } = await cutStream({ model, input: 'Tell me more', stream: true, ...extra })
        assert.equal(deltas, 4, `${model}: the replica was to drop after four pieces`)
        const audit = await auditLine(gw, id)
        assert.equal(audit.route, '/v1/responses')
        assert.equal(audit.usageSource, 'estimated')
        assert.equal(audit.completionTokens, deltas, `${model} ${'tools' in extra ? 'function call' : 'text'}: settled ${audit.completionTokens}`)
      }
    }
  })
})

