import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import OpenAI from 'openai'
import { startSim, type GatewayHandle, type SimHandle } from '../helpers/processes.js'
import { gatewayWithKey, simRequests, simStats, waitUntil } from './helpers.js'

// The pass-through contract (SPEC section 3) through the official SDK, against real
// simulator processes: names rewritten both ways, streams relayed, bad input refused.

const UPSTREAM_KEY = 'sk-upstream-vllm-key-0000000000'

const config = (vllm: string, ollama: string) => `
listen: { host: 127.0.0.1, port: $PORT }
metrics: { host: 127.0.0.1, port: $METRICS_PORT }
maxBodyBytes: 4096
store: { dataDir: $DIR/data }
auth: { adminToken: "\${GATEHOUSE_ADMIN_TOKEN}" }
roles:
  dev: { models: ["*"] }
models:
  mistral: { upstream: vllm, upstreamModel: /models/mistral-7b }
  llama3.2: { upstream: ollama }
upstreams:
  vllm: { kind: vllm, targets: ["${vllm}"], apiKey: ${UPSTREAM_KEY} }
  ollama: { kind: ollama, targets: ["${ollama}"] }
audit: { sink: file, path: $DIR/audit.jsonl }
`

describe('OpenAI pass-through', () => {
  let vllm: SimHandle
  let ollama: SimHandle
  let gw: GatewayHandle
  let key: string
  let client: OpenAI

  before(async () => {
    vllm = await startSim('vllm', ['--model', '/models/mistral-7b', '--api-key', UPSTREAM_KEY, '--tokens', '12'])
    ollama = await startSim('ollama', ['--model', 'llama3.2', '--tokens', '5'])
    ;({ gw, key } = await gatewayWithKey(config(vllm.url, ollama.url), ['dev']))
    client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
  })
  after(async () => {
    await gw?.stop()
    await vllm?.stop()
    await ollama?.stop()
  })

  it('chat: public name out, replica name up, upstream key sent, client key never forwarded', async () => {
    await fetch(`${vllm.url}/sim/requests`, { method: 'DELETE' })
    const res = await client.chat.completions.create({ model: 'mistral', messages: [{ role: 'user', content: 'Hello there' }] })
    assert.equal(res.model, 'mistral')
    assert.equal(res.usage?.completion_tokens, 12)
    const [seen] = await simRequests(vllm.url, '/v1/chat/completions')
    assert.equal(seen.body?.model, '/models/mistral-7b')
    assert.equal(seen.headers.authorization, `Bearer ${UPSTREAM_KEY}`)
    assert.ok(!JSON.stringify(seen).includes(key), 'the client key reached the replica')
  })

  it('stream: chunks relayed with the public name; the usage chunk only when asked for', async () => {
    const plain = await client.chat.completions.create({ model: 'mistral', stream: true, messages: [{ role: 'user', content: 'Hi' }] })
    let text = ''
    let usageChunks = 0
    for await (const chunk of plain) {
      assert.equal(chunk.model, 'mistral')
      text += chunk.choices[0]?.delta?.content ?? ''
      if (chunk.usage) usageChunks++
    }
    assert.ok(text.length > 0)
    assert.equal(usageChunks, 0, 'usage chunk reached a client that did not ask for it')
    const [seen] = (await simRequests(vllm.url, '/v1/chat/completions')).slice(-1)
    assert.deepEqual(seen.body?.stream_options, { include_usage: true })

    const withUsage = await client.chat.completions.create({
      model: 'mistral',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Hi' }],
    })
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const chunk of withUsage) if (chunk.usage) usage = chunk.usage
    assert.equal(usage?.completion_tokens, 12)
  })

  it('completions and embeddings pass through, Ollama included', async () => {
    const c = await client.completions.create({ model: 'mistral', prompt: 'Once upon a time', max_tokens: 4 })
    assert.equal(c.model, 'mistral')
    assert.equal(c.usage?.completion_tokens, 4)
    const e = await client.embeddings.create({ model: 'mistral', input: ['a', 'b'] })
    assert.equal(e.data.length, 2)
    assert.ok(e.data[0].embedding.length > 0)
    const o = await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'Hi' }] })
    assert.equal(o.model, 'llama3.2')
    assert.equal(o.usage?.completion_tokens, 5)
  })

  it('lists only configured models, and one model by name', async () => {
    const ids = []
    for await (const m of client.models.list()) ids.push(m.id)
    assert.deepEqual(ids.sort(), ['llama3.2', 'mistral'])
    assert.equal((await client.models.retrieve('llama3.2')).id, 'llama3.2')
    await assert.rejects(client.models.retrieve('nope'), OpenAI.NotFoundError)
  })

  it('x-request-id: a sane one is echoed, an unsafe one replaced', async () => {
    const sane = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'abc-123' } })
    assert.equal(sane.headers.get('x-request-id'), 'abc-123')
    const bad = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'a b<script>' } })
    assert.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
    const unauth = await fetch(`${gw.url}/v1/models`)
    assert.equal(unauth.status, 401)
    assert.ok(unauth.headers.get('x-request-id'))
  })

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body })

  it('bad input gets an OpenAI-shaped error and reaches no replica', async () => {
    const before = (await simStats(vllm.url)).requests
    const cases: [string, number, string][] = [
      ['{not json', 400, 'invalid_request_error'],
      ['[1,2]', 400, 'invalid_request_error'],
      ['{"messages":[]}', 400, 'invalid_request_error'],
      ['{"model":42,"messages":[]}', 400, 'invalid_request_error'],
      ['{"model":"mistral","messages":"hi"}', 400, 'invalid_request_error'],
      ['{"model":"mistral","messages":[],"stream":"yes"}', 400, 'invalid_request_error'],
      ['{"model":"mistral","messages":[],"max_tokens":-1}', 400, 'invalid_request_error'],
      ['{"model":"unknown-model","messages":[]}', 404, 'model_not_found'],
      [`{"model":"mistral","messages":[{"role":"user","content":"${'x'.repeat(5000)}"}]}`, 413, 'request_too_large'],
    ]
    for (const [body, status, code] of cases) {
      const res = await post('/v1/chat/completions', body)
      assert.equal(res.status, status, body.slice(0, 60))
      const json = (await res.json()) as { error: { code: string; message: string; type: string } }
      assert.equal(json.error.code, code)
      assert.equal(typeof json.error.message, 'string')
    }
    const route = await post('/v1/nothing-here', '{}')
    assert.equal(route.status, 404)
    assert.equal(((await route.json()) as { error: { code: string } }).error.code, 'not_found')
    assert.equal((await simStats(vllm.url)).requests, before, 'a bad request reached the replica')
  })

  it('413 for an oversize body sent without Content-Length (chunked)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.write('{"model":"mistral","messages":[{"role":"user","content":"')
      for (let i = 0; i < 10; i++) req.write('y'.repeat(1000))
      req.end('"}]}')
    })
    assert.equal(status, 413)
  })

  it('a client that leaves mid-stream aborts the replica request at once', async () => {
    await fetch(`${vllm.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 50, tokens: 400 }) })
    try {
      const abortedBefore = (await simStats(vllm.url)).aborted
      const controller = new AbortController()
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        signal: controller.signal,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mistral', stream: true, messages: [{ role: 'user', content: 'long story' }] }),
      })
      const reader = res.body!.getReader()
      await reader.read()
      controller.abort()
      const aborted = await waitUntil(async () => (await simStats(vllm.url)).aborted > abortedBefore, 3000)
      assert.ok(aborted, 'the replica kept generating for a client that left')
    } finally {
      await fetch(`${vllm.url}/sim/config`, { method: 'POST', body: JSON.stringify({ itlMs: 0, tokens: 12 }) })
    }
  })
})
